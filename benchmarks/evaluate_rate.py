"""Evaluator throughput on full-size 1280x1024 masks with 12 classes, all figures from one run.

Builds a dataset of N frames whose ground truth is a layout of organ and instrument regions,
and a submission whose masks look like a model's output (region boundaries shifted by a few
pixels, some regions mislabelled, a few false blobs), saved with Pillow's defaults. Then times,
side by side (best of --repeats):

- decode only: a loop that decodes each prediction and ground-truth PNG to arrays and nothing else;
- `mtlbench.evaluate` end to end (validation, confusions, all metrics; bootstrap off) with 1 and 2 workers;
- decoding plus sklearn.metrics.confusion_matrix per frame.

Targets (issue 3): 1 worker >= 85% of decode-only; 2 workers >= 1.7x 1 worker; 1 worker >= 3x sklearn.

    python benchmarks/evaluate_rate.py [--frames 240] [--repeats 2]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

import mtlbench
from mtlbench.dataset.manifest import read_dataset
from mtlbench.dataset.writer import DatasetSpec, MaskDecoding, SampleJob, build_dataset
from mtlbench.taxonomies import ENDOVIS18_ACTIONS, ENDOVIS18_CLASSES

HEIGHT, WIDTH, CLASSES = 1024, 1280, 12


def scene(rng: np.random.Generator) -> np.ndarray:
    """Organ blobs and instrument bars over background, like an EndoVis label."""
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    for class_id in rng.choice(np.arange(1, CLASSES), size=6, replace=False):
        if rng.random() < 0.5:
            cy, cx, ry, rx = rng.integers(0, HEIGHT), rng.integers(0, WIDTH), rng.integers(60, 300), rng.integers(60, 400)
            mask[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1] = class_id
        else:
            slope, offset, half_width = rng.uniform(-1, 1), rng.integers(0, HEIGHT), rng.integers(15, 60)
            mask[np.abs(yy - slope * xx - offset) < half_width] = class_id
    return mask


def model_like(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage  # not at the top: worker processes re-import this script's top level

    prediction = ndimage.shift(truth, rng.integers(-6, 7, size=2), order=0, mode="nearest")
    wrong = rng.choice(np.unique(prediction))
    prediction[prediction == wrong] = rng.integers(0, CLASSES)
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    for _ in range(3):
        cy, cx, r = rng.integers(0, HEIGHT), rng.integers(0, WIDTH), rng.integers(10, 60)
        prediction[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, CLASSES)
    return prediction


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
        classes=ENDOVIS18_CLASSES, activities=ENDOVIS18_ACTIONS, splits=("test",), build_parameters={},
        splits_from="benchmark",
    )
    jobs = [
        SampleJob(f"s{i // 8:02d}_f{i:04d}", "test", f"s{i // 8:02d}", f"f{i:04d}", i % 13, FlatImage(), SceneMask(i))
        for i in range(frames)
    ]
    return build_dataset(spec, jobs, [], root / "dataset", workers=2)


def make_submission(root: Path, card) -> Path:
    folder = root / "predictions"
    (folder / "masks").mkdir(parents=True)
    rng = np.random.default_rng(1)
    rows = []
    for sample in card.samples:
        truth = np.asarray(Image.open(card.root / sample.mask))
        Image.fromarray(model_like(truth, rng)).save(folder / "masks" / f"{sample.sample_id}.png")
        rows.append((sample.sample_id, int(rng.integers(0, 13))))
    with open(folder / "activities.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("sample_id", "activity"), *rows])
    return folder


def best_rate(function, frames: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return frames / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        card = read_dataset(make_dataset(Path(scratch), args.frames))
        predictions = make_submission(Path(scratch), card)
        pairs = [(card.root / s.mask, predictions / "masks" / f"{s.sample_id}.png") for s in card.samples]

        def decode_only():
            for truth, prediction in pairs:
                np.asarray(Image.open(truth)), np.asarray(Image.open(prediction))

        def with_sklearn():
            from sklearn.metrics import confusion_matrix

            total = np.zeros((CLASSES, CLASSES), dtype=np.int64)
            for truth_path, prediction_path in pairs:
                truth, prediction = np.asarray(Image.open(truth_path)), np.asarray(Image.open(prediction_path))
                valid = truth != 255
                total += confusion_matrix(truth[valid], prediction[valid], labels=list(range(CLASSES)))

        def evaluator(workers: int):
            return lambda: mtlbench.evaluate(predictions, card, "test", workers=workers, bootstrap=0)

        rates = {
            "decode only": best_rate(decode_only, args.frames, args.repeats),
            "evaluate, 1 worker": best_rate(evaluator(1), args.frames, args.repeats),
            "evaluate, 2 workers": best_rate(evaluator(2), args.frames, args.repeats),
            "decode + sklearn confusion_matrix": best_rate(with_sklearn, args.frames, 1),
        }
        start = time.perf_counter()
        mtlbench.evaluate(predictions, card, "test", bootstrap=1000)
        with_bootstrap = time.perf_counter() - start
    print(f"{args.frames} frames of {WIDTH}x{HEIGHT}, {CLASSES} classes, {card.meta['splits']['test']['sequences'].__len__()} sequences")
    for name, rate in rates.items():
        print(f"  {name:36s} {rate:7.1f} frames/s")
    checks = (
        ("1 worker / decode only", rates["evaluate, 1 worker"] / rates["decode only"], 0.85),
        ("2 workers / 1 worker", rates["evaluate, 2 workers"] / rates["evaluate, 1 worker"], 1.7),
        ("1 worker / sklearn", rates["evaluate, 1 worker"] / rates["decode + sklearn confusion_matrix"], 3.0),
    )
    for name, ratio, target in checks:
        print(f"  {name:36s} {ratio:7.2f}  (target >= {target}: {'met' if ratio >= target else 'NOT met'})")
    print(f"  full evaluation with 1000 bootstrap resamples: {with_bootstrap:.2f} s")


if __name__ == "__main__":
    main()
