"""End-to-end MTLEndovis build rate on full-size 1280x1024 frames, and the PNG level trade-off.

Writes an EndoVis 2018 layout of N frames with endoscopy-like content (smooth tissue texture
with sensor noise, so PNGs compress like real frames rather than like white noise), then times
`build_mtlendovis` with one worker: frames per second per core. Also times PNG encoding of one
frame at several zlib levels to show why mtlbench writes level 1.

    python benchmarks/build_rate.py [--frames 40] [--workers 1]
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from mtlbench.builders.mtlendovis import build_mtlendovis
from mtlbench.builders.options import BuildOptions
from mtlbench.taxonomies import ENDOVIS18_CLASSES

HEIGHT, WIDTH = 1024, 1280


def endoscopy_like_frame(rng: np.random.Generator) -> np.ndarray:
    """Smooth multi-scale texture in tissue colours, plus mild per-pixel sensor noise."""
    texture = sum(ndimage.zoom(rng.normal(size=(HEIGHT // s + 1, WIDTH // s + 1)), s, order=1)[:HEIGHT, :WIDTH] / k for s, k in ((64, 1), (16, 2), (4, 4)))
    base = np.array([190.0, 90.0, 80.0]) + 40.0 * texture[..., None] * np.array([1.0, 0.6, 0.5])
    noisy = base + rng.normal(scale=3.0, size=base.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def label_frame(rng: np.random.Generator) -> np.ndarray:
    """Large class regions, as in real labels: an organ blob and an instrument bar."""
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    ids = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    cy, cx = rng.integers(300, 700), rng.integers(300, 900)
    ids[(yy - cy) ** 2 + (xx - cx) ** 2 < 250**2] = 4
    ids[np.abs(yy - xx * 0.5 - rng.integers(0, 300)) < 40] = 1
    rgb = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    for cls in ENDOVIS18_CLASSES:
        rgb[ids == cls.id] = cls.color
    return rgb


def write_source(root: Path, frames: int) -> None:
    rng = np.random.default_rng(0)
    sequence = root / "seq_1"
    for folder in ("left_frames", "labels", "vqa/Classification"):
        (sequence / folder).mkdir(parents=True)
    labels_json = [{"name": c.name, "color": list(c.color), "classid": c.id} for c in ENDOVIS18_CLASSES]
    (sequence / "labels.json").write_text(json.dumps(labels_json))
    for index in range(frames):
        name = f"frame{index:03d}"
        # Source frames as the release ships them: default zlib level.
        Image.fromarray(endoscopy_like_frame(rng)).save(sequence / "left_frames" / f"{name}.png")
        Image.fromarray(label_frame(rng)).save(sequence / "labels" / f"{name}.png")
        (sequence / "vqa/Classification" / f"{name}_QA.txt").write_text("What is the state of prograsp_forceps?|Grasping\n")


def png_levels(frame: np.ndarray) -> list[tuple[int, float, float]]:
    rows = []
    for level in (0, 1, 3, 6, 9):
        start = time.perf_counter()
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="PNG", compress_level=level)
        rows.append((level, time.perf_counter() - start, buffer.tell() / 1e6))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "source"
        write_source(source, args.frames)
        split_file = Path(scratch) / "split.json"
        split_file.write_text(json.dumps({"test": [1]}))
        start = time.perf_counter()
        options = BuildOptions(workers=args.workers, allow_empty_splits=True)  # one sequence: test only
        build_mtlendovis(source, Path(scratch) / "dataset", split_file=split_file, options=options)
        elapsed = time.perf_counter() - start
        size = sum(p.stat().st_size for p in (Path(scratch) / "dataset").rglob("*.png")) / args.frames / 1e6
    rate = args.frames / elapsed
    print(f"build: {args.frames} frames of {WIDTH}x{HEIGHT} in {elapsed:.2f} s with {args.workers} worker(s)")
    print(f"build rate: {rate:.2f} frames/s, {rate / args.workers:.2f} frames/s per core (target >= 2)")
    print(f"output: {size:.2f} MB per frame (image + mask)")
    print("PNG encoding of one frame: level, seconds, MB")
    for level, seconds, megabytes in png_levels(endoscopy_like_frame(np.random.default_rng(1))):
        print(f"  level {level}: {seconds * 1000:7.1f} ms  {megabytes:5.2f} MB")


if __name__ == "__main__":
    main()
