"""The configuration of one run: nested dataclasses, filled from a preset plus overrides.

A preset is a JSON file in baselines/configs/ holding only the values that differ from the
defaults below (and a one-line "description"); `"extends": "<preset>"` starts from another
preset instead of the defaults. Overrides are dotted `key=value` pairs
(`optim.lr=3e-4`, `model.encoder.adapter.kind=lora`), parsed as JSON when they parse, else as
strings. The resolved configuration is saved with every run as config.json.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from mtlbench.errors import InputError, read_json

PRESET_DIR = Path(__file__).parent / "configs"
TASKS = ("activity", "segmentation")


@dataclass
class AdapterConfig:
    kind: str = "none"  # none | lora | dv-lora
    rank: int = 4
    alpha: float = 4.0  # LoRA scale alpha / rank; DV-LoRA uses s = 1 as in the release
    targets: tuple[str, ...] = ("fc1", "fc2")  # names of the Linear layers of each block to adapt
    tesla: bool = False  # one shared A, one B per task (routed by task)


@dataclass
class SMAConfig:
    placement: str = "off"  # off | input (before the patch embedding, as the release) | tokens (on the patch-token map)
    groups: int = 8
    channels: int = 512  # width of the MobileViT-style block around EMA when placed on the input


@dataclass
class EncoderConfig:
    name: str = "dinov2"  # dinov2 | resnet50
    variant: str = "vitb14"  # vits14 | vitb14 | vitl14 | vitg14, "_reg4" suffix for registers; resnet50 ignores it
    weights: str | None = None  # local checkpoint; None: random initialisation (results not comparable)
    weights_prefix: str = ""  # key prefix to strip, e.g. "pretrained."
    depth: int | None = None  # override the number of blocks (tiny CPU models)
    embed_dim: int | None = None
    num_heads: int | None = None
    freeze: bool = True  # freeze the base weights (adapters, SMA and heads still train)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    sma: SMAConfig = field(default_factory=SMAConfig)
    feature_layout: str = "spatial"  # spatial (B, D, h, w) | release_view (the release's plain view of the tokens)


@dataclass
class ModelConfig:
    architecture: str = "hps"  # hps | single_task
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    head_channels: int = 256
    aspp_rates: tuple[int, ...] = (12, 24, 36)
    dropout: float = 0.5


@dataclass
class OptimConfig:
    optimizer: str = "adam"  # adam | adamw
    lr: float = 1.1e-3
    weight_decay: float = 1e-4
    scheduler: str = "step"  # step | cosine | none
    step_size: int = 100  # epochs, for step
    gamma: float = 0.5
    grad_clip: float | None = None  # max global gradient norm


@dataclass
class WeightingConfig:
    name: str = "db_mtl"  # ew | uw | dwa | db_mtl | stch
    beta: float = 0.9  # DB-MTL: EMA of the task gradients
    warmup_epochs: int = 4  # STCH: epochs of sum-of-log-losses before the nadir is fixed
    mu: float = 1.0  # STCH smoothing
    temperature: float = 2.0  # DWA


@dataclass
class DataConfig:
    input_size: tuple[int, int] = (224, 224)  # (height, width); multiples of 14 for DINOv2
    normalise: str | None = "imagenet"
    augment: bool = True
    crop_scale: tuple[float, float] = (0.5, 1.0)
    flip: bool = True
    colour_jitter: float = 0.2
    batch_size: int = 32
    eval_batch_size: int = 16
    workers: int = 2


@dataclass
class TrainConfig:
    epochs: int = 150
    seed: int = 42
    precision: str = "bf16"  # bf16 (autocast on CUDA only) | fp32
    device: str = "auto"  # auto | cpu | cuda
    selection: str = "relative"  # relative (mean relative improvement over all validation metrics) or a results key such as activity.accuracy
    max_steps_per_epoch: int | None = None  # cut epochs short (tests, smoke runs)


@dataclass
class RunConfig:
    preset: str = ""
    description: str = ""
    tasks: tuple[str, ...] = TASKS
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    weighting: WeightingConfig = field(default_factory=WeightingConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def preset_names() -> list[str]:
    return sorted(path.stem for path in PRESET_DIR.glob("*.json"))


def preset_description(name: str) -> str:
    return _preset_values(name).get("description", "")


def _preset_values(name: str, extended_by: tuple[str, ...] = ()) -> dict:
    path = PRESET_DIR / f"{name}.json"
    if not path.is_file():
        raise InputError(name, f"unknown preset (known: {', '.join(preset_names())})")
    values = read_json(path)
    parent = values.pop("extends", None)
    if parent is None:
        return values
    if parent in extended_by + (name,):
        raise InputError(path, f"presets extend each other in a cycle: {' -> '.join(extended_by + (name, parent))}")
    return _merge(_preset_values(parent, extended_by + (name,)), values)


def _build(cls, values: dict, where: str):
    """Instantiate dataclass `cls` from a (partial) dict, recursing into nested dataclasses."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise InputError(where, f"unknown setting(s) {', '.join(unknown)} in {cls.__name__} (known: {', '.join(known)})")
    arguments = {}
    defaults = cls()
    for name, value in values.items():
        current = getattr(defaults, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise InputError(where, f"{name} must be an object")
            arguments[name] = _build(type(current), value, f"{where}: {name}")
        elif isinstance(current, tuple) and isinstance(value, list):
            arguments[name] = tuple(value)
        else:
            arguments[name] = value
    return dataclasses.replace(defaults, **arguments)


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def _parse_override(text: str) -> dict:
    if "=" not in text:
        raise InputError(text, "an override must look like section.key=value")
    key, raw = text.split("=", 1)
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    nested: dict = value
    for part in reversed(key.strip().split(".")):
        nested = {part: nested}
    return nested


def load_config(preset: str, overrides: Sequence[str] = ()) -> RunConfig:
    values = _preset_values(preset)
    for override in overrides:
        values = _merge(values, _parse_override(override))
    return _build(RunConfig, {**values, "preset": preset}, f"preset {preset}")


def config_from_dict(values: dict, where: str) -> RunConfig:
    """A saved config.json back into a RunConfig (for --resume)."""
    return _build(RunConfig, values, where)
