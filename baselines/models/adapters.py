"""Low-rank adapters (LoRA, DV-LoRA) that replace a frozen nn.Linear in place.

An adapter is a subclass of nn.Linear that reuses the base layer's `weight` and `bias` under
their original keys, so official checkpoints load into an adapted model and a strict=False
load of an adapted state dict into a plain ViT reports only `lora_*` keys. B starts at zero:
an adapted model computes exactly what its base computes until the first optimiser step.

TESLA (our task-efficient option): one shared A and one B per task; the task is chosen by
setting `active_task` on the adapters before the forward pass (see `route_to_task`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.config import NO_ADAPTER, AdapterConfig
from baselines.models.registries import ADAPTERS
from mtlbench.errors import InputError

ADAPTER_KEY_PREFIX = "lora_"


def is_adapter_key(key: str) -> bool:
    """True for state-dict keys and parameter names that belong to an adapter."""
    return any(part.startswith(ADAPTER_KEY_PREFIX) for part in key.split("."))


class LoRALinear(nn.Linear):
    """out = W x + b + scale * B A x, with scale = alpha / rank."""

    def __init__(self, base: nn.Linear, rank: int, scale: float, tasks: tuple[str, ...] = ()):
        # Built on the meta device: the base's own weight and bias replace the fresh ones, so initialising them is wasted work.
        super().__init__(base.in_features, base.out_features, bias=base.bias is not None, device="meta")
        self.weight = base.weight
        self.bias = base.bias
        like = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.rank = rank
        self.scale = scale
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, **like))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        if tasks:
            self.lora_B = nn.ParameterDict({task: nn.Parameter(torch.zeros(base.out_features, rank, **like)) for task in tasks})
        else:
            self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, **like))
        self.active_task: str | None = None

    def up_projection(self) -> Tensor:
        if not isinstance(self.lora_B, nn.ParameterDict):
            return self.lora_B
        if self.active_task not in self.lora_B:
            raise RuntimeError(f"task-specific adapter needs active_task in {list(self.lora_B)}, got {self.active_task!r}")
        return self.lora_B[self.active_task]

    def low_rank_update(self, x: Tensor) -> Tensor:
        return F.linear(F.linear(x, self.lora_A), self.up_projection())

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias) + self.scale * self.low_rank_update(x)

    def extra_repr(self) -> str:
        tasks = f", tasks={list(self.lora_B)}" if isinstance(self.lora_B, nn.ParameterDict) else ""
        return f"{super().extra_repr()}, rank={self.rank}, scale={self.scale:g}{tasks}"


class DVLoRALinear(LoRALinear):
    """DV-LoRA (EndoDAC): out = W x + b + s * (diag(v) B diag(u) A) x, with s = 1 as in the EndoARSS release."""

    def __init__(self, base: nn.Linear, rank: int, tasks: tuple[str, ...] = ()):
        super().__init__(base, rank, scale=1.0, tasks=tasks)
        like = {"device": base.weight.device, "dtype": base.weight.dtype}
        # The release draws u and v with kaiming_uniform_ on (n, 1) tensors, i.e. U(-1, 1), and never trains
        # them: buffers keep them fixed and saved with the model.
        self.register_buffer("lora_u", torch.empty(rank, **like).uniform_(-1.0, 1.0))
        self.register_buffer("lora_v", torch.empty(base.out_features, **like).uniform_(-1.0, 1.0))

    def low_rank_update(self, x: Tensor) -> Tensor:
        return F.linear(F.linear(x, self.lora_A) * self.lora_u, self.up_projection()) * self.lora_v


@ADAPTERS.register("lora")
def lora(base: nn.Linear, config: AdapterConfig, tasks: tuple[str, ...]) -> LoRALinear:
    return LoRALinear(base, config.rank, scale=config.alpha / config.rank, tasks=tasks)


@ADAPTERS.register("dv-lora")
def dv_lora(base: nn.Linear, config: AdapterConfig, tasks: tuple[str, ...]) -> LoRALinear:
    return DVLoRALinear(base, config.rank, tasks=tasks)


def apply_adapters(vit: nn.Module, config: AdapterConfig, tasks: tuple[str, ...]) -> list[str]:
    """Replace, in place, every plain nn.Linear whose attribute name is in config.targets; return their names."""
    if config.kind == NO_ADAPTER:
        return []
    if config.tesla and not tasks:
        raise InputError("model.encoder.adapter.tesla", "task-specific adapters need at least one task")
    targets = [
        (f"{parent_name}.{name}" if parent_name else name, parent, name, child)
        for parent_name, parent in vit.named_modules()
        for name, child in parent.named_children()
        if name in config.targets and type(child) is nn.Linear
    ]
    if not targets:
        raise InputError("model.encoder.adapter.targets", f"no Linear layer named {', '.join(config.targets)} in the encoder")
    adapter_tasks = tuple(tasks) if config.tesla else ()
    make = ADAPTERS.get(config.kind, "model.encoder.adapter.kind")
    for _, parent, name, child in targets:
        setattr(parent, name, make(child, config, adapter_tasks))
    return [qualified for qualified, *_ in targets]


def route_to_task(model: nn.Module, task: str | None) -> None:
    """Point every adapter of `model` at `task` for the next forward passes."""
    for module in model.modules():
        if isinstance(module, LoRALinear):
            module.active_task = task
