"""Tiny raw sources in the real on-disk layouts, built by hand inside each test."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mtlbench.builders.options import endoarss_tasks
from mtlbench.dataset.manifest import SPLITS
from mtlbench.dataset.writer import DatasetSpec, MaskDecoding
from mtlbench.taxonomies import ENDOVIS18_CLASSES, SegClass

COLOUR = {cls.id: cls.color for cls in ENDOVIS18_CLASSES}
STANDARD_LABELS_JSON = [{"name": c.name, "color": list(c.color), "classid": c.id} for c in ENDOVIS18_CLASSES]


def label_image(class_ids: np.ndarray, mode: str = "RGB", extra_colours: dict | None = None) -> Image.Image:
    """A colour-coded EndoVis label image for a class-id array; ids >= 100 use `extra_colours`."""
    palette = {**COLOUR, **(extra_colours or {})}
    rgb = np.zeros(class_ids.shape + (3,), dtype=np.uint8)
    for class_id, colour in palette.items():
        rgb[class_ids == class_id] = colour
    image = Image.fromarray(rgb)
    if mode == "RGBA":
        return image.convert("RGBA")
    if mode == "P":
        return image.quantize(colors=len(palette), method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE)
    return image


def frame_image(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_sequence(
    root: Path,
    number: int,
    labels: dict[str, np.ndarray],
    *,
    missing_frames: tuple[str, ...] = (),
    mode: str = "RGB",
    labels_json: list | None = None,
    extra_colours: dict | None = None,
) -> Path:
    """seq_N with left_frames/, labels/ and labels.json; frames get random content."""
    seq = root / f"seq_{number}"
    (seq / "left_frames").mkdir(parents=True)
    (seq / "labels").mkdir()
    for index, (frame, class_ids) in enumerate(sorted(labels.items())):
        if frame not in missing_frames:
            Image.fromarray(frame_image(*class_ids.shape, seed=number * 1000 + index)).save(seq / "left_frames" / f"{frame}.png")
        label_image(class_ids, mode, extra_colours).save(seq / "labels" / f"{frame}.png")
    (seq / "labels.json").write_text(json.dumps(STANDARD_LABELS_JSON if labels_json is None else labels_json))
    return seq


def write_qa(vqa_root: Path, number: int, frame: str, actions: dict[str, str]) -> Path:
    """A Classification QA file with one organ line, and one action and one position line per instrument."""
    folder = vqa_root / f"seq_{number}" / "vqa" / "Classification"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["What organ is being operated?|kidney"]
    for instrument, action in actions.items():
        lines.append(f"What is the state of {instrument}?|{action}")
        lines.append(f"Where is {instrument} located?|left-top")
    path = folder / f"{frame}_QA.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class SeededImage:
    """An in-memory image source of random content."""

    seed: int
    height: int
    width: int

    def describe(self) -> str:
        return f"image seed {self.seed}"

    def load(self) -> np.ndarray:
        return frame_image(self.height, self.width, self.seed)


@dataclass(frozen=True)
class GridMask:
    """An in-memory mask source holding its class ids row by row."""

    rows: tuple[tuple[int, ...], ...]

    def describe(self) -> str:
        return f"mask {self.rows}"

    def decode(self, height: int, width: int) -> MaskDecoding:
        return MaskDecoding(np.array(self.rows, dtype=np.uint8))


def in_memory_spec(classes: tuple[SegClass, ...], activities: tuple[str, ...]) -> DatasetSpec:
    return DatasetSpec(
        name="tiny",
        version="1.0",
        builder_version="1",
        source={"description": "in-memory test frames"},
        tasks=endoarss_tasks(activities, classes),
        splits=SPLITS,
        build_parameters={},
        splits_from="in-memory split",
    )


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def simple_mask(height: int = 8, width: int = 10, classes: tuple[int, ...] = (0, 1, 4)) -> np.ndarray:
    """Vertical stripes of the given class ids."""
    mask = np.zeros((height, width), dtype=np.uint8)
    for index, class_id in enumerate(classes):
        mask[:, index * width // len(classes) :] = class_id
    return mask


# A one-block ViT of width 24 on 28x28 inputs: endoarss-tiny overrides for runs of seconds.
TINY_RUN = [
    "model.encoder.depth=1", "model.encoder.embed_dim=24", "model.encoder.num_heads=2", "model.head_channels=8",
    "model.encoder.sma.groups=2", "model.aspp_rates=[1,2,3]", "data.input_size=[28,28]", "data.batch_size=4",
    "data.eval_batch_size=4", "train.epochs=2",
]


@pytest.fixture
def endovis_source(tmp_path: Path) -> Path:
    """Three sequences in two release folders (train 2, val 15, test 1) plus seq 13 without VQA."""
    return write_endovis_source(tmp_path)


def write_endovis_source(folder: Path) -> Path:
    """The endovis_source fixture's source, written under `folder` (for fixtures of a wider scope)."""
    root = folder / "endovis"
    release_1 = root / "miccai_challenge_2018_release_1"
    release_4 = root / "miccai_challenge_release_4"
    for number, release in ((1, release_1), (2, release_1), (13, release_4), (15, release_4)):
        write_sequence(release, number, {f"frame{i:03d}": simple_mask() for i in range(3)})
        if number != 13:
            for i in range(3):
                write_qa(root, number, f"frame{i:03d}", {"prograsp_forceps": "Grasping", "bipolar_forceps": "Idle"})
    return root


def predicted_classes(submission, task: str = "activity") -> dict[str, int] | None:
    """{sample_id: class id} of a read submission's classification task (None if it lacks the task)."""
    predictions = submission.predictions.get(task)
    return None if predictions is None else {sample_id: p.class_id for sample_id, p in predictions.items()}


def class_scores(submission, task: str = "activity") -> dict[str, np.ndarray] | None:
    """{sample_id: (C,) scores} of a read submission's classification task (None without score columns)."""
    predictions = submission.predictions[task]
    if all(p.scores is None for p in predictions.values()):
        return None
    return {sample_id: p.scores for sample_id, p in predictions.items()}
