"""BERT in plain torch, with the Hugging Face parameter names, and its exact, safe loading.

The parameter names are those of `transformers.BertModel` (without the "bert." prefix of the
task models), so Hugging Face weights load with an exact key check and a model trained here
saves back in the same layout. Only what BERT-family sentence encoders use is implemented:
absolute position embeddings, exact (erf) GELU, post-LayerNorm blocks, an encoder without
cross-attention. Anything else in config.json is refused instead of being computed wrongly.

Weights files are untrusted: safetensors is read as data, pytorch_model.bin only with
`torch.load(weights_only=True)`, and every problem is a one-line InputError naming the file.
"""

from __future__ import annotations

import hashlib
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

import safetensors
import safetensors.torch
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtlbench.checkpoints import SHOWN_KEYS, check_keys, load_tensor_file
from mtlbench.errors import InputError
from mtlbench.jsonio import read_json

CONFIG_FILE = "config.json"
WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")  # in order of preference: safetensors needs no unpickler
HF_PREFIX = "bert."  # the BertModel inside Hugging Face task models (BertForMaskedLM, ...)
POOLER_PREFIX = "pooler."
# A buffer that transformers < 4.31 saved with the weights. It is always 0..N-1 and not a parameter:
# checked, then dropped, because the model computes the positions itself.
POSITION_IDS_KEY = "embeddings.position_ids"


@dataclass(frozen=True)
class BertConfig:
    """The fields of a Hugging Face BERT config.json that change the computation.

    Defaults are those of `transformers.BertConfig`, for the fields some config files omit.
    The dropouts and pad_token_id only matter when the encoder is trained.
    """

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    pad_token_id: int | None = 0  # None (allowed by transformers): no embedding row is kept at zero gradient

    @classmethod
    def from_json(cls, path: str | Path) -> BertConfig:
        """Read and check a config.json; a non-BERT or unsupported config is an InputError naming it."""
        path = Path(path)
        data = read_json(path, missing="missing: a Hugging Face / sentence-transformers model folder has its config.json here")
        if not isinstance(data, dict):
            raise InputError(path, "not a JSON object")
        model_type = data.get("model_type")
        if model_type != "bert":
            raise InputError(path, f"model_type is {model_type!r}, not 'bert': only BERT-family encoders are supported")
        # Settings of transformers' BertModel that this implementation does not reproduce.
        unsupported = {
            "hidden_act": ("gelu",),
            "position_embedding_type": ("absolute",),
            "is_decoder": (False,),
            "add_cross_attention": (False,),
        }
        for key, allowed in unsupported.items():
            if key in data and data[key] not in allowed:
                raise InputError(path, f"{key} {data[key]!r} is not supported (only {allowed[0]!r})")

        values = {}
        for spec in fields(cls):
            if spec.name in data:
                values[spec.name] = data[spec.name]
            elif spec.default is MISSING:
                raise InputError(path, f"{spec.name} is missing")
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            if name in values and not _is_positive_int(values[name]):
                raise InputError(path, f"{name} must be a positive integer, not {values[name]!r}")
        config = cls(**values)
        pad = config.pad_token_id
        if pad is not None and not (isinstance(pad, int) and not isinstance(pad, bool) and 0 <= pad < config.vocab_size):
            raise InputError(path, f"pad_token_id {config.pad_token_id!r} is not a token id below vocab_size {config.vocab_size}")
        if config.hidden_size % config.num_attention_heads:
            raise InputError(path, f"hidden_size {config.hidden_size} is not divisible by num_attention_heads {config.num_attention_heads}")
        if not (isinstance(config.layer_norm_eps, (int, float)) and config.layer_norm_eps > 0):
            raise InputError(path, f"layer_norm_eps must be a positive number, not {config.layer_norm_eps!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            value = getattr(config, name)
            if not (isinstance(value, (int, float)) and 0 <= value < 1):
                raise InputError(path, f"{name} must be a number in [0, 1), not {value!r}")
        return config


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class BertEmbeddings(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor) -> Tensor:
        length = input_ids.shape[1]
        if length > self.position_embeddings.num_embeddings:
            raise ValueError(f"{length} tokens exceed the {self.position_embeddings.num_embeddings} position embeddings: truncate first")
        positions = torch.arange(length, device=input_ids.device)
        embeddings = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids) + self.position_embeddings(positions)
        return self.dropout(self.LayerNorm(embeddings))


class BertSelfAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.heads = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def _split_heads(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        return x.view(batch, length, self.heads, width // self.heads).transpose(1, 2)

    def forward(self, hidden: Tensor, additive_mask: Tensor) -> Tensor:
        context = F.scaled_dot_product_attention(
            self._split_heads(self.query(hidden)),
            self._split_heads(self.key(hidden)),
            self._split_heads(self.value(hidden)),
            attn_mask=additive_mask,
            dropout_p=self.dropout_p if self.training else 0.0,
        )
        return context.transpose(1, 2).flatten(2)


class BertSelfOutput(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(self, hidden: Tensor, additive_mask: Tensor) -> Tensor:
        return self.output(self.self(hidden, additive_mask), hidden)


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)

    def forward(self, hidden: Tensor) -> Tensor:
        return F.gelu(self.dense(hidden))  # exact erf GELU, transformers' "gelu"


class BertOutput(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class BertLayer(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, hidden: Tensor, additive_mask: Tensor) -> Tensor:
        attended = self.attention(hidden, additive_mask)
        return self.output(self.intermediate(attended), attended)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, hidden: Tensor, additive_mask: Tensor) -> Tensor:
        for layer in self.layer:
            hidden = layer(hidden, additive_mask)
        return hidden


class BertPooler(nn.Module):
    """tanh(dense(first token)), BERT's next-sentence head input. Sentence encoders do not use it;
    it exists so that checkpoints that carry it load exactly and save back unchanged."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: Tensor) -> Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


class BertModel(nn.Module):
    """The BERT encoder; `forward` returns the last hidden states (B, T, H).

    `add_pooling_layer` adds `pooler.dense` (as transformers does by default); `forward` never
    calls it, so a trained encoder that does not need it should be built without it.
    """

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        hidden = self.embeddings(input_ids, token_type_ids)
        # Padding keys get the most negative finite score, as in transformers: their softmax weight
        # underflows to exactly 0, and a row without any real token stays finite instead of NaN.
        additive_mask = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        return self.encoder(hidden, additive_mask)


def weights_file(folder: Path) -> Path:
    """model.safetensors, else pytorch_model.bin; neither is an InputError naming the folder."""
    for name in WEIGHTS_FILES:
        if (folder / name).is_file():
            return folder / name
    raise InputError(folder, f"no weights file ({' or '.join(WEIGHTS_FILES)})")


def read_tensors(path: Path) -> tuple[dict[str, Tensor], str]:
    """The tensors of a weights file and the sha256 of the very bytes they were read from."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror})") from None
    digest = hashlib.sha256(data).hexdigest()
    if path.suffix == ".safetensors":
        try:
            return safetensors.torch.load(data), digest
        except safetensors.SafetensorError as exc:
            raise InputError(path, f"not a readable safetensors file ({exc})") from None
    loaded = load_tensor_file(path, data=data)
    if not isinstance(loaded, dict):
        raise InputError(path, f"holds a {type(loaded).__name__}, not a state dict")
    not_tensors = [str(key) for key, value in loaded.items() if not (isinstance(key, str) and isinstance(value, Tensor))]
    if not_tensors:
        raise InputError(path, f"entries that are not named tensors: {', '.join(not_tensors[:SHOWN_KEYS])}")
    return loaded, digest


def _bert_state_dict(tensors: dict[str, Tensor], config: BertConfig, path: Path) -> dict[str, Tensor]:
    """Strip the "bert." prefix of task models and check, then drop, the legacy position_ids buffer.

    Keys without the prefix are kept as they are, so that a task model's heads (cls.*) show up
    as unexpected keys instead of being dropped silently.
    """
    state: dict[str, Tensor] = {}
    for key, value in tensors.items():
        name = key.removeprefix(HF_PREFIX)
        if name in state:
            raise InputError(path, f"holds both {name} and {HF_PREFIX}{name}")
        state[name] = value
    position_ids = state.pop(POSITION_IDS_KEY, None)
    if position_ids is not None:
        expected = torch.arange(config.max_position_embeddings)[None]
        if position_ids.shape != expected.shape or not torch.equal(position_ids.long(), expected):
            raise InputError(path, f"{POSITION_IDS_KEY} is not 0..{config.max_position_embeddings - 1} (shape {tuple(position_ids.shape)})")
    return state


def read_bert_weights(folder: str | Path) -> tuple[BertConfig, dict[str, Tensor], Path, str]:
    """The config, the state dict ("bert." prefix stripped, legacy position_ids checked and
    dropped), the weights file and its sha256 of a Hugging Face BERT folder."""
    folder = Path(folder)
    config = BertConfig.from_json(folder / CONFIG_FILE)
    path = weights_file(folder)
    tensors, digest = read_tensors(path)
    state = _bert_state_dict(tensors, config, path)
    not_float = [key for key, value in state.items() if not value.is_floating_point()]
    if not_float:
        raise InputError(path, f"tensors that are not floating point: {', '.join(not_float[:SHOWN_KEYS])}")
    return config, state, path, digest


def load_bert(folder: str | Path) -> tuple[BertModel, BertConfig, str]:
    """The BERT of a Hugging Face folder (config.json + model.safetensors or pytorch_model.bin).

    Returns the model in eval mode, its config and the sha256 of the weights file (so that results
    can name exactly which weights scored them). Keys and shapes must match exactly: a partly
    loaded encoder would still produce plausible-looking embeddings, so nothing is loaded
    non-strictly. The pooler is built only when the file has one.
    """
    config, state, path, digest = read_bert_weights(folder)
    model = BertModel(config, add_pooling_layer=any(key.startswith(POOLER_PREFIX) for key in state))
    report = check_keys(model, state)
    if not report.exact:
        raise InputError(path, f"does not match the BERT of {CONFIG_FILE} ({report.describe()})")
    model.load_state_dict(state)  # copies and casts into the float32 parameters
    return model.eval(), config, digest
