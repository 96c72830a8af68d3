"""`mtlbench weights inspect`: which pretrained-weights format a file (or folder) is, and whether
it loads exactly into the model mtlbench builds for it.

Formats: dinov2 (official DINOv2 checkpoints), depth-anything (its DINOv2 encoder under
`pretrained.`; the depth head ignored), endovit (EndoViT's MAE checkpoint: decoder keys
ignored, non-tensor objects refused unbuilt), gpt2 (Hugging Face GPT-2, Conv1D transposed), bert
(a Hugging Face BERT-family folder). `auto` tells them apart by their keys; reading keys never
unpickles anything but tensors.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mtlbench.checkpoints import WRAPPER_KEYS, inspection, load_tensors_refusing_objects
from mtlbench.embeddings.bert import read_tensors
from mtlbench.errors import InputError

FORMATS = ("auto", "dinov2", "depth-anything", "endovit", "gpt2", "bert")


def _keys(path: Path) -> set[str]:
    if path.is_dir():
        return set()
    if path.suffix == ".safetensors":
        return set(read_tensors(path)[0])
    loaded, _ = load_tensors_refusing_objects(path)
    if isinstance(loaded, dict):
        for key in WRAPPER_KEYS:
            if isinstance(loaded.get(key), dict):
                return {str(name) for name in loaded[key]}
        return {str(name) for name in loaded}
    return set()


def detect_format(path: Path) -> str:
    if path.is_dir():
        config = path / "config.json"
        if config.is_file() and '"gpt2"' in config.read_text(encoding="utf-8", errors="replace"):
            return "gpt2"
        return "bert"
    keys = _keys(path)
    if any(key.removeprefix("transformer.") == "wte.weight" for key in keys):
        return "gpt2"
    if any(key.startswith("decoder_") for key in keys) or ("pos_embed" in keys and "blocks.0.ls1.gamma" not in keys and "mask_token" not in keys):
        return "endovit"
    if any(key.removeprefix("bert.").startswith("embeddings.word_embeddings") for key in keys):
        raise InputError(path, "a BERT weights file: inspect its folder (config.json beside it)")
    return "dinov2"


def _inspect_bert(folder: Path) -> dict:
    from baselines.vl.text_encoder import IGNORED_PREFIXES, FusionTextEncoder
    from mtlbench.embeddings.bert import read_bert_weights

    config, state, _, _ = read_bert_weights(folder)
    ignored = [key for key in state if key.startswith(IGNORED_PREFIXES)]
    state = {key: value for key, value in state.items() if key not in ignored}
    with torch.device("meta"):
        model = FusionTextEncoder(config, cross_attention=False)
    architecture = f"BERT ({config.num_hidden_layers} layers, hidden {config.hidden_size}, {config.num_attention_heads} heads, vocabulary {config.vocab_size})"
    return inspection("bert", architecture, model, state, ignored)


def _inspect_dinov2(path: Path, prefix: str) -> dict:
    from baselines.models.dinov2_vit import inspect_weights

    report = inspect_weights(path, prefix=prefix)
    shape = report.pop("architecture")
    report.pop("file")
    return {
        "architecture": f"DINOv2 {shape['variant']} (depth {shape['depth']}, dim {shape['dim']}, {shape['heads']} heads)",
        "refused": [],
        **report,
    }


def inspect(path: str | Path, prefix: str = "", weights_format: str = "auto") -> dict:
    """A report: format, architecture (one line), parameters, tensors, missing, unexpected,
    mismatched, ignored (keys deliberately not loaded), refused (objects not built), loads_exactly."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    chosen = detect_format(path) if weights_format == "auto" else weights_format
    if chosen == "bert":
        if not path.is_dir():
            raise InputError(path, "BERT weights are inspected as their Hugging Face folder (config.json, model.safetensors)")
        return _inspect_bert(path)
    if chosen == "gpt2":
        from baselines.vl.gpt2 import inspect_gpt2

        return inspect_gpt2(path)
    if chosen == "endovit":
        from baselines.models.endovit import inspect_endovit

        return inspect_endovit(path)
    report = _inspect_dinov2(path, prefix)
    if weights_format in ("dinov2", "depth-anything") and report["format"] != weights_format:
        raise InputError(path, f"not a {weights_format} file: it reads as {report['format']}")
    return report
