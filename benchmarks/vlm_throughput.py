"""Training and generation speed of the vision-language model, with its ablations side by side.

Training: frames/s and target tokens/s of full training steps (forward, the four task losses,
EW backward, AdamW step) on real batches of a dataset (the demo ENT-FESS set by default), for
the preset and for its three ablations at the same batch size. Generation: sentences/s of one
text task over a batch, greedy and beam search with 3 beams, after a warm-up, with the model's
length limit and n-gram blocking. With --run, generation uses that run's trained model (best.pt
of the same preset on the same dataset, e.g. make demo's), whose sentences end where they
should; with random weights every sentence runs to the length limit. The mean length is printed.

    python benchmarks/vlm_throughput.py --run demo-output/runs/vlm-tiny  # vlm-tiny, CPU, after `make demo`
    python benchmarks/vlm_throughput.py --preset vlm-base --device cuda --batch 32 --precision bf16
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ABLATIONS = {
    "full model": [],
    "no cross-attention": ["model.fusion.cross_attention=false"],
    "no image embedding": ["model.fusion.image=false", "model.fusion.cross_attention=false"],
    "no text embedding": ["model.fusion.text=false", "model.fusion.cross_attention=false"],
}


def setup(arguments, overrides):
    from baselines.config import load_config
    from baselines.runtime import seed_everything, start
    from baselines.vl.family import VisionLanguageFamily, to_device
    from mtlbench.dataset.manifest import read_dataset

    seed_everything(0)
    config = load_config(arguments.preset, [f"data.batch_size={arguments.batch}", f"train.precision={arguments.precision}",
                                            f"train.device={arguments.device}", *overrides])
    runtime = start(config.train)  # the device and autocast a run would use
    family = VisionLanguageFamily(config, read_dataset(arguments.dataset))
    model = family.build_model()
    if arguments.run is not None and not overrides:
        from mtlbench.checkpoints import load_tensor_file

        model.load_state_dict(load_tensor_file(Path(arguments.run) / "best.pt"))
    model = model.to(runtime.device)
    batch = to_device(family.collate([family.train_view[index % len(family.train_view)] for index in range(arguments.batch)]), runtime.device)
    return family, model, batch, runtime


def synchronise(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def train_rate(arguments, overrides) -> tuple[float, float, int]:
    import torch

    from baselines.vl.data import IGNORE_LABEL

    family, model, batch, runtime = setup(arguments, overrides)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    tokens = sum(int((batch[task.name]["labels"] != IGNORE_LABEL).sum()) for task in family.task_list if task.kind == "text")

    def step():
        losses = family.losses(model, batch, runtime)
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizer.step()

    for _ in range(arguments.warmup):
        step()
    synchronise(runtime.device)
    started = time.perf_counter()
    for _ in range(arguments.steps):
        step()
    synchronise(runtime.device)
    seconds = (time.perf_counter() - started) / arguments.steps
    parameters = sum(p.numel() for p in model.parameters())
    return arguments.batch / seconds, tokens / seconds, parameters


def generation_rate(arguments, beams: int) -> tuple[float, float]:
    import dataclasses

    import torch

    family, model, batch, runtime = setup(arguments, [])
    model.eval()
    model.settings = dataclasses.replace(model.settings, beam_size=beams)
    with torch.no_grad():
        memory, valid = model.memory(batch)

    def run():
        with torch.no_grad(), runtime.autocast():
            prompt = torch.zeros(len(memory), dtype=torch.long, device=runtime.device)
            return model.decoder.generate(memory, valid, prompt, model.vocabulary.bos, model.vocabulary.eos, model.settings)

    run()
    synchronise(runtime.device)
    started = time.perf_counter()
    rounds = 0
    while rounds < 2 or time.perf_counter() - started < arguments.seconds:
        generated = run()
        rounds += 1
    synchronise(runtime.device)
    seconds = (time.perf_counter() - started) / rounds
    return len(memory) / seconds, sum(len(ids) for ids in generated) / len(generated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="vlm-tiny")
    parser.add_argument("--dataset", default="demo-output/ent-fess")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum time per generation measurement")
    parser.add_argument("--run", default=None, help="a run folder of the same preset and dataset: generate with its best.pt")
    arguments = parser.parse_args()
    import torch

    print(f"{arguments.preset} on {arguments.dataset}, device {arguments.device}, batch {arguments.batch}, {arguments.precision}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| training step | parameters | frames/s | target tokens/s |")
    print("|---|---:|---:|---:|")
    for name, overrides in ABLATIONS.items():
        frames, tokens, parameters = train_rate(arguments, overrides)
        print(f"| {name} | {parameters:,} | {frames:.1f} | {tokens:.0f} |", flush=True)
    print("| generation (first text task) | sentences/s | mean words |")
    print("|---|---:|---:|")
    for beams in (1, 3):
        rate, length = generation_rate(arguments, beams)
        print(f"| {'greedy' if beams == 1 else f'beam {beams}'} | {rate:.1f} | {length:.1f} |", flush=True)


if __name__ == "__main__":
    from mtlbench.errors import InputError

    try:
        main()
    except InputError as error:
        raise SystemExit(f"error: {error} (the default --dataset is made by `make demo`)") from None
