"""The expert and gate machinery that mmoe, cgc, ple and dselect_k share.

A model (`MixtureOfExperts`) keeps one stream per task, all starting at the image, and passes
them through levels, then each task's head. Before level i, an optional shared trunk step
(`trunks[i]`: the shared encoder, or one of its stages) runs on each stream; level i then holds
experts every task reads (`shared`), each task's own experts (`specific`) and one gate per task,
and task t's stream becomes

    sum_i gate_t(x_t)_i * expert_i(x_t),   i over the shared experts and t's own.

Trunk steps and shared experts run once per distinct input tensor, so while the streams are
still one tensor (a one-level model, the first level of ple) they run once, not once per task.

Two kinds of experts:
- on resnet50 (as LibMTL), each expert is an encoder copy (or, in ple, one stage of one) built
  by the encoder factory, and the gates read the level input flattened (LibMTL: a linear layer
  on the flattened image, then softmax); there is no trunk.
- on the ViT encoders (dinov2, endovit) and any other encoder, the encoder is a trunk shared by
  every task (`MixtureOfExperts.encoder`), and the experts are small residual per-token MLPs
  (`TokenExpert`: x + fc2(GELU(fc1(x))) at each position, hidden width model.experts.hidden,
  default the encoder width) over its feature map, so the pretrained features are kept and
  refined. The gates read the mean (patch) token: a linear layer, then softmax.

Gates (`SoftmaxGate`, `DSelectKGate`) compute in float32 outside autocast. The trainable
parameters of the shared encoder and of the shared experts are what every task shares
(`MixtureOfExperts.shared_parameters`); gates and task-specific experts belong to one task.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from baselines.config import ModelConfig
from baselines.models.heads import build_task_heads, check_tasks
from baselines.models.registries import ENCODERS
from baselines.models.multitask import MultiTaskModel
from mtlbench.errors import InputError

# Encoders whose experts are whole encoder copies (LibMTL's image experts); every other encoder is
# run once as a shared trunk under per-token experts.
ENCODER_EXPERTS = ("resnet50",)
FLATTEN, MEAN = "flatten", "mean"  # what a gate reads: the level input flattened, or its mean token
# DSelect-k: weight of the selectors' entropy regulariser (LibMTL and the official EntropyRegularizer: 1e-6)
ENTROPY_WEIGHT = 1e-6
ENTROPY_EPSILON = 1e-6  # inside the log, as both


def uses_encoder_experts(config: ModelConfig) -> bool:
    """True when the experts are copies of the encoder (resnet50), False for token experts over a shared trunk."""
    return config.encoder.name in ENCODER_EXPERTS


def check_experts(config: ModelConfig, architecture: str) -> None:
    """The settings that no mixture-of-experts architecture builds, refused in one line."""
    if config.encoder.adapter.tesla:
        raise InputError(
            "model.encoder.adapter.tesla",
            f"{architecture} already gives each task its own gate over the experts; task-specific (TESLA) adapters go with hps",
        )
    name = config.encoder.name
    if uses_encoder_experts(config):
        if config.experts.hidden is not None:
            raise InputError(
                "model.experts.hidden", f"the token experts' width is for ViT encoders: {architecture}'s experts on {name} are encoder copies"
            )
        if config.encoder.freeze:
            raise InputError(
                "model.encoder.freeze",
                f"{architecture}'s experts on {name} are copies of the encoder: frozen, they would be one network repeated (set it false)",
            )
    elif config.encoder.feature_layout != "spatial":
        raise InputError(
            "model.encoder.feature_layout", f"{architecture}'s token experts read the spatial feature map: set it to spatial"
        )


# ---------------------------------------------------------------------------------------------
# Experts


class TokenExpert(nn.Module):
    """A residual per-token MLP, x + fc2(GELU(fc1(x))) at every position: over a (B, D, h, w) map,
    or over (B, N, D) tokens when `tokens`."""

    def __init__(self, dim: int, hidden: int, tokens: bool = False):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.tokens = tokens

    def forward(self, features: Tensor) -> Tensor:
        tokens = features if self.tokens else features.movedim(1, -1)
        out = tokens + self.fc2(self.act(self.fc1(tokens)))
        return out if self.tokens else out.movedim(-1, 1)


def output_shape(module: nn.Module, shape: Sequence[int]) -> tuple[int, ...]:
    """The shape of module(input of `shape`), found on the meta device (no computation, no state touched)."""
    meta = {name: torch.empty_like(tensor, device="meta") for name, tensor in [*module.named_parameters(), *module.named_buffers()]}
    with torch.no_grad():
        return tuple(torch.func.functional_call(module, meta, (torch.empty(*shape, device="meta"),)).shape)


# ---------------------------------------------------------------------------------------------
# Gates


def gate_input(features: Tensor, mode: str) -> Tensor:
    """What a gate reads, in float32: (B, prod(rest)) for FLATTEN, (B, C) averaged over positions for MEAN."""
    pooled = features.flatten(1) if mode == FLATTEN else features.flatten(2).mean(dim=2)
    return pooled.float()


class SoftmaxGate(nn.Module):
    """MMoE's gate: weights (B, experts) = softmax(W x + b), summing to 1 for each sample."""

    def __init__(self, features: int, experts: int):
        super().__init__()
        self.linear = nn.Linear(features, experts)

    def forward(self, x: Tensor) -> Tensor:
        return torch.softmax(self.linear(x), dim=-1)


def smooth_step(t: Tensor, gamma: float) -> Tensor:
    """DSelect-k's smooth step: 0 for t <= -gamma/2, 1 for t >= gamma/2, and the cubic
    -2 t^3 / gamma^3 + 3 t / (2 gamma) + 1/2 between (continuously differentiable)."""
    cubic = -2 / gamma**3 * t**3 + 3 / (2 * gamma) * t + 0.5
    return torch.where(t <= -gamma / 2, torch.zeros_like(t), torch.where(t >= gamma / 2, torch.ones_like(t), cubic))


def binary_codes(experts: int) -> Tensor:
    """(experts, bits) booleans: row i is i in binary, most significant bit first (numpy's binary_repr)."""
    bits = math.ceil(math.log2(experts)) if experts > 1 else 0
    return torch.tensor([[(index >> (bits - 1 - bit)) & 1 for bit in range(bits)] for index in range(experts)], dtype=torch.bool).reshape(
        experts, bits
    )


def dselect_regulariser(selectors: Tensor, power_of_two: bool, entropy_weight: float = ENTROPY_WEIGHT) -> Tensor:
    """The official DSelect-k regulariser of the selector outputs (B, k, experts): entropy_weight
    times their entropy summed over samples and selectors, plus, when the experts are not a power of
    2, the sum of 1 / (weight of the reachable experts) so that no selector settles on a code past them."""
    regulariser = -(selectors * torch.log(selectors + ENTROPY_EPSILON)).sum() * entropy_weight
    if not power_of_two:
        regulariser = regulariser + (1 / selectors.sum(dim=-1)).sum()
    return regulariser


class DSelectKGate(nn.Module):
    """DSelect-k's example-conditioned gate: weights (B, experts) over `experts` with at most
    `selected` non-zero, from `selected` single-expert selectors.

    Selector j reads `bits` = ceil(log2 experts) logits z_j (a linear map of the input), puts each
    through the smooth step S, and gives expert i (binary code c_i) the weight
    prod_b (S(z_jb) if c_ib else 1 - S(z_jb)); the selectors are mixed by softmax(w(x)). Once the
    smooth steps reach 0 or 1, each selector picks exactly one expert.

    While training with gradients on, each forward adds the gradient of `dselect_regulariser` of
    its selector outputs to theirs through a hook: every backward pass that reaches this gate
    (one per step in a plain loss.backward, one per task's pass for per-task gradient methods, and
    only this task's loss reaches its gate) carries the regulariser's gradient once, as if it were
    added to the task's loss unweighted.
    """

    def __init__(self, features: int, experts: int, selected: int, gamma: float):
        super().__init__()
        self.selected, self.gamma = selected, gamma
        self.register_buffer("codes", binary_codes(experts), persistent=False)
        self.bits = self.codes.shape[1]
        self.power_of_two = experts == 2**self.bits
        with warnings.catch_warnings():  # one expert: no bits, and torch warns that a 0-wide layer has nothing to initialise
            warnings.simplefilter("ignore", UserWarning)
            self.z_logits = nn.Linear(features, selected * self.bits)
        self.w_logits = nn.Linear(features, selected)
        # the official initialisation: z uniform in +-gamma/100 (near the middle of the smooth step), w in +-0.05
        nn.init.uniform_(self.z_logits.weight, -gamma / 100, gamma / 100)
        nn.init.uniform_(self.z_logits.bias, -gamma / 100, gamma / 100)
        nn.init.uniform_(self.w_logits.weight, -0.05, 0.05)
        nn.init.uniform_(self.w_logits.bias, -0.05, 0.05)

    def selectors(self, x: Tensor) -> Tensor:
        """(B, selected, experts): each single-expert selector's weights over the experts."""
        activations = smooth_step(self.z_logits(x).reshape(len(x), self.selected, 1, self.bits), self.gamma)
        return torch.where(self.codes, activations, 1 - activations).prod(dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        selectors = self.selectors(x)
        if self.training and selectors.requires_grad:
            with torch.enable_grad():
                leaf = selectors.detach().requires_grad_()
                (extra,) = torch.autograd.grad(dselect_regulariser(leaf, self.power_of_two), leaf)
            selectors.register_hook(lambda gradient: gradient + extra)
        mixing = torch.softmax(self.w_logits(x), dim=-1)
        return torch.einsum("bk,bke->be", mixing, selectors)


GateFactory = Callable[[int, int], nn.Module]  # (input features, experts) -> gate


def softmax_gate(features: int, experts: int) -> nn.Module:
    return SoftmaxGate(features, experts)


def dselect_k_gate(selected: int, gamma: float) -> GateFactory:
    return lambda features, experts: DSelectKGate(features, experts, selected, gamma)


def mix(weights: Tensor, outputs: Sequence[Tensor]) -> Tensor:
    """sum_i weights[:, i] * outputs[i]: weights (B, E), outputs E tensors (B, ...)."""
    return torch.einsum("be,eb...->b...", weights.to(outputs[0].dtype), torch.stack(list(outputs)))


# ---------------------------------------------------------------------------------------------
# Levels and the model


class ExpertLevel(nn.Module):
    """forward({task: input}) -> {task: gated mixture of the shared experts and the task's own}.

    The gates read each task's input (`gate_mode` FLATTEN or MEAN). An input that is the same
    tensor for several tasks runs the shared experts once. `tokens_prefix` is None for (B, C, ...)
    maps; for (B, N, D) token sequences it is the number of prefix tokens (CLS, registers) that
    the mean token leaves out.
    """

    def __init__(
        self,
        shared: Sequence[nn.Module],
        specific: dict[str, Sequence[nn.Module]],
        gates: dict[str, nn.Module],
        gate_mode: str,
        tokens_prefix: int | None = None,
    ):
        super().__init__()
        self.shared = nn.ModuleList(shared)
        self.specific = nn.ModuleDict({task: nn.ModuleList(experts) for task, experts in specific.items()})
        self.gates = nn.ModuleDict(gates)
        self.gate_mode = gate_mode
        self.tokens_prefix = tokens_prefix

    def forward(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        shared_outputs: dict[int, list[Tensor]] = {}
        mixed = {}
        for task, x in inputs.items():
            if id(x) not in shared_outputs:
                shared_outputs[id(x)] = [expert(x) for expert in self.shared]
            outputs = shared_outputs[id(x)] + [expert(x) for expert in self.specific[task]]
            mixed[task] = mix(self.gate_weights(task, x), outputs)
        return mixed

    def gate_weights(self, task: str, x: Tensor) -> Tensor:
        """Task's gate weights (B, experts) for its input `x`, computed in float32."""
        if self.tokens_prefix is not None:  # (B, N, D) tokens: the gate reads the patch tokens as a (B, D, N) map
            x = x[:, self.tokens_prefix :].transpose(1, 2)
        with torch.autocast(x.device.type, enabled=False):
            return self.gates[task](gate_input(x, self.gate_mode))


class MixtureOfExperts(MultiTaskModel):
    """forward(images) -> {task: logits}: each task's stream through the trunk steps and the
    expert levels, then its head.

    `encoder` (optional) is the shared trunk, registered here; `trunks[i]` (callables, possibly
    stages of `encoder`, not registered) runs on each distinct stream before level i (None: no
    step). Images of another size than `input_size` are resized to it bilinearly first, as HPS does.
    """

    def __init__(
        self,
        levels: Sequence[ExpertLevel],
        heads: nn.ModuleDict,
        input_size: tuple[int, int],
        align_corners: bool = False,
        encoder: nn.Module | None = None,
        trunks: Sequence[Callable[[Tensor], Tensor] | None] | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.levels = nn.ModuleList(levels)
        self.trunks = list(trunks) if trunks is not None else [None] * len(levels)
        self.attach_heads(heads, input_size, align_corners)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        size = images.shape[-2:]
        images = self.resize_input(images)
        streams = {task: images for task in self.tasks}
        for trunk, level in zip(self.trunks, self.levels):
            if trunk is not None:
                streams = _run_once_per_input(trunk, streams)
            streams = level(streams)
        return {task: head(streams[task], size) for task, head in self.heads.items()}

    def shared_parameters(self) -> list[nn.Parameter]:
        """The trainable parameters of the shared encoder and of the shared experts (gates,
        task-specific experts and heads are each one task's)."""
        modules = ([] if self.encoder is None else [self.encoder]) + [level.shared for level in self.levels]
        unique = {id(p): p for module in modules for p in module.parameters() if p.requires_grad}
        return list(unique.values())


def _run_once_per_input(step: Callable[[Tensor], Tensor], streams: dict[str, Tensor]) -> dict[str, Tensor]:
    """{task: step(x)}, calling step once for the tasks whose input is the same tensor."""
    done: dict[int, Tensor] = {}
    for x in streams.values():
        if id(x) not in done:
            done[id(x)] = step(x)
    return {task: done[id(x)] for task, x in streams.items()}


def build_one_level(
    config: ModelConfig,
    tasks: tuple[str, ...],
    num_classes: int,
    num_activities: int,
    input_size: tuple[int, int],
    shared: int,
    per_task: int,
    gate: GateFactory,
) -> MixtureOfExperts:
    """mmoe, cgc and dselect_k: `shared` experts every task reads, `per_task` experts of each task's
    own, one gate per task over both (resnet50: encoder copies gated on the flattened image; other
    encoders: token experts over the shared encoder, gated on its mean token)."""
    check_tasks(tasks)
    build_encoder = ENCODERS.get(config.encoder.name)
    if uses_encoder_experts(config):
        encoder, gate_mode = None, FLATTEN
        make_expert: Callable[[], nn.Module] = lambda: build_encoder(config.encoder, tasks, input_size)  # noqa: E731
        first = make_expert()
        channels, features = first.out_channels, 3 * input_size[0] * input_size[1]
    else:
        encoder, gate_mode = build_encoder(config.encoder, tasks, input_size), MEAN
        channels = features = encoder.out_channels
        make_expert = lambda: TokenExpert(channels, config.experts.hidden or channels)  # noqa: E731
        first = make_expert()
    experts = [first] + [make_expert() for _ in range(shared - 1)]
    level = ExpertLevel(
        experts,
        {task: [make_expert() for _ in range(per_task)] for task in tasks},
        {task: gate(features, shared + per_task) for task in tasks},
        gate_mode,
    )
    heads = build_task_heads(config, tasks, channels, num_classes, num_activities)
    return MixtureOfExperts([level], heads, input_size, config.align_corners, encoder, [encoder])
