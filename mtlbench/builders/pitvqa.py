"""PitVQA: endoscopic pituitary surgery frames (1 per second) with their question|answer files,
mapped onto the vision-language tasks.

Input: the release folder with `images/video_XX/NNNNN.png` and `QA/video_XX/NNNNN.txt`. Reading
is driven by the QA files (mtlbench/sources/pitvqa.py): an image without a QA file (the release
deleted the empty files of blurred frames) is skipped and reported, as is a QA file without its
image or without one of the five questions every frame has. Tasks per frame:

  instruments     multilabel over the 18 instruments: those a QA line names (at a position,
                  with a tip, doing something)
  phase, step     classification: the current phase (4 classes) and step (15)
  next_phase, next_step   classification: the anticipated phase and step
  operation_note  text: the operation-note sentence (kept as written, typos included)

Answers are matched to the vocabularies exactly, else ignoring case, spaces, '-' and '_'; an
answer outside them is refused with its file and line. The release has no test split: its
validation videos (02, 06, 12, 13, 24) are the test split here, and validation is carved from
the training videos, whole videos in hash order of the seed (10%, at least one); a split file
replaces both. The split used is recorded in dataset.json.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from mtlbench.builders import BUILDERS
from mtlbench.builders.options import BuildOptions, write_dataset
from mtlbench.dataset.manifest import SPLITS
from mtlbench.dataset.writer import DatasetSpec, FileImage, SampleJob, Skip
from mtlbench.errors import InputError
from mtlbench.outputs import sha256_file
from mtlbench.sources.pitvqa import FrameQA, QUESTION_RULES, read_qa_file
from mtlbench.splits import hash_order, read_split_file, split_of
from mtlbench.tasks.classification import ClassificationTask
from mtlbench.tasks.multilabel import MultilabelTask
from mtlbench.tasks.text import TextTask
from mtlbench.taxonomies import NameLookup

NAME = "pitvqa"
VERSION = "1.0.0"
BUILDER_VERSION = "1.0.0"
PHASES = ("nasal_sphenoid", "sellar", "closure", "end_of_phase")
STEPS = (
    "nasal_corridor_creation", "anterior_sphenoidotomy", "septum_displacement", "sphenoid_sinus_clearance",
    "sellotomy", "haemostasis", "synthetic_graft_placement", "durotomy", "tumour_excision", "fat_graft_placement",
    "gasket_seal_construct", "dural_sealant", "nasal_packing", "debris_clearance", "end_of_step",
)
INSTRUMENTS = (
    "suction", "freer_elevator", "pituitary_rongeurs", "spatula_dissector", "kerrisons", "cottle", "haemostatic_foam",
    "micro_doppler", "nasal_cutting_forceps", "stealth_pointer", "irrigation_syringe", "retractable_knife",
    "dural_scissors", "ring_curette", "cup_forceps", "bipolar_forceps", "tissue_glue", "surgical_drill",
)
OFFICIAL_VALIDATION_VIDEOS = ("02", "06", "12", "13", "24")
VAL_SHARE = 0.1
SPLIT_RULE = (
    f"test: the release's validation videos {', '.join(OFFICIAL_VALIDATION_VIDEOS)}; val: whole training videos in "
    f"hash_order(videos, seed), {VAL_SHARE:.0%} (at least one); train: the rest"
)
VIDEO_FOLDER = re.compile(r"^video_([0-9]{2})$")
FRAME_FILE = re.compile(r"^([0-9]{5})$")
CLASSIFICATIONS = {"phase": PHASES, "step": STEPS, "next_phase": PHASES, "next_step": STEPS}  # task (= QA kind) -> classes
REQUIRED_ANSWERS = ("phase", "step", "next_phase", "next_step", "operation")


def pitvqa_tasks() -> tuple:
    return (
        MultilabelTask("instruments", INSTRUMENTS),
        *(ClassificationTask(name, classes) for name, classes in CLASSIFICATIONS.items()),
        TextTask("operation_note"),
    )


_LOOKUPS = {name: NameLookup.of(classes) for name, classes in (*CLASSIFICATIONS.items(), ("instruments", INSTRUMENTS))}


def _answer_id(vocabulary: str, answer: str, what: str, where: str) -> int:
    lookup = _LOOKUPS[vocabulary]
    found = lookup.find(answer)
    if found is None:
        raise InputError(where, f"{what} {answer!r} is not one of the {len(lookup.exact)} PitVQA {what}s")
    return found


def _frames(root: Path) -> tuple[list[tuple[str, str, Path, Path]], list[Skip]]:
    """(video, second, QA file, image) of every QA file, and the images without one."""
    qa_root, image_root = root / "QA", root / "images"
    for folder in (qa_root, image_root):
        if not folder.is_dir():
            raise InputError(folder, "missing: a PitVQA folder holds images/video_XX/ and QA/video_XX/")
    frames, skips = [], []
    for video_folder in sorted(qa_root.iterdir()):
        match = VIDEO_FOLDER.match(video_folder.name)
        if not match or not video_folder.is_dir():
            raise InputError(video_folder, "QA/ holds video_XX folders only")
        for qa_file in sorted(video_folder.iterdir()):
            if qa_file.suffix != ".txt" or not FRAME_FILE.match(qa_file.stem):
                raise InputError(qa_file, "QA files are named NNNNN.txt (the second of the video)")
            frames.append((match.group(1), qa_file.stem, qa_file, image_root / video_folder.name / f"{qa_file.stem}.png"))
    with_qa = {image for *_, image in frames}
    for image in sorted(image_root.glob("video_*/*.png")):
        if image not in with_qa:
            skips.append(Skip("image without a QA file", f"{image.parent.name}/{image.name}"))
    return frames, skips


def _video_id(member: str) -> str:
    return f"{int(member):02d}" if member.isdigit() else member


def _splits(videos: set[str], split_file: Path | None, seed: int) -> tuple[dict, dict]:
    if split_file is not None:
        # video numbers as the folders write them: 1 and "1" mean video_01
        splits = {name: tuple(_video_id(member) for member in members) for name, members in read_split_file(Path(split_file)).items()}
        record = {"source": "split file"}
    else:
        test = sorted(video for video in videos if video in OFFICIAL_VALIDATION_VIDEOS)
        training = hash_order(videos - set(test), seed)
        n_val = max(1, round(VAL_SHARE * len(training))) if len(training) > 1 else 0
        splits = {"train": tuple(sorted(training[n_val:])), "val": tuple(sorted(training[:n_val])), "test": tuple(test)}
        record = {"source": "official validation videos as test, val carved from train", "rule": SPLIT_RULE, "seed": seed}
    return splits, record | {name: list(members) for name, members in splits.items()}


@BUILDERS.register(NAME)
def build_pitvqa(
    source: Path,
    out: Path,
    *,
    split_file: Path | None = None,
    seed: int = 0,
    options: BuildOptions = BuildOptions(),
) -> Path:
    source = Path(source)
    if not source.is_dir():
        raise InputError(source, "PitVQA folder not found")
    frames, skips = _frames(source)
    if not frames:
        raise InputError(source / "QA", "holds no QA file")
    splits, split_record = _splits({video for video, *_ in frames}, split_file, seed)
    split_of_video = split_of(splits)
    jobs = []
    unknown = sorted(split_of_video.keys() - {video for video, *_ in frames})
    if unknown:
        raise InputError(split_file, f"names videos that are not in {source / 'QA'}: {', '.join(unknown)}")
    for video, second, qa_file, image in frames:
        sample_id = f"video_{video}_{second}"
        if video not in split_of_video:
            skips.append(Skip("video not in the split file", f"video_{video}"))
            continue
        qa = read_qa_file(qa_file)
        problem = _unusable(qa, image)
        if problem:
            skips.append(Skip(problem, sample_id))
            continue
        labels = {
            "instruments": tuple(sorted(_answer_id("instruments", name, "instrument", qa.where(line)) for name, line in qa.instruments.items())),
            **{
                task: _answer_id(task, qa.answers[task][0], task.replace("next_", ""), qa.where(qa.answers[task][1]))
                for task in CLASSIFICATIONS
            },
            "operation_note": qa.answers["operation"][0],
        }
        jobs.append(SampleJob(sample_id, split_of_video[video], video, second, FileImage(image), labels))
    spec = DatasetSpec(
        name=NAME,
        version=VERSION,
        builder_version=BUILDER_VERSION,
        source={
            "description": "PitVQA: endoscopic pituitary surgery frames with question|answer files (1 frame per second)",
            "inputs_sha256": _input_hashes(source, frames, split_file),
            "counts": {"qa_files": len(frames), "videos": len({video for video, *_ in frames})},
        },
        tasks=pitvqa_tasks(),
        splits=SPLITS,
        build_parameters={
            "questions": [f"{kind}: {pattern.pattern}" for kind, pattern in QUESTION_RULES],
            "dropped_answers": "no_visible_instrument and no_secondary_instrument (as the reference loader)",
            "answer_matching": "exact, else ignoring case, spaces, '-' and '_'",
            "split": split_record,
            "seed": seed,
        },
        splits_from=str(split_file) if split_file else f"{source} (official validation videos as test, seed {seed})",
    )
    return write_dataset(spec, jobs, _dedupe_skips(skips), out, options)


def _input_hashes(source: Path, frames: list, split_file: Path | None) -> dict[str, str]:
    """The QA files as one digest (sha256 over "<path> <sha256>" lines, sorted); images are in samples.csv."""
    lines = "".join(f"{qa_file.relative_to(source).as_posix()} {sha256_file(qa_file)}\n" for *_, qa_file, _ in frames)
    hashes = {"QA": hashlib.sha256(lines.encode("utf-8")).hexdigest()}
    if split_file is not None:
        hashes["split_file"] = sha256_file(Path(split_file))
    return hashes


def _unusable(qa: FrameQA, image: Path) -> str | None:
    if not qa.answers and not qa.instruments:
        return "empty QA file"
    absent = [kind for kind in REQUIRED_ANSWERS if kind not in qa.answers]
    if absent:
        return f"QA file without the {absent[0].replace('_', ' ')} question"
    if not image.is_file():
        return "QA file without its image"
    return None


def _dedupe_skips(skips: list[Skip]) -> list[Skip]:
    """One skip per (reason, item): a video left out of the split file is reported once."""
    return list(dict.fromkeys(skips))
