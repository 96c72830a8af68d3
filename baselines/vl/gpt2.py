"""GPT-2 in plain torch with the Hugging Face parameter names (`transformers.GPT2Model`), and its
exact, safe loading.

Hugging Face stores GPT-2's projections as Conv1D weights of shape (in, out), the transpose of
nn.Linear's: they are transposed on load (and the shapes checked in the file's layout). Older
files carry the causal-mask buffers `h.N.attn.bias` and `h.N.attn.masked_bias`: they are not
parameters and are skipped. The "transformer." prefix of GPT2LMHeadModel files is stripped and
its `lm_head.weight`, tied to `wte`, must equal it. Weights files are read as data
(safetensors) or weights-only (pytorch_model.bin).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtlbench.checkpoints import SHOWN_KEYS, check_keys, inspection
from mtlbench.embeddings.bert import read_tensors, weights_file
from mtlbench.errors import InputError

LAYER_NORM_EPS = 1e-5
CONV1D_SUFFIXES = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# exactly h.N.attn.bias / h.N.attn.masked_bias (h.N.attn.c_attn.bias is a parameter)
MASK_BUFFER = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)")
HF_PREFIX = "transformer."
LM_HEAD = "lm_head.weight"


@dataclass(frozen=True)
class GPT2Shape:
    vocab_size: int = 50257
    positions: int = 1024
    width: int = 768
    layers: int = 12
    heads: int = 12


class GPT2Attention(nn.Module):
    def __init__(self, shape: GPT2Shape):
        super().__init__()
        self.heads = shape.heads
        self.c_attn = nn.Linear(shape.width, 3 * shape.width)
        self.c_proj = nn.Linear(shape.width, shape.width)

    def forward(self, x: Tensor, key_valid: Tensor | None = None) -> Tensor:
        batch, length, width = x.shape
        q, k, v = self.c_attn(x).view(batch, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        if key_valid is None:
            attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=causal & key_valid[:, None, None, :])
        return self.c_proj(attended.transpose(1, 2).reshape(batch, length, width))


class GPT2MLP(nn.Module):
    def __init__(self, shape: GPT2Shape):
        super().__init__()
        self.c_fc = nn.Linear(shape.width, 4 * shape.width)
        self.c_proj = nn.Linear(4 * shape.width, shape.width)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))  # GPT-2's "gelu_new"


class GPT2Block(nn.Module):
    def __init__(self, shape: GPT2Shape):
        super().__init__()
        self.ln_1 = nn.LayerNorm(shape.width, eps=LAYER_NORM_EPS)
        self.attn = GPT2Attention(shape)
        self.ln_2 = nn.LayerNorm(shape.width, eps=LAYER_NORM_EPS)
        self.mlp = GPT2MLP(shape)

    def forward(self, x: Tensor, key_valid: Tensor | None = None) -> Tensor:
        x = x + self.attn(self.ln_1(x), key_valid)
        return x + self.mlp(self.ln_2(x))


class GPT2Model(nn.Module):
    """forward(inputs_embeds, position_ids, key_valid) -> final hidden states; `key_valid` (B, L)
    bool marks the positions other positions may attend to (padding inside a prompt: False)."""

    def __init__(self, shape: GPT2Shape):
        super().__init__()
        self.shape = shape
        self.wte = nn.Embedding(shape.vocab_size, shape.width)
        self.wpe = nn.Embedding(shape.positions, shape.width)
        self.h = nn.ModuleList(GPT2Block(shape) for _ in range(shape.layers))
        self.ln_f = nn.LayerNorm(shape.width, eps=LAYER_NORM_EPS)
        self.weights_loaded = False
        self.weights_file: Path | None = None
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)

    def forward(self, inputs_embeds: Tensor, position_ids: Tensor, key_valid: Tensor | None = None) -> Tensor:
        hidden = inputs_embeds + self.wpe(position_ids)
        for block in self.h:
            hidden = block(hidden, key_valid)
        return self.ln_f(hidden)


def gpt2_state_dict(tensors: dict[str, Tensor], path: str | Path) -> dict[str, Tensor]:
    """A Hugging Face GPT-2 file's tensors in this module's layout: prefix stripped, mask buffers
    skipped, a tied lm_head checked and dropped, Conv1D weights transposed."""
    state: dict[str, Tensor] = {}
    for key, value in tensors.items():
        name = key.removeprefix(HF_PREFIX)
        if MASK_BUFFER.fullmatch(name):
            continue
        if name in state:
            raise InputError(path, f"holds both {name} and {HF_PREFIX}{name}")
        state[name] = value
    head = state.pop(LM_HEAD, None)
    if head is not None and ("wte.weight" not in state or not torch.equal(head, state["wte.weight"])):
        raise InputError(path, f"{LM_HEAD} is not tied to wte.weight: only GPT-2 with tied embeddings is supported")
    for name, value in state.items():
        if name.endswith(CONV1D_SUFFIXES):
            if value.dim() != 2:
                raise InputError(path, f"{name} has shape {tuple(value.shape)}, not a 2-d Conv1D weight")
            state[name] = value.t().contiguous()
    return state


def detect_shape(state: dict[str, Tensor], heads: int, path: str | Path) -> GPT2Shape:
    for key in ("wte.weight", "wpe.weight"):
        if key not in state or state[key].dim() != 2:
            raise InputError(path, f"not a GPT-2 state dict: no 2-d {key}")
    layers = len({key.split(".")[1] for key in state if key.startswith("h.")})
    vocab_size, width = state["wte.weight"].shape
    if width % heads:
        raise InputError(path, f"width {width} is not divisible by {heads} heads")
    return GPT2Shape(vocab_size=vocab_size, positions=state["wpe.weight"].shape[0], width=width, layers=layers, heads=heads)


def _read_gpt2(folder_or_file: str | Path, heads: int) -> tuple[Path, dict[str, Tensor], dict[str, Tensor], GPT2Shape]:
    """The weights file (a Hugging Face folder's, or the file given), its tensors as stored, the
    state dict in this module's layout and the shape it implies."""
    path = Path(folder_or_file)
    path = weights_file(path) if path.is_dir() else path
    if not path.is_file():
        raise InputError(path, "file not found")
    tensors, _ = read_tensors(path)
    state = gpt2_state_dict(tensors, path)
    return path, tensors, state, detect_shape(state, heads, path)


def load_gpt2(folder_or_file: str | Path, heads: int = 12) -> GPT2Model:
    """GPT-2 from a Hugging Face file (or the folder holding it), every key and shape checked."""
    path, _, state, shape = _read_gpt2(folder_or_file, heads)
    with torch.device("meta"):
        model = GPT2Model(shape)
    report = check_keys(model, state)
    if not report.exact:
        raise InputError(path, f"does not load as GPT-2 ({report.describe()})")
    not_float = [key for key, value in state.items() if not value.is_floating_point()]
    if not_float:
        raise InputError(path, f"tensors that are not floating point: {', '.join(not_float[:SHOWN_KEYS])}")
    model.load_state_dict({key: value.float() for key, value in state.items()}, assign=True)
    model.weights_loaded, model.weights_file = True, path
    return model


def inspect_gpt2(folder_or_file: str | Path, heads: int = 12) -> dict:
    _, tensors, state, shape = _read_gpt2(folder_or_file, heads)
    with torch.device("meta"):
        model = GPT2Model(shape)
    architecture = f"GPT-2 ({shape.layers} layers, width {shape.width}, vocabulary {shape.vocab_size}, {shape.positions} positions)"
    ignored = [key for key in tensors if MASK_BUFFER.fullmatch(key.removeprefix(HF_PREFIX))]
    return inspection("gpt2", architecture, model, state, ignored)
