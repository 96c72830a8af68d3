"""MTLEndovis: EndoVis 2018 scene segmentation + EndoVis-18-VQA frame activities.

When the EndoVis-18-VQA Sentence files are there too, the dataset gets two more tasks from them
(mtlbench/sources/endovis18_sentences.py): `tools` (multilabel: the instruments present) and
`sentences` (text: the frame's sentence answers). Every frame then needs its Sentence file: one
without is skipped and counted. Without any Sentence file the dataset is exactly what it was.

`classes` picks the class scheme (ENDOVIS18_CLASS_SCHEMES in mtlbench/taxonomies.py): `endovis18`,
the 12 standard classes, or `release`, 10 classes with the three instrument parts merged, the most
the EndoARSS release's loader accepts. The label colours are mapped to the scheme's ids as the
masks are decoded.
"""

from __future__ import annotations

from pathlib import Path

from mtlbench.builders import BUILDERS
from mtlbench.builders.options import BuildOptions, endoarss_tasks, write_dataset
from mtlbench.dataset.manifest import SPLITS
from mtlbench.dataset.writer import DatasetSpec, FileImage, SampleJob, Skip
from mtlbench.errors import InputError
from mtlbench.sources.endovis18 import RELEASE_CONTENT, ColourLabel, find_sequence_dirs, read_colour_table
from mtlbench.sources.endovis18_sentences import SENTENCE_FOLDER, SENTENCES_RULE, TOOL_RULE, read_sentences
from mtlbench.sources.endovis18_vqa import ACTIVITY_RULE, UnlabelledFrame, find_qa_files, frame_activity, read_actions
from mtlbench.splits import SplitMap, read_split_file, split_of
from mtlbench.tasks.multilabel import MultilabelTask
from mtlbench.tasks.text import TextTask
from mtlbench.taxonomies import ENDOVIS18_ACTIONS, ENDOVIS18_CLASS_SCHEMES, ENDOVIS18_TOOLS, ClassScheme

NAME = "mtlendovis"
VERSION = "1.0.0"
BUILDER_VERSION = "1.2.0"  # 1.1: the tools and sentences tasks from Sentence files; 1.2: class schemes
DEFAULT_SPLITS: SplitMap = {
    "train": ("2", "3", "4", "6", "7", "9", "10", "11", "12", "14"),
    "val": ("15",),
    "test": ("1", "5", "16"),
}
UNLABELLED_SKIP_REASON = "QA file without a readable action (skipped with --skip-unlabelled)"


@BUILDERS.register("mtlendovis")
def build_mtlendovis(
    source: Path,
    out: Path,
    *,
    vqa: Path | None = None,
    split_file: Path | None = None,
    skip_unlabelled: bool = False,
    classes: str = "endovis18",
    options: BuildOptions = BuildOptions(),
) -> Path:
    """`skip_unlabelled`: a frame whose QA file is empty or unreadable is skipped and counted in
    the dataset card instead of stopping the build; it never gets a label. `classes`: the name of
    a class scheme of ENDOVIS18_CLASS_SCHEMES."""
    scheme = ENDOVIS18_CLASS_SCHEMES.get(classes, "--classes")
    source = Path(source)
    sequence_dirs = find_sequence_dirs(source, holding=RELEASE_CONTENT)
    if not sequence_dirs:
        raise InputError(source, "no seq_* folders found (expected an EndoVis 2018 training release)")
    qa_files = find_qa_files(Path(vqa) if vqa else source)
    sentence_files = find_qa_files(Path(vqa) if vqa else source, SENTENCE_FOLDER)
    splits = read_split_file(split_file) if split_file else DEFAULT_SPLITS
    jobs, skips = _discover(sequence_dirs, qa_files, sentence_files, splits, scheme, skip_unlabelled)
    tasks = endoarss_tasks(ENDOVIS18_ACTIONS, scheme.classes)
    sentence_parameters = {}
    if sentence_files:
        tasks += (MultilabelTask("tools", ENDOVIS18_TOOLS), TextTask("sentences"))
        sentence_parameters = {"tools_rule": TOOL_RULE, "sentences_rule": SENTENCES_RULE}
    spec = DatasetSpec(
        name=NAME,
        version=VERSION,
        builder_version=BUILDER_VERSION,
        source={
            "description": "EndoVis 2018 Robotic Scene Segmentation training release with EndoVis-18-VQA activity annotations"
            f"; classes: {scheme.name} ({scheme.description})",
            "sequences_found": sorted(sequence_dirs),
            "sequences_with_vqa": sorted(qa_files),
            **({"sequences_with_sentences": sorted(sentence_files)} if sentence_files else {}),
        },
        tasks=tasks,
        splits=SPLITS,
        build_parameters={
            "activity_rule": ACTIVITY_RULE,
            "activity_vocabulary": "the 13 EndoVis-18-VQA actions in standard order, ids 0..12, also those that never occur",
            "class_scheme": scheme.name,
            "label_decoding": "exact RGB colour via each sequence's labels.json, colour -> standard class id -> "
            f"class id of the {scheme.name} scheme; other colours -> 255",
            "split_definition": {name: [int(s) for s in members] for name, members in splits.items()},
            "split_source": f"split file {Path(split_file).name}" if split_file else "default (EndoVis-18-VQA test split 1,5,16; val 15)",
            "unlabelled_frames": "skipped and counted" if skip_unlabelled else "an error",
            **sentence_parameters,
            "seed": None,
        },
        splits_from=str(split_file) if split_file else f"{source} (default split of {NAME})",
    )
    return write_dataset(spec, jobs, skips, out, options)


def _discover(
    sequence_dirs: dict[int, Path],
    qa_files: dict[int, dict[str, Path]],
    sentence_files: dict[int, dict[str, Path]],
    splits: SplitMap,
    scheme: ClassScheme,
    skip_unlabelled: bool,
) -> tuple[list[SampleJob], list[Skip]]:
    """`sentence_files` empty: no sentence tasks; otherwise every frame needs its Sentence file."""
    assignment = split_of(splits)
    jobs: list[SampleJob] = []
    skips: list[Skip] = []
    for number, sequence_dir in sorted(sequence_dirs.items()):
        name = f"seq_{number}"
        if number not in qa_files:
            skips.append(Skip("sequence without VQA annotations", name))
            continue
        if str(number) not in assignment:
            skips.append(Skip("sequence not in the split definition", name))
            continue
        sentences = sentence_files.get(number, {}) if sentence_files else None
        found = _discover_sequence(
            number, sequence_dir, qa_files[number], sentences, assignment[str(number)], scheme, skip_unlabelled
        )
        jobs += found[0]
        skips += found[1]
    for member, split in assignment.items():
        if not member.isdigit() or int(member) not in sequence_dirs:
            skips.append(Skip("sequence of the split definition not found in the source", f"seq_{member} ({split})"))
    return jobs, skips


def _discover_sequence(
    number: int,
    sequence_dir: Path,
    qa: dict[str, Path],
    sentences: dict[str, Path] | None,
    split: str,
    scheme: ClassScheme,
    skip_unlabelled: bool,
) -> tuple[list[SampleJob], list[Skip]]:
    frames_dir = sequence_dir / "left_frames"
    if not frames_dir.is_dir():
        raise InputError(frames_dir, "missing: every sequence needs its left_frames folder")
    colours = read_colour_table(sequence_dir / "labels.json", scheme)
    frames = {path.stem: path for path in frames_dir.glob("*.png")}
    labels = {path.stem: path for path in (sequence_dir / "labels").glob("*.png")}
    jobs, skips = [], []
    for frame in sorted(frames.keys() | labels.keys()):
        item = f"seq_{number}/{frame}"
        if frame not in labels:
            skips.append(Skip("frame without label PNG", item))
        elif frame not in frames:
            skips.append(Skip("label PNG without frame", item))
        elif frame not in qa:
            skips.append(Skip("frame without QA file", item))
        elif sentences is not None and frame not in sentences:
            skips.append(Skip("frame without Sentence file", item))
        else:
            try:
                activity = frame_activity(read_actions(qa[frame]))
            except UnlabelledFrame:
                if not skip_unlabelled:
                    raise
                skips.append(Skip(UNLABELLED_SKIP_REASON, item))
                continue
            task_labels = {"activity": ENDOVIS18_ACTIONS.index(activity)}
            if sentences is not None:
                frame_sentences = read_sentences(sentences[frame])
                task_labels |= {"tools": frame_sentences.tools, "sentences": frame_sentences.sentences}
            jobs.append(
                SampleJob(
                    sample_id=f"seq{number:02d}_{frame}",
                    split=split,
                    sequence=str(number),
                    frame=frame,
                    image=FileImage(frames[frame]),
                    labels=task_labels,
                    mask=ColourLabel(labels[frame], colours),
                )
            )
    return jobs, skips
