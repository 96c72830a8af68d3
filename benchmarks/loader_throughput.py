"""Frames per second the reference runners' training loader delivers, from the PNGs and from the
prepared cache, all figures from one run.

Builds a dataset of N full-size 1280x1024 frames (endoscopy-like texture, so the PNGs compress and
decode like real frames) with their masks, then times the training loader of baselines/data.py as
a training loop sees it (whole epochs in batches of 32, each converted as the model takes it) with
1 and 2 loader workers, at 224 and 448 px:

- from the PNGs (data.cache=false): every frame decoded, checked and resized every epoch;
- from the cache (data.cache=true), augmentation off (the EndoARSS release's setting) and on;
- and the time to build each cache (decoding in parallel, one process per core).

Each figure is given as frames/s (wall clock) and per core: frames per CPU-second spent by the
loader's worker processes and the loop's process, which other work on the machine does not
distort; with the uint8 batches converted to float32 on the GPU (training_loader with a device),
and with them converted in the loop's process on the CPU. Target (issue 11): the cache delivers
at least 1,000 frames/s per core at 224 px. The last lines set the figures against the model's
step time on a 16-core GPU machine.

    python benchmarks/loader_throughput.py [--frames 512] [--png-frames 96] [--epochs 3]
"""

from __future__ import annotations

import argparse
import functools
import gc
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from baselines.config import DataConfig
from baselines.data import SplitView, training_loader
from build_rate import endoscopy_like_frame
from mtlbench.builders.options import endoarss_tasks
from mtlbench.dataset.cache import available_cores, open_cache
from mtlbench.dataset.manifest import read_dataset
from mtlbench.dataset.writer import DatasetSpec, MaskDecoding, SampleJob, build_dataset
from mtlbench.taxonomies import ENDOVIS18_ACTIONS, ENDOVIS18_CLASSES

HEIGHT, WIDTH = 1024, 1280
DISTINCT_TEXTURES = 4  # frame i is texture i % 4 shifted by i pixels: a texture takes a second to make
SIZES = (224, 448)
WORKERS = (1, 2)
TARGET_PER_CORE = 1000
# ViT-B/14 with adapters at 224 px, batch 32, bf16 on one H100/H200-class GPU: an estimate, not
# measured here (benchmarks/train_throughput.py measures it on a machine with a GPU).
MODEL_FRAMES_PER_SECOND = (1000, 2000)
GPU_MACHINE_CORES = 16


@functools.lru_cache(maxsize=None)
def texture(seed: int) -> np.ndarray:
    return endoscopy_like_frame(np.random.default_rng(seed))


@dataclass(frozen=True)
class TextureFrame:
    index: int

    def describe(self) -> str:
        return f"benchmark frame {self.index}"

    def load(self) -> np.ndarray:
        return np.roll(texture(self.index % DISTINCT_TEXTURES), self.index, axis=1)


@dataclass(frozen=True)
class BlobMask:
    index: int

    def describe(self) -> str:
        return f"benchmark mask {self.index}"

    def decode(self, height: int, width: int) -> MaskDecoding:
        rng = np.random.default_rng(self.index)
        yy, xx = np.ogrid[:height, :width]
        mask = np.zeros((height, width), dtype=np.uint8)
        mask[(yy - rng.integers(200, 800)) ** 2 + (xx - rng.integers(200, 1000)) ** 2 < 250**2] = 4
        mask[np.abs(yy - xx * 0.5 - rng.integers(0, 300)) < 40] = 1
        return MaskDecoding(mask)


def make_dataset(root: Path, frames: int, png_frames: int) -> Path:
    """`frames` frames in train (timed from the cache) and `png_frames` in val (timed from the PNGs, which are slow)."""
    spec = DatasetSpec(
        name="bench", version="1", builder_version="1", source={"description": "loader benchmark"},
        tasks=endoarss_tasks(ENDOVIS18_ACTIONS, ENDOVIS18_CLASSES), splits=("train", "val"), build_parameters={},
        splits_from="benchmark",
    )
    jobs = [
        SampleJob(f"f{i:05d}", split, f"s{i // 64:02d}", f"{i:05d}", TextureFrame(i), {"activity": i % 13}, BlobMask(i))
        for i, split in enumerate(["train"] * frames + ["val"] * png_frames)
    ]
    return build_dataset(spec, jobs, [], root / "dataset", workers=available_cores())


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


@dataclass(frozen=True)
class Rate:
    wall: float  # frames/s over all epochs, the workers' start-up included, on this machine as loaded
    per_core: float  # frames per CPU-second of the loader's workers and of the loop taking their uint8 batches
    per_core_converting: float  # the same, the loop also converting each batch to float32 on the CPU


def delivered(view: SplitView, config: DataConfig, epochs: int) -> Rate:
    """The training loader's rate over `epochs` whole epochs; each batch is converted as the model takes it."""
    frames, converting = 0, 0.0
    started, cpu_started = time.perf_counter(), cpu_seconds()
    for epoch in range(epochs):
        for batch in training_loader(view, config, seed=0, epoch=epoch, distributed=False).loader:
            conversion_started = time.process_time()
            view.model_batch(batch)
            converting += time.process_time() - conversion_started
            frames += len(batch["index"])
    view.training_batches = None  # ends the persistent workers: their CPU time now counts
    gc.collect()
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    return Rate(frames / seconds, frames / (cpu - converting), frames / cpu)


@dataclass(frozen=True)
class Row:
    source: str
    size: int
    workers: int
    rate: Rate


def measure(card, frames: int, epochs: int, cache_dir: Path) -> tuple[list[Row], dict[int, float]]:
    """Every figure of the table, and the seconds each cache took to build."""
    rows, builds = [], {}
    for size in SIZES:
        started = time.perf_counter()
        open_cache(card, "train", (size, size), "antialias", cache_dir)
        builds[size] = time.perf_counter() - started
        for workers in WORKERS:
            for source, split, cache, augment in (
                ("PNGs", "val", False, False),
                ("cache, augment off", "train", True, False),
                ("cache, augment on", "train", True, True),
            ):
                config = DataConfig(input_size=(size, size), cache=cache, cache_dir=str(cache_dir), augment=augment, workers=workers)
                view = SplitView(card, split, config, train=True, seed=0)
                rows.append(Row(source, size, workers, delivered(view, config, epochs)))
    return rows, builds


def report(rows: list[Row], builds: dict[int, float], frames: int, epochs: int) -> None:
    cores = available_cores()
    print(f"Training loader, frames of {WIDTH}x{HEIGHT} with masks, batches of 32, resize rule antialias, {cores} cores")
    print(f"  {'source':20s} {'size':>5s} {'workers':>7s} {'frames/s':>9s} {'per core':>9s} {'converting on the CPU':>22s}")
    for row in rows:
        print(f"  {row.source:20s} {row.size:5d} {row.workers:7d} {row.rate.wall:9.0f} {row.rate.per_core:9.0f} {row.rate.per_core_converting:22.0f}")
    print(f"  frames/s: wall clock over {epochs} epochs (the workers start once), on this machine as loaded")
    print("  per core: frames per CPU-second of the loader's workers and of the loop taking uint8 batches (converted on the GPU);")
    print("  converting on the CPU: the loop's process also makes the float32 batches (training_loader without a device)")
    for size, seconds in builds.items():
        print(f"  cache build at {size} px: {frames} frames in {seconds:.1f} s ({frames / seconds:.1f} frames/s with {cores} processes)")
    at_224 = [row for row in rows if row.size == 224]
    per_core = {row.source: min(other.rate.per_core for other in at_224 if other.source == row.source) for row in at_224}
    met = per_core["cache, augment off"] >= TARGET_PER_CORE
    print(f"  cache at 224 px, augment off: {per_core['cache, augment off']:.0f} frames/s per core "
          f"(target >= {TARGET_PER_CORE}: {'met' if met else 'NOT met'})")
    low, high = MODEL_FRAMES_PER_SECOND
    conversion = max(1 / row.rate.per_core_converting - 1 / row.rate.per_core for row in at_224 if row.source == "cache, augment off")
    print(f"  converting a 224 px frame to float32 on the CPU costs the loop's process {conversion * 1e6:.0f} us: "
          f"{100 * conversion * high:.0f}% of its core at {high:,} frames/s (on the GPU: next to nothing)")
    print(f"On a {GPU_MACHINE_CORES}-core GPU machine ({GPU_MACHINE_CORES - 1} loader workers, one core for the training loop), at 224 px, "
          f"against ViT-B/14 training at ~{low:,}-{high:,} frames/s (batch 32, bf16, H100/H200 class; an estimate, not measured here):")
    for source, rate in per_core.items():
        sustained = (GPU_MACHINE_CORES - 1) * rate
        verdict = "keeps the GPU busy" if sustained >= high else "keeps up at the slower end" if sustained >= low else "the GPU waits for the loader"
        print(f"  {source:20s} ~{sustained:8,.0f} frames/s: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=512, help="frames read from the cache per epoch")
    parser.add_argument("--png-frames", type=int, default=96, help="frames decoded from the PNGs per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per figure")
    args = parser.parse_args()
    # The loop's own share (converting each uint8 batch to normalised float32) on one thread, as
    # its CPU work should run beside busy loader workers; on a GPU it runs on the device.
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        card = read_dataset(make_dataset(Path(scratch), args.frames, args.png_frames))
        rows, builds = measure(card, args.frames, args.epochs, Path(scratch) / "cache")
    report(rows, builds, args.frames, args.epochs)


if __name__ == "__main__":
    main()
