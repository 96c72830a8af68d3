"""Evaluator throughput against decoding alone, as whole processes, on full-size masks.

Builds a dataset of N frames of 1280x1024 with 12 classes whose ground truth is a layout of
organ and instrument regions, and two submissions for it, their masks saved with Pillow's
defaults:

- smooth: masks that look like a model's output (region boundaries shifted by a few pixels, a
  region mislabelled, a few false blobs);
- noisy: the same masks with 5% of their pixels set to a random class (scattered pixel noise:
  many short runs, the hard case for run-length counting).

Then times, for each submission, separate processes, so that interpreter start-up and imports
count as they do for a user (best of --repeats; bytecode is cached in the scratch folder, as an
installed package has it, even where PYTHONDONTWRITEBYTECODE is set):

- decode only: `python -c` running a loop that decodes each ground-truth and prediction PNG to
  a numpy array and does nothing else. It first keeps frame-sized buffers in the heap, as the
  evaluator does (mtlbench.parallel.keep_frame_buffers): without that, glibc maps and unmaps
  every decoded frame, which costs such a loop about a quarter of its speed (the "plain" row);
- `mtlbench evaluate PRED --dataset DIR --bootstrap 0 --out results.json` with --workers 1 and 2
  (every check, the confusions, all metrics, results.json and the printed report).

Target (issue 11): `mtlbench evaluate` with 1 worker at >= 0.9x the decode-only rate, on both
submissions. Last, one evaluation of the noisy submission with the default 1000 bootstrap
resamples, for scale. The defaults take about three minutes on a 2-core machine, most of it
making the masks.

    python benchmarks/evaluate_rate.py [--frames 400] [--repeats 3]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mtlbench.builders.options import ACTIVITY_SUBMISSION_FILE, endoarss_tasks
from mtlbench.dataset.manifest import read_dataset
from mtlbench.dataset.writer import DatasetSpec, MaskDecoding, SampleJob, build_dataset
from mtlbench.tasks.classification import ACTIVITY_TASK
from mtlbench.taxonomies import ENDOVIS18_ACTIONS, ENDOVIS18_CLASSES

HEIGHT, WIDTH, CLASSES = 1024, 1280, len(ENDOVIS18_CLASSES)
FRAMES_PER_SEQUENCE = 8
NOISE_FRACTION = 0.05
TARGET = 0.9
SUBMISSIONS = ("smooth", "noisy")

# The decode-only process: only numpy and Pillow, as a minimal reader of the same files would.
DECODE_ONLY = """
import sys
import numpy as np
from PIL import Image
if sys.argv[2] == "keep-buffers":
    np.empty(16 << 20, dtype=np.uint8)
for line in open(sys.argv[1]):
    truth, prediction = line.rstrip("\\n").split("\\t")
    np.asarray(Image.open(truth)), np.asarray(Image.open(prediction))
"""


def _disc(mask: np.ndarray, cy: int, cx: int, ry: int, rx: int, value: int) -> None:
    """Set the ellipse with centre (cy, cx) and radii (ry, rx) to `value`, working on its bounding box only."""
    top, left = max(cy - ry, 0), max(cx - rx, 0)
    yy, xx = np.ogrid[top : min(cy + ry + 1, HEIGHT), left : min(cx + rx + 1, WIDTH)]
    mask[top : top + yy.shape[0], left : left + xx.shape[1]][((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1] = value


def scene(rng: np.random.Generator) -> np.ndarray:
    """Organ blobs and instrument bars over background, like an EndoVis label."""
    yy, xx = np.ogrid[:HEIGHT, :WIDTH]
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    for class_id in rng.choice(np.arange(1, CLASSES), size=6, replace=False):
        if rng.random() < 0.5:
            _disc(mask, rng.integers(0, HEIGHT), rng.integers(0, WIDTH), rng.integers(60, 300), rng.integers(60, 400), class_id)
        else:
            slope, offset, half_width = rng.uniform(-1, 1), rng.integers(0, HEIGHT), rng.integers(15, 60)
            mask[np.abs(yy - slope * xx - offset) < half_width] = class_id
    return mask


def shifted(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """`mask` moved by (dy, dx) pixels, its edge rows and columns repeated into the gap."""
    padded = np.pad(mask, ((abs(dy), abs(dy)), (abs(dx), abs(dx))), mode="edge")
    top, left = abs(dy) - dy, abs(dx) - dx
    return padded[top : top + HEIGHT, left : left + WIDTH].copy()


def model_like(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    prediction = shifted(truth, *rng.integers(-6, 7, size=2))
    wrong = rng.choice(np.unique(prediction))
    prediction[prediction == wrong] = rng.integers(0, CLASSES)
    for _ in range(3):
        radius = int(rng.integers(10, 60))
        _disc(prediction, rng.integers(0, HEIGHT), rng.integers(0, WIDTH), radius, radius, rng.integers(0, CLASSES))
    return prediction


def with_pixel_noise(prediction: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noisy = prediction.copy()
    flipped = rng.random(noisy.shape) < NOISE_FRACTION
    noisy[flipped] = rng.integers(0, CLASSES, size=int(flipped.sum()), dtype=np.uint8)
    return noisy


@dataclass(frozen=True)
class FlatImage:
    def describe(self) -> str:
        return "benchmark image"

    def load(self) -> np.ndarray:
        return np.full((HEIGHT, WIDTH, 3), 128, dtype=np.uint8)


@dataclass(frozen=True)
class SceneMask:
    seed: int

    def describe(self) -> str:
        return f"benchmark mask {self.seed}"

    def decode(self, height: int, width: int) -> MaskDecoding:
        return MaskDecoding(scene(np.random.default_rng(self.seed)))


def make_dataset(root: Path, frames: int) -> Path:
    spec = DatasetSpec(
        name="bench", version="1", builder_version="1", source={"description": "benchmark"},
        tasks=endoarss_tasks(ENDOVIS18_ACTIONS, ENDOVIS18_CLASSES), splits=("test",), build_parameters={},
        splits_from="benchmark",
    )
    jobs = []
    for index in range(frames):
        sequence = f"s{index // FRAMES_PER_SEQUENCE:03d}"
        labels = {ACTIVITY_TASK: index % len(ENDOVIS18_ACTIONS)}
        jobs.append(SampleJob(f"{sequence}_f{index:04d}", "test", sequence, f"f{index:04d}", FlatImage(), labels, SceneMask(index)))
    return build_dataset(spec, jobs, [], root / "dataset", workers=2)


def write_predictions(job: tuple[int, Path, Path, Path]) -> None:
    """The smooth and the noisy prediction of one frame, each under its submission's masks/."""
    index, truth_path, smooth_path, noisy_path = job
    rng = np.random.default_rng((1, index))
    smooth = model_like(np.asarray(Image.open(truth_path)), rng)
    Image.fromarray(smooth).save(smooth_path)
    Image.fromarray(with_pixel_noise(smooth, rng)).save(noisy_path)


def make_submissions(root: Path, card) -> dict[str, Path]:
    folders = {name: root / name for name in SUBMISSIONS}
    for folder in folders.values():
        (folder / "masks").mkdir(parents=True)
    jobs = [
        (index, card.root / sample.mask, *(folders[name] / "masks" / f"{sample.sample_id}.png" for name in SUBMISSIONS))
        for index, sample in enumerate(card.samples)
    ]
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(write_predictions, jobs, chunksize=8))
    rng = np.random.default_rng(2)
    rows = [("sample_id", ACTIVITY_TASK)] + [(sample.sample_id, int(rng.integers(0, len(ENDOVIS18_ACTIONS)))) for sample in card.samples]
    for folder in folders.values():
        with open(folder / ACTIVITY_SUBMISSION_FILE, "w", newline="") as handle:
            csv.writer(handle).writerows(rows)
    return folders


def cached_bytecode_environment(folder: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {**environment, "PYTHONPYCACHEPREFIX": str(folder)}


def process_seconds(command: list[str], environment: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=environment)
    return time.perf_counter() - start


def evaluate_command(predictions: Path, dataset: Path, workers: int, bootstrap: int, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "mtlbench", "evaluate", str(predictions), "--dataset", str(dataset), "--split", "test",
        "--workers", str(workers), "--bootstrap", str(bootstrap), "--out", str(out),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        start = time.perf_counter()
        card = read_dataset(make_dataset(root, args.frames))
        submissions = make_submissions(root, card)
        print(f"made the dataset and both submissions in {time.perf_counter() - start:.0f} s")
        commands = {}
        for name, folder in submissions.items():
            pairs = root / f"{name}_pairs.tsv"
            pairs.write_text("".join(f"{card.root / s.mask}\t{folder / 'masks' / (s.sample_id + '.png')}\n" for s in card.samples))
            commands[name, "decode only"] = [sys.executable, "-c", DECODE_ONLY, str(pairs), "keep-buffers"]
            commands[name, "decode only, plain"] = [sys.executable, "-c", DECODE_ONLY, str(pairs), "plain"]
            for workers in (1, 2):
                commands[name, f"evaluate, {workers} worker{'s' * (workers > 1)}"] = evaluate_command(
                    folder, card.root, workers, 0, root / f"{name}_results.json"
                )
        environment = cached_bytecode_environment(root / "bytecode")
        seconds = dict.fromkeys(commands, float("inf"))
        for _ in range(args.repeats):
            for key, command in commands.items():
                seconds[key] = min(seconds[key], process_seconds(command, environment))
        miou = {name: json.loads((root / f"{name}_results.json").read_text())["segmentation"]["miou"] for name in SUBMISSIONS}
        bootstrap_command = evaluate_command(submissions["noisy"], card.root, 1, 1000, root / "bootstrap.json")
        with_bootstrap = process_seconds(bootstrap_command, environment)
    print(f"{args.frames} frames of {WIDTH}x{HEIGHT}, {CLASSES} classes, {len(card.meta['splits']['test']['sequences'])} sequences; "
          f"whole processes, best of {args.repeats}")
    print(f"  {'submission':10s} {'process':20s} {'seconds':>8s} {'frames/s':>9s} {'x decode':>9s}")
    for (name, process), time_taken in seconds.items():
        ratio = seconds[name, "decode only"] / time_taken
        print(f"  {name:10s} {process:20s} {time_taken:8.2f} {args.frames / time_taken:9.1f} {ratio:9.2f}")
    for name in SUBMISSIONS:
        ratio = seconds[name, "decode only"] / seconds[name, "evaluate, 1 worker"]
        verdict = "met" if ratio >= TARGET else "NOT met"
        print(f"  {name}: 1 worker at {ratio:.2f}x decode only (target >= {TARGET}: {verdict}); mIoU {miou[name]:.3f}")
    print(f"  noisy, 1 worker, 1000 bootstrap resamples: {with_bootstrap:.2f} s")


if __name__ == "__main__":
    main()
