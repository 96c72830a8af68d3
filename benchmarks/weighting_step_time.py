"""Training step time of every weighting method relative to EW on the same model and batch, and
peak memory, for two models:

- resnet50: hard parameter sharing on a dilated ResNet-50, every parameter trained (23.5M shared
  parameters: LibMTL's setting, where the per-task gradient matrix is large);
- endoarss: the EndoARSS model (DINOv2 ViT-S/14 frozen, DV-LoRA adapters, SMA; few shared
  trainable parameters).

A step is what the trainer does: forward, the method's backward, the optimiser step and the
method's after_step (FAMO's second forward). Each method runs in its own process, so that its
peak memory is its own: max resident set size on CPU (the whole process: model, optimiser and
interpreter included; the increase over EW is the method's), torch.cuda.max_memory_allocated on
CUDA. Batches are synthetic (random images, masks, labels), and the first steps are not timed.
In each process the method's steps alternate with EW's on the same model and batch, and the
figure is the ratio of their medians: on a shared virtual machine the speed drifts by tens of
per cent between processes, and alternating cancels that drift. Representation-gradient methods
(graddrop) balance the cut representation.

With `--libmtl DIR` (a LibMTL checkout, github.com/median-research-group/LibMTL) each method that
LibMTL has and can run here (Nash-MTL needs cvxpy, UPGrad qpsolvers, GradDrop its representation
hooks) is also measured as LibMTL implements it, in the same configuration: the same model, batch,
optimiser and step, with LibMTL's per-task `loss.backward()` and gradient-vector copies and its
default hyperparameters. Only LibMTL's weighting modules are imported.

    python benchmarks/weighting_step_time.py                    # CPU: both models, 112 px
    python benchmarks/weighting_step_time.py --libmtl ../LibMTL --model resnet50
    python benchmarks/weighting_step_time.py --device cuda --size 224 --batch 16 --model resnet50
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import subprocess
import sys
import time

# mtlbench name -> (LibMTL module and class, LibMTL's default keyword arguments for it)
LIBMTL = {
    "ew": ("EW", {}),
    "db_mtl": ("DB_MTL", {"DB_beta": 0.9, "DB_beta_sigma": 0}),
    "gradnorm": ("GradNorm", {"alpha": 1.5}),
    "mgda": ("MGDA", {"mgda_gn": "none"}),
    "pcgrad": ("PCGrad", {}),
    "gradvac": ("GradVac", {"GradVac_beta": 0.5, "GradVac_group_type": 0}),
    "imtl": ("IMTL", {}),
    "cagrad": ("CAGrad", {"calpha": 0.5, "rescale": 1}),
    "moco": ("MoCo", {"MoCo_beta": 0.5, "MoCo_beta_sigma": 0.5, "MoCo_gamma": 0.1, "MoCo_gamma_sigma": 0.5, "MoCo_rho": 0}),
    "aligned_mtl": ("Aligned_MTL", {}),
    "excess_mtl": ("ExcessMTL", {"robust_step_size": 1e-2}),
    "fairgrad": ("FairGrad", {"FairGrad_alpha": 1.0}),
    "famo": ("FAMO", {"FAMO_w_lr": 0.025, "FAMO_w_gamma": 1e-3}),
    "gls": ("GLS", {}),
    "rlw": ("RLW", {}),
    "uw": ("UW", {}),
}

MODELS = {
    "resnet50": ("hps-resnet50", []),
    "endoarss": ("endoarss", ["model.encoder.variant=vits14", "train.precision=fp32"]),
}


def libmtl_weighting(directory: str, method: str, model, shared, tasks, device):
    """LibMTL's implementation of `method`, bound to our model as LibMTL's architectures bind it,
    and the keyword arguments its trainer would pass. Only LibMTL.weighting's modules are loaded
    (its package __init__ would import the whole trainer and its dependencies)."""
    import importlib
    import pathlib
    import types

    for package in ("LibMTL", "LibMTL.weighting"):
        if package not in sys.modules:
            module = types.ModuleType(package)
            module.__path__ = [str(pathlib.Path(directory, *package.split(".")))]
            sys.modules[package] = module
    name, kwargs = LIBMTL[method]
    base = getattr(importlib.import_module(f"LibMTL.weighting.{name}"), name)

    class Bound(base):
        def __init__(self):
            super().__init__()
            self.task_num, self.task_name, self.device, self.rep_grad = len(tasks), list(tasks), device, False
            self.encoder, self.epoch = model.encoder, 1  # epoch 1: GradNorm past its first epoch
            self.train_loss_buffer = __import__("numpy").ones((len(tasks), 2))
            self.init_param()

        def get_share_params(self):
            return shared

        def zero_grad_share_params(self):
            self.encoder.zero_grad(set_to_none=False)

    return Bound().to(device), kwargs


def measure(arguments: argparse.Namespace, model_name: str, method: str, implementation: str = "mtlbench") -> dict:
    import torch

    from baselines.config import load_config
    from baselines.endoarss_family import task_losses
    from baselines.models import build_model
    from baselines.train import build_optimizer
    from baselines.weighting import build_weighting
    from baselines.weighting.sources import REPRESENTATION

    preset, settings = MODELS[model_name]
    size = arguments.size
    config = load_config(preset, [*settings, f"data.input_size=[{size},{size}]", f"weighting.name={method}"])
    device = torch.device(arguments.device)
    torch.manual_seed(0)
    classes, activities = 12, 13
    tasks = tuple(config.tasks)
    model = build_model(config.model, tasks, classes, activities, (size, size)).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    shared = model.shared_parameters()
    if implementation == "libmtl":
        weighting, kwargs = libmtl_weighting(arguments.libmtl, method, model, shared, tasks, device)
        cut = False
    else:
        weighting = build_weighting(config.weighting, tasks).to(device)
        cut = weighting.source == REPRESENTATION
        model.cut_representation = cut
    equal = build_weighting(dataclasses.replace(config.weighting, name="ew"), tasks)
    optimizer = build_optimizer(trainable + list(weighting.parameters()), config.optim)
    batch = {
        "image": torch.rand(arguments.batch, 3, size, size, device=device),
        "mask": torch.randint(0, classes, (arguments.batch, size, size), device=device),
        "activity": torch.randint(0, activities, (arguments.batch,), device=device),
    }
    model.train()

    def losses_again():
        with torch.no_grad():
            return task_losses(model(batch["image"]), batch, device)

    def reference_step():
        model.cut_representation = False  # EW's backward runs through the encoder
        losses = task_losses(model(batch["image"]), batch, device)
        model.cut_representation = cut
        optimizer.zero_grad(set_to_none=True)
        equal.backward(losses, shared)
        optimizer.step()

    def step():
        losses = task_losses(model(batch["image"]), batch, device)
        optimizer.zero_grad(set_to_none=True)
        if implementation == "libmtl":  # LibMTL's trainer: a stacked loss vector, FAMO's update_w after the step
            weighting.backward(torch.stack([losses[task] for task in tasks]), **kwargs)
            optimizer.step()
            if method == "famo":
                weighting.update_w(torch.stack([loss for loss in losses_again().values()]))
            return
        weighting.backward(losses, shared, model.representation if cut else None)
        optimizer.step()
        weighting.after_step(losses_again)

    def synchronise():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def timed(function) -> float:
        started = time.perf_counter()
        function()
        synchronise()
        return time.perf_counter() - started

    for _ in range(arguments.warmup):
        step()
        reference_step()
    synchronise()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds, reference_seconds = [], []
    for _ in range(arguments.steps):
        seconds.append(timed(step))
        reference_seconds.append(timed(reference_step))  # EW's peak is below every method's
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "step_seconds": statistics.median(seconds),
        "relative": statistics.median(seconds) / statistics.median(reference_seconds),
        "peak_memory_mib": peak,
        "shared": sum(p.numel() for p in shared),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", choices=tuple(MODELS), action="append", help="repeatable; default: both")
    parser.add_argument("--method", action="append", help="repeatable; default: every registered method")
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--libmtl", help="a LibMTL checkout: also measure LibMTL's implementations")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # internal: (model, method, implementation), print JSON
    arguments = parser.parse_args()
    if arguments.one is not None:
        print(json.dumps(measure(arguments, *arguments.one)))
        return
    from baselines.weighting.registry import WEIGHTINGS

    methods = arguments.method or ["ew", *(name for name in WEIGHTINGS.names() if name != "ew")]
    if methods[0] != "ew":
        methods.insert(0, "ew")
    common = ["--device", arguments.device, "--size", str(arguments.size), "--batch", str(arguments.batch),
              "--steps", str(arguments.steps), "--warmup", str(arguments.warmup)] + (["--libmtl", arguments.libmtl] if arguments.libmtl else [])

    def run(model_name: str, method: str, implementation: str) -> dict | str:
        result = subprocess.run([sys.executable, __file__, *common, "--one", model_name, method, implementation], capture_output=True, text=True)
        if result.returncode:
            return "failed: " + (result.stderr.strip().splitlines() or ["?"])[-1][:80]
        return json.loads(result.stdout.strip().splitlines()[-1])

    for model_name in arguments.model or list(MODELS):
        print(f"\n{model_name} ({MODELS[model_name][0]}), {arguments.size} px, batch {arguments.batch}, {arguments.device}, "
              f"median of {arguments.steps} steps after {arguments.warmup}")
        header = "| method | step (s) | relative to EW | peak memory (MiB) | over EW (MiB) |"
        print(header + (" LibMTL's, relative to EW | LibMTL's peak (MiB) |" if arguments.libmtl else ""))
        print("|---|---:|---:|---:|---:|" + ("---:|---:|" if arguments.libmtl else ""))
        reference = None
        for method in methods:
            figures = run(model_name, method, "mtlbench")
            if isinstance(figures, str):
                print(f"| {method} | {figures} | | | |")
                continue
            reference = reference or figures
            row = (
                f"| {method} | {figures['step_seconds']:.3f} | {figures['relative']:.2f}x | "
                f"{figures['peak_memory_mib']:.0f} | {figures['peak_memory_mib'] - reference['peak_memory_mib']:+.0f} |"
            )
            if arguments.libmtl:
                theirs = run(model_name, method, "libmtl") if method in LIBMTL else "not run"
                row += f" {theirs} | |" if isinstance(theirs, str) else f" {theirs['relative']:.2f}x | {theirs['peak_memory_mib']:.0f} |"
            print(row, flush=True)
        print(f"shared trainable parameters: {reference['shared']:,}" if reference else "")


if __name__ == "__main__":
    main()
