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
from baselines.vl.losses import MULTILABEL_LOSSES
from baselines.vl.registry import VL_ARCHITECTURES
from baselines.vl.text_encoder import DEFAULT_WEIGHTS as DEFAULT_TEXT_WEIGHTS
from baselines.optim import OPTIMIZERS, SCHEDULERS
from baselines.settings import Section, build_section, setting
from baselines.weighting.registry import WEIGHTINGS
from baselines.weighting.sources import GRADIENT_CHOICES, REPRESENTATION
from mtlbench.dataset.loader import NORMALISATIONS
from mtlbench.dataset.resize import RESIZE_RULES
from mtlbench.errors import InputError
from mtlbench.jsonio import parse_json, read_json

PRESET_DIR = Path(__file__).parent / "configs"
NO_ADAPTER = "none"
SMA_PLACEMENTS = ("off", "input", "tokens")  # input: before the patch embedding (the release); tokens: on the patch-token map
SMA_LAYOUTS = ("map", "patches")  # map: EMA over the whole feature map; patches: the release's 7x7-unfolded layout
FEATURE_LAYOUTS = ("spatial", "release_view")  # release_view: the release's plain view of the tokens
PRECISIONS = ("bf16", "fp32")  # bf16 is autocast on CUDA only
DEVICES = ("auto", "cpu", "cuda")
TASKS = ("activity", "segmentation")  # the EndoARSS tasks the reference runners train
VL_TASK_TYPES = ("multilabel", "classification", "text")  # what the vision-language runners train


def architecture_names() -> tuple[str, ...]:
    return (*ARCHITECTURES.names(), *VL_ARCHITECTURES.names())


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
    # map: EMA on the (B, channels, H, W) map in `groups` groups; patches (the release, input placement
    # only): the map unfolded into patch_size x patch_size patches, EMA with patch_size**2 channels
    # (the positions in a patch) in `groups` groups over (patch index, feature) planes
    layout: str = setting("map", choices=SMA_LAYOUTS)
    patch_size: int = setting(7, at_least=1)
    trainable: bool = setting(True)  # false: SMA stays at its initialisation, as in the release

    def check(self) -> None:
        if self.layout == "patches" and self.placement != "input":
            raise InputError(self.where("layout"), "the patches layout is the release's input block: set placement to input")


@dataclass
class EncoderConfig(Section):
    PATH = "model.encoder"
    name: str = setting("dinov2", choices=ENCODERS)
    variant: str = setting("vitb14")  # the DINOv2 variant (checked by that encoder); resnet50 ignores it
    weights: str | None = setting(None)  # local checkpoint; None: random initialisation (results not comparable)
    weights_prefix: str = setting("")  # key prefix to strip; Depth Anything files are recognised without it
    depth: int | None = setting(None, at_least=1)  # override the number of blocks (tiny CPU models)
    embed_dim: int | None = setting(None, at_least=1)
    num_heads: int | None = setting(None, at_least=1)
    freeze: bool = setting(True)  # freeze the base weights (adapters, SMA and heads still train)
    adapter: AdapterConfig = setting(factory=AdapterConfig)
    sma: SMAConfig = setting(factory=SMAConfig)
    feature_layout: str = setting("spatial", choices=FEATURE_LAYOUTS)


@dataclass
class TextEncoderConfig(Section):
    """The vision-language runners' text encoder (BERT family)."""

    PATH = "model.text"
    weights: str | None = setting(DEFAULT_TEXT_WEIGHTS)  # the default model, a Hugging Face BERT folder, or None (from scratch)
    hidden: int = setting(384, at_least=1)  # the shape when trained from scratch (weights None)
    layers: int = setting(6, at_least=1)
    heads: int = setting(12, at_least=1)
    max_tokens: int = setting(64, at_least=2)  # context text tokens, [CLS] and [SEP] included
    freeze: bool = setting(False)

    def check(self) -> None:
        if self.weights is None and self.hidden % self.heads:
            raise InputError(self.where("heads"), f"{self.heads} heads do not divide the width {self.hidden}")


@dataclass
class FusionConfig(Section):
    """Which inputs the vision-language model sees; each switch off is one of the paper's ablations."""

    PATH = "model.fusion"
    image: bool = setting(True)  # the image embedding
    text: bool = setting(True)  # the text embedding (the context text through the text encoder)
    cross_attention: bool = setting(True)  # text-encoder layers attend to the image tokens

    def check(self) -> None:
        if not (self.image or self.text):
            raise InputError(self.PATH, "switch on the image or the text embedding (or both)")
        if self.cross_attention and not (self.image and self.text):
            raise InputError(self.where("cross_attention"), "cross-attention fuses text with image tokens: it needs both embeddings (set it false)")


@dataclass
class DecoderConfig(Section):
    """The text decoder and its generation settings (vision-language runners)."""

    PATH = "model.decoder"
    width: int = setting(384, at_least=1)
    layers: int = setting(4, at_least=1)
    heads: int = setting(6, at_least=1)
    vocabulary: int = setting(8000, at_least=5)  # most frequent training words kept (the specials included)
    max_length: int = setting(48, at_least=2)  # words generated, end token included
    beam_size: int = setting(1, at_least=1)
    no_repeat_ngram: int = setting(3, at_least=0)  # 0: no n-gram blocking
    length_penalty: float = setting(1.0, at_least=0)
    label_smoothing: float = setting(0.1, at_least=0, below=1)

    def check(self) -> None:
        if self.width % self.heads:
            raise InputError(self.where("heads"), f"{self.heads} heads do not divide the width {self.width}")


@dataclass
class GPT2Settings(Section):
    """The SurgicalGPT-style reference's GPT-2 (architecture lv-gpt)."""

    PATH = "model.gpt2"
    weights: str | None = setting(None)  # a Hugging Face GPT-2 file or folder; None: random initialisation
    layers: int = setting(12, at_least=1)  # the shape without weights (with weights, the file's)
    width: int = setting(768, at_least=1)
    heads: int = setting(12, at_least=1)
    freeze: bool = setting(False)

    def check(self) -> None:
        if self.width % self.heads:
            raise InputError(self.where("heads"), f"{self.heads} heads do not divide the width {self.width}")


@dataclass
class ExpertsConfig(Section):
    """The mixture-of-experts architectures (mmoe, cgc, ple, dselect_k)."""

    PATH = "model.experts"
    shared: int = setting(4, at_least=1)  # mmoe, dselect_k: the experts; cgc, ple: the experts every task shares
    per_task: int = setting(1, at_least=1)  # cgc, ple: each task's own experts
    selected: int = setting(2, at_least=1)  # dselect_k: the experts each task's gate selects (k)
    gamma: float = setting(1.0, above=0)  # dselect_k: width of the smooth-step function
    hidden: int | None = setting(None, at_least=1)  # token experts on ViT encoders: hidden width (null: the encoder width)

    def check(self) -> None:
        if self.selected > self.shared:
            raise InputError(self.where("selected"), f"a gate cannot select {self.selected} of {self.shared} experts")


@dataclass
class ModelConfig(Section):
    PATH = "model"
    architecture: str = setting("hps", choices=architecture_names)
    encoder: EncoderConfig = setting(factory=EncoderConfig)
    head_channels: int = setting(256, at_least=1)
    aspp_rates: tuple[int, ...] = setting((12, 24, 36), at_least=1)
    dropout: float = setting(0.5, at_least=0, below=1)
    aspp_pooling_batchnorm: bool = setting(False)  # BatchNorm in ASPP's image-pooling branch (the release)
    # bilinear resizes of the model (input to data.input_size, logits back to the loaded size): the release uses true
    align_corners: bool = setting(False)
    text: TextEncoderConfig = setting(factory=TextEncoderConfig)
    fusion: FusionConfig = setting(factory=FusionConfig)
    decoder: DecoderConfig = setting(factory=DecoderConfig)
    gpt2: GPT2Settings = setting(factory=GPT2Settings)
    experts: ExpertsConfig = setting(factory=ExpertsConfig)


@dataclass
class LossConfig(Section):
    """Losses of the vision-language runners (baselines/vl/losses.py)."""

    PATH = "loss"
    multilabel: str = setting("asymmetric", choices=MULTILABEL_LOSSES)
    gamma_positive: float = setting(0.0, at_least=0)  # asymmetric loss
    gamma_negative: float = setting(4.0, at_least=0)
    clip: float = setting(0.05, at_least=0, below=1)


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
    """The weighting method and every method's hyperparameters, each at its authors' default
    (docs/baselines.md gives each one's paper and its differences from LibMTL)."""

    PATH = "weighting"
    name: str = setting("db_mtl", choices=WEIGHTINGS)
    # what a gradient-balancing method balances: auto (the method's own choice), the shared parameters'
    # gradients, or the gradients of the representation every head reads (MGDA-UB; architecture hps)
    gradients: str = setting("auto", choices=GRADIENT_CHOICES)
    beta: float = setting(0.9, at_least=0, below=1)  # DB-MTL: EMA of the task gradients
    warmup_epochs: int = setting(4, at_least=1)  # STCH: epochs of sum-of-log-losses before the nadir is fixed
    mu: float = setting(1.0, above=0)  # STCH smoothing
    scale_by_task_count: bool = setting(False)  # STCH: multiply the objective by the number of tasks (the release)
    temperature: float = setting(2.0, above=0)  # DWA
    gradnorm_alpha: float = setting(1.5, at_least=0)  # GradNorm: the restoring force's asymmetry
    mgda_normalisation: str = setting("none", choices=("none", "l2", "loss", "loss+"))  # MGDA: gradient normalisation
    gradvac_beta: float = setting(0.01, above=0, at_most=1)  # GradVac: EMA rate of the gradient-similarity targets
    graddrop_leak: float = setting(0.0, at_least=0, at_most=1)  # GradDrop: share of each gradient kept regardless of sign
    cagrad_c: float = setting(0.4, at_least=0)  # CAGrad: radius of the conflict-averse ball around the mean gradient
    cagrad_rescale: int = setting(1, choices=(0, 1, 2))  # CAGrad: 0 none, 1 divide by 1 + c^2, 2 by 1 + c
    nash_update_every: int = setting(1, at_least=1)  # Nash-MTL: steps between solving for new weights
    nash_max_norm: float = setting(1.0, at_least=0)  # Nash-MTL: clip of the shared gradient's norm (0: off)
    moco_beta: float = setting(0.5, above=0, at_most=1)  # MoCo: tracking rate of the task gradients
    moco_beta_sigma: float = setting(0.5, at_least=0)  # MoCo: decay exponent of beta over steps
    moco_gamma: float = setting(0.1, above=0)  # MoCo: step size of the weights
    moco_gamma_sigma: float = setting(0.5, at_least=0)  # MoCo: decay exponent of gamma over steps
    moco_rho: float = setting(0.0, at_least=0)  # MoCo: L2 regularisation of the weights
    famo_lr: float = setting(0.025, above=0)  # FAMO: learning rate of the task logits
    famo_weight_decay: float = setting(0.001, at_least=0)  # FAMO: their weight decay
    fairgrad_alpha: float = setting(1.0, above=0)  # FairGrad: the alpha-fairness exponent
    excess_step: float = setting(0.01, above=0)  # ExcessMTL: robust (exponentiated-gradient) step size
    upgrad_norm_eps: float = setting(1e-4, above=0)  # UPGrad: below this squared norm the Gramian counts as zero
    upgrad_reg_eps: float = setting(1e-4, at_least=0)  # UPGrad: ridge added to the normalised Gramian

    def check(self) -> None:
        WEIGHTINGS.get(self.name).gradient_source(self)


@dataclass
class DataConfig(Section):
    PATH = "data"
    input_size: tuple[int, int] = setting((224, 224), at_least=1)  # (height, width) the encoder sees; multiples of 14 for DINOv2
    # frames and masks are loaded at this size (null: input_size); the model resizes its input to
    # input_size and its logits back to it (the release: 244, then 224 in the model)
    load_size: tuple[int, int] | None = setting(None, at_least=1)
    resize: str = setting("antialias", choices=RESIZE_RULES)  # how the loader resizes frames and masks
    cache: bool = setting(False)  # decode and resize each frame once into a memory-mapped cache (docs/data-cache.md)
    cache_dir: str | None = setting(None)  # where caches live; null: $MTLBENCH_CACHE or ~/.cache/mtlbench
    drop_last: bool = setting(False)  # drop the last incomplete training batch (the release)
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
    # (the task.metric names depend on the dataset's tasks: checked when the run starts)
    selection: str = setting("relative")  # also "release_delta_p": the release's Δp rule (baselines/selection.py)
    max_steps_per_epoch: int | None = setting(None, at_least=1)  # cut epochs short (tests, smoke runs)


@dataclass
class RunConfig(Section):
    preset: str = setting("")
    description: str = setting("")
    # the tasks to train; empty: every task of the dataset whose type is in task_types (checked
    # against the dataset and the architecture when the run starts)
    tasks: tuple[str, ...] = setting(TASKS)
    task_types: tuple[str, ...] = setting(VL_TASK_TYPES, choices=VL_TASK_TYPES)
    model: ModelConfig = setting(factory=ModelConfig)
    loss: LossConfig = setting(factory=LossConfig)
    optim: OptimConfig = setting(factory=OptimConfig)
    weighting: WeightingConfig = setting(factory=WeightingConfig)
    data: DataConfig = setting(factory=DataConfig)
    train: TrainConfig = setting(factory=TrainConfig)

    def check(self) -> None:
        if len(set(self.tasks)) != len(self.tasks):
            raise InputError("tasks", f"expected distinct task names, got {list(self.tasks)}")
        if not self.task_types:
            raise InputError("task_types", "name at least one task type")
        self.check_architecture_and_weighting()

    def check_architecture_and_weighting(self) -> None:
        """The architecture's own refusals, and a weighting method that needs a shared
        representation with an architecture that has none, refused before anything is built."""
        architecture = self.model.architecture
        if architecture in ARCHITECTURES:
            factory = ARCHITECTURES.get(architecture)
            factory.check_config(self.model)
            refusal = factory.representation_refusal(self.model)
        else:
            refusal = "the vision-language models do not cut their representation"
        if WEIGHTINGS.get(self.weighting.name).gradient_source(self.weighting) == REPRESENTATION and refusal:
            where = "weighting.gradients" if self.weighting.gradients == REPRESENTATION else "weighting.name"
            raise InputError(
                where,
                f"{self.weighting.name} balances the gradients of the shared representation, which architecture {architecture} "
                f"does not have ({refusal}); use model.architecture=hps or weighting.gradients=parameters",
            )

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
