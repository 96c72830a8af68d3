"""Where and how a run executes: device, torchrun processes, mixed precision, seeds."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
from dataclasses import dataclass
from typing import Callable, ContextManager

import numpy as np
import torch
import torch.distributed as dist

from baselines.config import TrainConfig
from mtlbench.errors import InputError


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    rank: int
    world_size: int
    autocast: Callable[[], ContextManager]

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def gather(self, value) -> list:
        """`value` of every rank, in rank order (a one-element list when not distributed)."""
        if not self.distributed:
            return [value]
        gathered = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered


def _device(preference: str, local_rank: int) -> torch.device:
    if preference == "cuda" and not torch.cuda.is_available():
        raise InputError("train.device", "cuda was asked for but no CUDA device is available")
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def start(config: TrainConfig) -> Runtime:
    """The runtime of this process; under torchrun (WORLD_SIZE > 1) joins the process group."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = _device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    # bf16 autocast only where it is fast and well supported: CUDA. CPU runs stay in float32.
    use_bf16 = config.precision == "bf16" and device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else contextlib.nullcontext
    return Runtime(device=device, rank=rank, world_size=world_size, autocast=autocast)


def stop(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 of every parameter, in name order: equal digests, equal weights.

    Buffers are left out: DDP copies BatchNorm statistics from rank 0 at the start of each
    forward, so after the last step every rank holds the statistics of its own last batch.
    """
    digest = hashlib.sha256()
    for key, tensor in model.named_parameters():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def average_gradients(parameters, runtime: Runtime) -> None:
    """Average .grad over the ranks (the weighting methods write gradients themselves, so DDP's
    hooks are bypassed with no_sync and the averaging is done here, once per step)."""
    if not runtime.distributed:
        return
    for parameter in parameters:
        # every rank reduces every trainable parameter, in the same order, or the collectives would not match
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
        dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
        parameter.grad.div_(runtime.world_size)
