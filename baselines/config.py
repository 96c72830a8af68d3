"""The configuration of one run: typed, checked sections, filled from a preset plus overrides.

A preset is a JSON file in baselines/configs/ holding only the values that differ from the
defaults below (and a one-line "description"); `"extends": "<preset>"` starts from another
preset instead of the defaults. Overrides are dotted `key=value` pairs (`optim.lr=3e-4`,
`model.encoder.adapter.kind=lora`), parsed as JSON when they parse, else as strings. Every
setting's type, allowed values (from the registries where the values are named things) and
range are checked when the configuration is made (baselines/settings.py), so a bad value stops
a run with one line before its folder exists. The resolved configuration is saved with every
run as config.json. docs/baselines.md lists every setting.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from baselines.models.registries import ADAPTERS, ARCHITECTURES, ENCODERS
from baselines.optim import OPTIMIZERS, SCHEDULERS
from baselines.selection import SELECTION_RULES
from baselines.settings import Section, build_section, setting
from baselines.weighting.registry import WEIGHTINGS
from mtlbench.dataset.loader import NORMALISATIONS
from mtlbench.errors import InputError
from mtlbench.jsonio import parse_json, read_json

PRESET_DIR = Path(__file__).parent / "configs"
NO_ADAPTER = "none"
SMA_PLACEMENTS = ("off", "input", "tokens")  # input: before the patch embedding (the release); tokens: on the patch-token map
FEATURE_LAYOUTS = ("spatial", "release_view")  # release_view: the release's plain view of the tokens
PRECISIONS = ("bf16", "fp32")  # bf16 is autocast on CUDA only
DEVICES = ("auto", "cpu", "cuda")
TASKS = ("activity", "segmentation")  # the EndoARSS tasks the reference runners train


@dataclass
class AdapterConfig(Section):
    PATH = "model.encoder.adapter"
    kind: str = setting(NO_ADAPTER, choices=lambda: (NO_ADAPTER, *ADAPTERS.names()))
    rank: int = setting(4, at_least=1)
    alpha: float = setting(4.0, above=0)  # LoRA scale alpha / rank; DV-LoRA uses s = 1 as in the release
    targets: tuple[str, ...] = setting(("fc1", "fc2"))  # names of the Linear layers of each block to adapt
    tesla: bool = setting(False)  # one shared A, one B per task (routed by task)

    def check(self) -> None:
        if self.tesla and self.kind == NO_ADAPTER:
            raise InputError(self.where("tesla"), "task-specific adapters need an adapter kind (lora or dv-lora)")
        if not self.targets:
            raise InputError(self.where("targets"), "name at least one Linear layer")


@dataclass
class SMAConfig(Section):
    PATH = "model.encoder.sma"
    placement: str = setting("off", choices=SMA_PLACEMENTS)
    groups: int = setting(8, at_least=1)
    channels: int = setting(512, at_least=1)  # width of the MobileViT-style block around EMA when placed on the input


@dataclass
class EncoderConfig(Section):
    PATH = "model.encoder"
    name: str = setting("dinov2", choices=ENCODERS)
    variant: str = setting("vitb14")  # the DINOv2 variant (checked by that encoder); resnet50 ignores it
    weights: str | None = setting(None)  # local checkpoint; None: random initialisation (results not comparable)
    weights_prefix: str = setting("")  # key prefix to strip, e.g. "pretrained."
    depth: int | None = setting(None, at_least=1)  # override the number of blocks (tiny CPU models)
    embed_dim: int | None = setting(None, at_least=1)
    num_heads: int | None = setting(None, at_least=1)
    freeze: bool = setting(True)  # freeze the base weights (adapters, SMA and heads still train)
    adapter: AdapterConfig = setting(factory=AdapterConfig)
    sma: SMAConfig = setting(factory=SMAConfig)
    feature_layout: str = setting("spatial", choices=FEATURE_LAYOUTS)


@dataclass
class ModelConfig(Section):
    PATH = "model"
    architecture: str = setting("hps", choices=ARCHITECTURES)
    encoder: EncoderConfig = setting(factory=EncoderConfig)
    head_channels: int = setting(256, at_least=1)
    aspp_rates: tuple[int, ...] = setting((12, 24, 36), at_least=1)
    dropout: float = setting(0.5, at_least=0, below=1)


@dataclass
class OptimConfig(Section):
    PATH = "optim"
    optimizer: str = setting("adam", choices=OPTIMIZERS)
    lr: float = setting(1.1e-3, above=0)
    weight_decay: float = setting(1e-4, at_least=0)
    scheduler: str = setting("step", choices=SCHEDULERS)
    step_size: int = setting(100, at_least=1)  # epochs, for step
    gamma: float = setting(0.5, above=0)
    grad_clip: float | None = setting(None, above=0)  # max global gradient norm


@dataclass
class WeightingConfig(Section):
    PATH = "weighting"
    name: str = setting("db_mtl", choices=WEIGHTINGS)
    beta: float = setting(0.9, at_least=0, below=1)  # DB-MTL: EMA of the task gradients
    warmup_epochs: int = setting(4, at_least=1)  # STCH: epochs of sum-of-log-losses before the nadir is fixed
    mu: float = setting(1.0, above=0)  # STCH smoothing
    temperature: float = setting(2.0, above=0)  # DWA


@dataclass
class DataConfig(Section):
    PATH = "data"
    input_size: tuple[int, int] = setting((224, 224), at_least=1)  # (height, width); multiples of 14 for DINOv2
    normalise: str | None = setting("imagenet", choices=lambda: tuple(NORMALISATIONS))
    augment: bool = setting(True)
    crop_scale: tuple[float, float] = setting((0.5, 1.0), above=0, at_most=1)
    flip: bool = setting(True)
    colour_jitter: float = setting(0.2, at_least=0, at_most=1)
    batch_size: int = setting(32, at_least=1)
    eval_batch_size: int = setting(16, at_least=1)
    workers: int = setting(2, at_least=0)

    def check(self) -> None:
        if self.crop_scale[0] > self.crop_scale[1]:
            raise InputError(self.where("crop_scale"), f"the smaller scale comes first, got {list(self.crop_scale)}")


@dataclass
class TrainConfig(Section):
    PATH = "train"
    epochs: int = setting(150, at_least=1)
    seed: int = setting(42, at_least=0)
    precision: str = setting("bf16", choices=PRECISIONS)
    device: str = setting("auto", choices=DEVICES)
    # relative: mean relative improvement of the validation metrics over the first epoch; or one metric
    selection: str = setting("relative", choices=SELECTION_RULES)
    max_steps_per_epoch: int | None = setting(None, at_least=1)  # cut epochs short (tests, smoke runs)


@dataclass
class RunConfig(Section):
    preset: str = setting("")
    description: str = setting("")
    tasks: tuple[str, ...] = setting(TASKS, choices=TASKS)
    model: ModelConfig = setting(factory=ModelConfig)
    optim: OptimConfig = setting(factory=OptimConfig)
    weighting: WeightingConfig = setting(factory=WeightingConfig)
    data: DataConfig = setting(factory=DataConfig)
    train: TrainConfig = setting(factory=TrainConfig)

    def check(self) -> None:
        if not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise InputError("tasks", f"expected one or more distinct tasks of {', '.join(TASKS)}, got {list(self.tasks)}")

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
    if not isinstance(values, dict):
        raise InputError(path, "a preset is a JSON object of settings")
    parent = values.pop("extends", None)
    if parent is None:
        return values
    if parent in extended_by + (name,):
        raise InputError(path, f"presets extend each other in a cycle: {' -> '.join(extended_by + (name, parent))}")
    return _merge(_preset_values(parent, extended_by + (name,)), values)


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def _parse_override(text: str) -> dict:
    key, separator, raw = text.partition("=")
    parts = key.strip().split(".")
    if not separator or not all(parts):
        raise InputError(f"--set {text}", "an override must look like section.key=value")
    try:
        value: Any = parse_json(raw, f"--set {text}")
    except InputError:
        value = raw  # a bare word is a string: --set model.encoder.name=resnet50
    nested: Any = value
    for part in reversed(parts):
        nested = {part: nested}
    return nested


def load_config(preset: str, overrides: Sequence[str] = ()) -> RunConfig:
    """A preset with `--set` overrides, checked in full (types, allowed values, ranges)."""
    values = _preset_values(preset)
    for override in overrides:
        values = _merge(values, _parse_override(override))
    return build_section(RunConfig, {**values, "preset": preset}, "")


def config_from_dict(values: dict, where: str) -> RunConfig:
    """A saved config.json back into a RunConfig (for --resume), checked like a new one."""
    try:
        return build_section(RunConfig, values, "")
    except InputError as error:
        raise InputError(where, str(error)) from None
