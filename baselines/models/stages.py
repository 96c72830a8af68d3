"""Running an encoder stage by stage, for architectures that act between stages (cross_stitch, mtan, ple).

API (stable; other architectures import it):

    stages = split_encoder(encoder, task=None)   # -> EncoderStages
    x = images                                    # already resized to the model's input size
    for stage in stages:                          # also stages.stages[i], len(stages)
        x = stage(x)
    # x == encoder(images), exactly (same operations in the same order)

`EncoderStages`
    stages:        list[Stage]; the first takes images (B, 3, H, W), each later one the previous output.
    num_prefix_tokens: tokens before the patch tokens in a "tokens" output (CLS, registers; 0 for ResNet).
    encoder:       the encoder that was split.

`Stage` (callable): stage(x) == stage.finish(stage.last(stage.body(x)))
    body:     all of the stage but its last unit (ResNet: the stem, for stage 0, and the layer's first
              blocks; ViT: the token embedding, for stage 0, and the group's first blocks). May be the
              identity (a one-block ViT stage): then body(x) is x.
    last:     the stage's last unit (the layer's last Bottleneck; the group's last ViT block). MTAN masks
              its output with attention computed from body's output, as LibMTL splits layer[:-1] / layer[-1].
    finish:   the encoder's own finishing step on the last stage of a ViT (final norm, prefix tokens
              dropped, tokens to a map, token SMA, feature layout); the identity everywhere else.
    channels, layout:             of stage(x): "map" (B, C, h, w) or "tokens" (B, N, D).
    inner_channels, inner_layout: of body(x) and of last(...), before `finish`.

Stage outputs. resnet50 (dilated, output stride 8): 4 stages as LibMTL's _transform_resnet_*: stem +
layer1 (256, H/4), layer2 (512, H/8), layer3 (1024, H/8), layer4 (2048, H/8), all maps. ViT encoders
(dinov2, endovit): NUM_STAGES groups of consecutive blocks when the depth allows (sizes as equal as
possible, the earlier groups one block larger when the depth is not a multiple), else one stage per
block; between stages the tokens (B, N, D), N = num_prefix_tokens + h*w; the last stage ends with the
encoder's finishing step, so its output is the encoder's feature map (B, encoder.out_channels, h, w).
dinov2's input SMA runs at the start of stage 0 and its token SMA in the last stage's `finish`.

The stages reference the encoder's modules (they copy nothing and hold no parameters): keep the
encoder registered in your model, not the stages; a deep copy of a model holding both stays
consistent (the copy's stages point at the copy's encoder). A ViT's stage 0 records the patch grid
of the images it embeds, which its last stage reads: run a split's stages in order, one image batch
at a time. TESLA task-specific encoders (dinov2 with adapter.tesla) split only for one task
(`task=`): every stage routes the adapters to it before running. `split_encoder` raises
ValueError for encoders it cannot split; `check_splittable(config, architecture)` is the
configuration-time refusal (InputError) for architectures built on the stages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from torch import Tensor, nn

from baselines.config import ModelConfig
from mtlbench.errors import InputError

NUM_STAGES = 4  # as ResNet's layer1..layer4
SPLITTABLE_ENCODERS = ("resnet50", "dinov2", "endovit")
MAP, TOKENS = "map", "tokens"


def _identity(x: Tensor) -> Tensor:
    return x


class Chain:
    """Callables applied in order (a module-free nn.Sequential: it registers nothing)."""

    def __init__(self, *steps: Callable[[Tensor], Tensor]):
        self.steps = steps

    def __call__(self, x: Tensor) -> Tensor:
        for step in self.steps:
            x = step(x)
        return x


@dataclass
class Stage:
    body: Callable[[Tensor], Tensor]
    last: Callable[[Tensor], Tensor]
    finish: Callable[[Tensor], Tensor]
    channels: int
    layout: str
    inner_channels: int
    inner_layout: str

    def __call__(self, x: Tensor) -> Tensor:
        return self.finish(self.last(self.body(x)))


@dataclass
class EncoderStages:
    stages: list[Stage]
    encoder: nn.Module
    num_prefix_tokens: int = 0
    kind: str = field(default="resnet50")

    def __iter__(self) -> Iterator[Stage]:
        return iter(self.stages)

    def __len__(self) -> int:
        return len(self.stages)

    def __getitem__(self, index: int) -> Stage:
        return self.stages[index]

    @property
    def channels(self) -> list[int]:
        return [stage.channels for stage in self.stages]

    @property
    def layouts(self) -> list[str]:
        return [stage.layout for stage in self.stages]

    def __call__(self, images: Tensor) -> Tensor:
        """All stages in order: encoder(images)."""
        for stage in self.stages:
            images = stage(images)
        return images


def block_groups(depth: int, stages: int = NUM_STAGES) -> list[range]:
    """Block indices of each ViT stage: `stages` consecutive groups as equal as possible, or one per block."""
    count = min(stages, depth)
    size, extra = divmod(depth, count)
    groups, start = [], 0
    for index in range(count):
        end = start + size + (index < extra)
        groups.append(range(start, end))
        start = end
    return groups


def _split_resnet(encoder: nn.Module) -> EncoderStages:
    stem = (encoder.conv1, encoder.bn1, encoder.relu, encoder.maxpool)
    stages = []
    for index in range(1, 5):
        layer = getattr(encoder, f"layer{index}")
        channels = layer[-1].bn3.num_features
        body = Chain(*(stem if index == 1 else ()), *layer[:-1])
        stages.append(Stage(body, layer[-1], _identity, channels, MAP, channels, MAP))
    return EncoderStages(stages, encoder, 0, "resnet50")


class _ViTSteps:
    """The ViT's steps around its blocks, and the patch grid between stage 0 and the last stage."""

    def __init__(self, encoder: nn.Module, kind: str, task: str | None):
        self.encoder = encoder
        self.kind = kind
        self.task = task
        self.grid: tuple[int, int] | None = None

    def route(self, x: Tensor) -> Tensor:
        self.encoder.route(self.task)
        return x

    def embed(self, images: Tensor) -> Tensor:
        encoder = self.encoder
        if self.kind == "dinov2":
            images = encoder.input_sma(images)
        patch = encoder.vit.patch_embed.proj.kernel_size
        self.grid = (images.shape[-2] // patch[0], images.shape[-1] // patch[1])
        return encoder.vit.prepare_tokens(images)

    def finish(self, tokens: Tensor) -> Tensor:
        if self.grid is None:
            raise RuntimeError("the last ViT stage needs the patch grid that stage 0 records: run the stages in order")
        vit = self.encoder.vit
        if self.kind == "dinov2":
            return self.encoder.feature_map(vit.norm(tokens), self.grid)
        return vit.feature_map(tokens, self.grid)


def _split_vit(encoder: nn.Module, kind: str, task: str | None) -> EncoderStages:
    vit = encoder.vit
    steps = _ViTSteps(encoder, kind, task)
    routing = (steps.route,) if getattr(encoder, "task_specific", False) else ()
    dim = vit.norm.normalized_shape[0]
    groups = block_groups(len(vit.blocks))
    stages = []
    for index, group in enumerate(groups):
        final = index == len(groups) - 1
        blocks = [vit.blocks[i] for i in group]
        body = Chain(*routing, *((steps.embed,) if index == 0 else ()), *blocks[:-1])
        last = Chain(*routing, blocks[-1]) if routing else blocks[-1]
        finish = steps.finish if final else _identity
        channels, layout = (encoder.out_channels, MAP) if final else (dim, TOKENS)
        stages.append(Stage(body, last, finish, channels, layout, dim, TOKENS))
    prefix = vit.num_prefix_tokens if kind == "dinov2" else 1
    return EncoderStages(stages, encoder, prefix, kind)


def split_encoder(encoder: nn.Module, task: str | None = None) -> EncoderStages:
    """The stages of a resnet50, dinov2 or endovit encoder (see the module docstring); ValueError otherwise."""
    from baselines.models.dinov2 import DinoV2Encoder
    from baselines.models.endovit import EndoViTEncoder
    from baselines.models.resnet import DilatedResNet50

    if isinstance(encoder, DilatedResNet50):
        return _split_resnet(encoder)
    if isinstance(encoder, DinoV2Encoder):
        if encoder.task_specific and task not in encoder.tasks:
            raise ValueError(
                f"this dinov2 encoder has task-specific (TESLA) adapters: split it for one task, task= one of {list(encoder.tasks)}, got {task!r}"
            )
        return _split_vit(encoder, "dinov2", task if encoder.task_specific else None)
    if isinstance(encoder, EndoViTEncoder):
        return _split_vit(encoder, "endovit", None)
    raise ValueError(f"cannot run a {type(encoder).__name__} stage by stage (splittable encoders: {', '.join(SPLITTABLE_ENCODERS)})")


def check_splittable(config: ModelConfig, architecture: str, tesla: bool = False) -> None:
    """Configuration-time refusal for an architecture built on split_encoder: the encoder must be
    splittable and, unless `tesla`, without TESLA task-specific adapters."""
    if config.encoder.name not in SPLITTABLE_ENCODERS:
        raise InputError(
            "model.architecture",
            f"{architecture} runs the encoder stage by stage, which only {', '.join(SPLITTABLE_ENCODERS)} support (got {config.encoder.name})",
        )
    if config.encoder.adapter.tesla and not tesla:
        raise InputError(
            "model.encoder.adapter.tesla",
            f"{architecture} already has task-specific parts: TESLA task-specific adapters are not supported with it",
        )

