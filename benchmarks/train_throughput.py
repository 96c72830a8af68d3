"""Training throughput (images/s) and peak memory of `endoarss` against full fine-tuning of the
same backbone at the same batch size.

`endoarss` trains DV-LoRA adapters, SMA and the heads on a frozen DINOv2 with DB-MTL, which needs
one backward pass per task; the same model with EW (one backward pass of the summed losses) is
the lower bound of that cost. Full fine-tuning trains every parameter of the same model without
adapters, with the preset's DB-MTL. Each configuration runs in its own process
so that peak memory is its own: max resident set size on CPU, torch.cuda.max_memory_allocated on
CUDA. Synthetic batches (random images and masks) keep the data pipeline out of the figures.
Throughput is given over all timed steps and at the fastest one, the figure that other work on a
shared machine disturbs least.

    python benchmarks/train_throughput.py                       # CPU, small: ViT-S/14, 112 px, batch 8
    python benchmarks/train_throughput.py --device cuda --variant vitb14 --size 224 --batch 32 --precision bf16
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

CONFIGURATIONS = {
    "endoarss, DB-MTL (frozen backbone, DV-LoRA r=4, SMA)": [],
    "endoarss with EW (one backward: the lower bound)": ["weighting.name=ew"],
    "full fine-tuning, DB-MTL (no adapters)": ["model.encoder.freeze=false", "model.encoder.adapter.kind=none"],
}


def measure(arguments: argparse.Namespace, overrides: list[str]) -> dict:
    import torch

    from baselines.config import load_config
    from baselines.models import build_model
    from baselines.endoarss_family import task_losses
    from baselines.train import build_optimizer
    from baselines.weighting import build_weighting

    settings = [
        f"model.encoder.variant={arguments.variant}",
        f"data.input_size=[{arguments.size},{arguments.size}]",
        f"train.precision={arguments.precision}",
        *overrides,
    ]
    config = load_config("endoarss", settings)
    device = torch.device(arguments.device)
    torch.manual_seed(0)
    classes, activities = 12, 13
    model = build_model(config.model, tuple(config.tasks), classes, activities, (arguments.size, arguments.size)).to(device)
    weighting = build_weighting(config.weighting, tuple(config.tasks)).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(trainable + list(weighting.parameters()), config.optim)
    batch = {
        "image": torch.rand(arguments.batch, 3, arguments.size, arguments.size, device=device),
        "mask": torch.randint(0, classes, (arguments.batch, arguments.size, arguments.size), device=device),
        "activity": torch.randint(0, activities, (arguments.batch,), device=device),
    }
    use_bf16 = arguments.precision == "bf16" and device.type == "cuda"
    shared = model.shared_parameters()  # once, as the trainer does per epoch

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            outputs = model(batch["image"])
        optimizer.zero_grad(set_to_none=True)
        weighting.backward(task_losses(outputs, batch, device), shared)
        optimizer.step()

    def synchronise():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(arguments.warmup):
        step()
    synchronise()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step_seconds = []
    for _ in range(arguments.steps):
        started = time.perf_counter()
        step()
        synchronise()
        step_seconds.append(time.perf_counter() - started)
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {
        "images_per_second": arguments.batch * len(step_seconds) / sum(step_seconds),
        "fastest_step_images_per_second": arguments.batch / min(step_seconds),
        "peak_memory_mib": peak,
        "trainable": sum(p.numel() for p in trainable),
        "total": sum(p.numel() for p in model.parameters()),
        "encoder_trainable": sum(p.numel() for p in model.encoder.vit.parameters() if p.requires_grad),
        "encoder_total": sum(p.numel() for p in model.encoder.vit.parameters()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--variant", default="vits14")
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one configuration, print JSON
    arguments = parser.parse_args()
    if arguments.one is not None:
        print(json.dumps(measure(arguments, json.loads(arguments.one))))
        return
    print(f"{arguments.variant}, {arguments.size} px, batch {arguments.batch}, {arguments.precision}, {arguments.device}, {arguments.steps} timed steps")
    passed = [argument for argument in sys.argv[1:]]
    width = max(map(len, CONFIGURATIONS))
    for name, overrides in CONFIGURATIONS.items():
        output = subprocess.run(
            [sys.executable, __file__, *passed, "--one", json.dumps(overrides)], capture_output=True, text=True, check=True
        ).stdout
        figures = json.loads(output.strip().splitlines()[-1])
        backbone_share = 100 * figures["encoder_trainable"] / figures["encoder_total"]
        print(
            f"  {name:{width}s} {figures['images_per_second']:7.2f} images/s (fastest step {figures['fastest_step_images_per_second']:.2f})  "
            f"peak {figures['peak_memory_mib']:6.0f} MiB  "
            f"trainable: {figures['trainable']:,} of {figures['total']:,} in all, "
            f"{figures['encoder_trainable']:,} of the ViT's {figures['encoder_total']:,} ({backbone_share:.2f}%)"
        )


if __name__ == "__main__":
    main()
