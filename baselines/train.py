"""The training loop: epochs, checkpoints, resumption, validation-based model selection."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from baselines.config import OptimConfig, RunConfig
from baselines.family import Family
from mtlbench.checkpoints import load_tensor_file
from baselines.optim import OPTIMIZERS, SCHEDULERS
from baselines.runtime import Runtime, average_gradients, seed_everything
from baselines.selection import selection_score
from baselines.weighting import build_weighting
from baselines.weighting.sources import REPRESENTATION
from mtlbench.dataset.manifest import DatasetCard
from mtlbench.errors import InputError
from mtlbench.jsonio import dump_json_line
from mtlbench.outputs import write_bytes
from mtlbench.progress import ProgressFn, silent

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
METRICS = "metrics.jsonl"
CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "weighting", "state", "dataset_fingerprint")


class TrainingError(InputError):
    """Training cannot go on (a NaN loss); the message says where and what to try."""


@dataclass
class TrainingState:
    """Everything beyond the modules' state_dicts that a resumed run needs (JSON-able values only)."""

    next_epoch: int = 0
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_score: float | None = None


def build_optimizer(parameters, config: OptimConfig) -> torch.optim.Optimizer:
    return OPTIMIZERS.get(config.optimizer, "optim.optimizer")(parameters, config.lr, config.weight_decay)


def build_scheduler(optimizer, config: OptimConfig, epochs: int):
    """Stepped once per epoch."""
    return SCHEDULERS.get(config.scheduler, "optim.scheduler")(optimizer, config.step_size, config.gamma, epochs)


class Trainer:
    def __init__(self, config: RunConfig, card: DatasetCard, family: Family, model: torch.nn.Module, runtime: Runtime, run_dir: Path):
        self.config = config
        self.card = card
        self.family = family
        self.runtime = runtime
        self.run_dir = run_dir
        self.model = model.to(runtime.device)
        self.weighting = build_weighting(config.weighting, family.tasks).to(runtime.device)
        # the configuration has checked that the architecture can cut its representation
        self.cuts_representation = self.weighting.source == REPRESENTATION
        if self.cuts_representation:
            self.model.cut_representation = True
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.trainable + list(self.weighting.parameters()), config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.optim, config.train.epochs)
        self.state = TrainingState()
        # Gradients are averaged explicitly (average_gradients), so DDP only broadcasts the initial
        # weights and the BatchNorm buffers; its backward hooks are bypassed with no_sync, because
        # weighting methods such as DB-MTL write .grad themselves. Under DDP each rank balances its
        # local task gradients and the balanced gradients are averaged: for DB-MTL an approximation
        # of balancing the global batch, exact for EW, UW, DWA and STCH.
        self.wrapped = DistributedDataParallel(self.model, device_ids=[runtime.device.index] if runtime.device.type == "cuda" else None) if runtime.distributed else self.model

    # -- checkpoints -----------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        payload = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "weighting": self.weighting.state_dict(),
            "state": json.dumps(self.state.__dict__),
            "dataset_fingerprint": self.card.fingerprint,
        }
        _save(payload, self.run_dir / CHECKPOINT)

    def load_checkpoint(self, ignore_fingerprint: bool = False) -> None:
        """Continue from the run folder's checkpoint: refused if it is not a checkpoint of this
        run's kind or was trained on another dataset (unless `ignore_fingerprint`)."""
        path = self.run_dir / CHECKPOINT
        if not path.is_file():
            raise InputError(path, "no checkpoint to resume from (the run stopped before its first epoch ended)")
        payload = load_tensor_file(path, map_location=self.runtime.device)
        if not isinstance(payload, dict) or set(payload) != set(CHECKPOINT_KEYS):
            raise InputError(path, "not an mtlbench run checkpoint (written by another program or an older mtlbench)")
        if payload["dataset_fingerprint"] != self.card.fingerprint and not ignore_fingerprint:
            raise InputError(
                path,
                f"trained on the dataset with fingerprint {payload['dataset_fingerprint']}, not on {self.card.name} "
                f"({self.card.fingerprint}); --ignore-fingerprint resumes anyway",
            )
        try:
            self.model.load_state_dict(payload["model"])
            self.optimizer.load_state_dict(payload["optimizer"])
            self.scheduler.load_state_dict(payload["scheduler"])
            self.weighting.load_state_dict(payload["weighting"])
            self.state = TrainingState(**json.loads(payload["state"]))
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(path, f"does not fit this run's configuration ({reason})") from None

    # -- one epoch -------------------------------------------------------------------------
    def train_epoch(self, epoch: int, progress: ProgressFn) -> dict:
        seed_everything(self.config.train.seed * 1_000_003 + epoch)  # dropout etc.: same draws when resumed
        loader = self.family.train_loader(epoch, self.runtime)
        steps = len(loader) if self.config.train.max_steps_per_epoch is None else min(len(loader), self.config.train.max_steps_per_epoch)
        advance = progress(f"epoch {epoch + 1}/{self.config.train.epochs}", steps) if self.runtime.is_main else silent("", 0)
        shared = self.model.shared_parameters()
        sums = {task: 0.0 for task in self.family.tasks}
        weights = {task: 0.0 for task in self.family.tasks}
        self.model.train()
        for step, batch in enumerate(loader):
            if step == steps:
                break
            no_sync = self.wrapped.no_sync() if self.runtime.distributed else contextlib.nullcontext()
            with no_sync:
                losses = self.family.losses(self.wrapped, batch, self.runtime)
                # One device-to-host copy per step serves the check and the running sums (a copy per
                # task, and one after the optimiser step, would each wait for the device).
                values = dict(zip(losses, torch.stack([loss.detach() for loss in losses.values()]).tolist()))
                for task, value in values.items():
                    if not math.isfinite(value):
                        raise TrainingError(
                            f"epoch {epoch + 1} step {step + 1}",
                            f"the {task} loss is {value}: training diverged (try a lower optim.lr or optim.grad_clip)",
                        )
                self.optimizer.zero_grad(set_to_none=True)
                representation = self.model.representation if self.cuts_representation else None
                applied = self.weighting.backward(losses, shared, representation)
            average_gradients(self.trainable + list(self.weighting.parameters()), self.runtime)
            if self.config.optim.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.trainable, self.config.optim.grad_clip)
            self.optimizer.step()
            self.weighting.after_step(functools.partial(self.losses_without_gradients, batch))
            for task, value in values.items():
                sums[task] += value
                weights[task] += float(applied.get(task, 1.0))
            advance("loss " + " ".join(f"{task} {total / (step + 1):.3f}" for task, total in sums.items()))
        count = max(1, min(steps, len(loader)))
        mean_losses = {task: total / count for task, total in self._across_ranks(sums).items()}
        self.weighting.epoch_end(epoch, mean_losses)
        self.scheduler.step()
        return {"train_loss": mean_losses, "task_weights": {task: total / count for task, total in weights.items()}}

    def losses_without_gradients(self, batch: dict) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return self.family.losses(self.model, batch, self.runtime)

    def _across_ranks(self, sums: dict[str, float]) -> dict[str, float]:
        """Per-task loss sums averaged over the ranks, so that every rank's weighting method
        (DWA's history, STCH's nadir) sees the same epoch losses."""
        if not self.runtime.distributed:
            return sums
        values = torch.tensor(list(sums.values()), dtype=torch.float64, device=self.runtime.device)
        torch.distributed.all_reduce(values)
        return dict(zip(sums, (values / self.runtime.world_size).tolist()))

    def validate(self) -> dict:
        return self.family.validation_metrics(self.family.predict(self.model, self.card, "val", self.runtime), self.card)

    # -- the loop --------------------------------------------------------------------------
    def fit(self, progress: ProgressFn = silent, report=lambda record: None, stop_after_epoch: int | None = None) -> TrainingState:
        for epoch in range(self.state.next_epoch, self.config.train.epochs):
            started = time.perf_counter()
            record = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"]}
            record.update(self.train_epoch(epoch, progress))
            if self.runtime.is_main:
                record["val"] = self.validate()
                reference = self.state.history[0]["val"] if self.state.history else record["val"]
                score = selection_score(record["val"], reference, self.config.train.selection, self.family.relative_metrics)
                record["selection_score"] = score
                improved = score is not None and (self.state.best_score is None or score > self.state.best_score)
                record["best"] = improved
                record["seconds"] = round(time.perf_counter() - started, 3)
                if improved:
                    self.state.best_epoch, self.state.best_score = epoch + 1, score
                    _save(self.model.state_dict(), self.run_dir / BEST)
                self.state.history.append(record)
                self.state.next_epoch = epoch + 1
                self.save_checkpoint()
                # rewritten from the checkpointed history, so it always agrees with the checkpoint
                lines = "".join(dump_json_line(entry) for entry in self.state.history)
                write_bytes(self.run_dir / METRICS, lines.encode("utf-8"))
                report(record)
            else:
                self.state.next_epoch = epoch + 1
            self.runtime.barrier()
            if stop_after_epoch is not None and epoch + 1 >= stop_after_epoch:
                break
        return self.state


def _save(payload: dict, path: Path) -> None:
    """torch.save through a temporary name, so a crash never leaves a truncated checkpoint."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_bytes(path, buffer.getvalue())
