"""ENT FESS: frames of functional endoscopic sinus surgery with anatomical landmarks, descriptions of
the current and the next anatomy, and the latest part of the dictated report.

Input: a folder with `landmarks.txt` and one folder per procedure holding its recording
(`video.<mp4|mkv|mov|avi|webm>`, or `frames/NNNNNN.png` with `frames.json` {"fps": ...}) and
`activities.csv` and `report.csv` (formats in mtlbench/sources/fess.py). Folders without
activities.csv are skipped and reported.

Frames are sampled at `rate` per second on a grid of times shared by all procedures (multiples
of 1/rate s) inside the activities' half-open intervals; each sample shows the recording's frame
at that time (mtlbench/sources/video.py) and carries four tasks:

  landmarks            multilabel: the activity's visible landmarks
  current_description  text: the activity's description of the current anatomy
  next_description     text: its description of the next anatomy
  report               text: the last report sentence dictated at or before the frame, with its
                       keyword and the sentence before it as context; frames before the first
                       sentence are skipped and reported

Splits keep procedures whole: a split file, or whole procedures in hash order of the seed (20%
test, 10% val, at least one each, the rest train).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from mtlbench.builders import BUILDERS
from mtlbench.builders.options import BuildOptions, write_dataset
from mtlbench.dataset.manifest import SPLITS, safe_id
from mtlbench.dataset.writer import DatasetSpec, SampleJob, Skip
from mtlbench.errors import InputError
from mtlbench.jsonio import read_json
from mtlbench.outputs import sha256_file
from mtlbench.sources.fess import Activity, read_activities, read_landmarks, read_report
from mtlbench.sources.video import (
    COLOUR_RULE,
    FRAME_RULE,
    VIDEO_SUFFIXES,
    VideoFrame,
    probe_video,
    read_frame_folder,
)
from mtlbench.splits import split_of, whole_sequence_splits
from mtlbench.tasks import TextLabel
from mtlbench.tasks.multilabel import MultilabelTask
from mtlbench.tasks.text import TextTask

NAME = "ent-fess"
VERSION = "1.0.0"
BUILDER_VERSION = "1.0.0"
DEFAULT_RATE = 5
LANDMARKS_FILE = "landmarks.txt"
ACTIVITIES_FILE = "activities.csv"
REPORT_FILE = "report.csv"
FRAMES_FOLDER = "frames"
FRAMES_META = "frames.json"
SAMPLING_RULE = (
    "times k/rate s (k integer) inside each activity's [start, end); "
    "sample_id <procedure>_<time in ms, 8 digits>, made filesystem-safe (other characters become '-')"
)
REPORT_RULE = "target: the last report sentence dictated at or before the frame; context: its keyword and the sentence before it"
DEFAULT_SPLIT_SOURCE = "default procedure split"
NO_REPORT_YET = "frame before the first report sentence"


def fess_tasks(landmarks: tuple[str, ...]) -> tuple:
    return (
        MultilabelTask("landmarks", landmarks),
        TextTask("current_description"),
        TextTask("next_description"),
        TextTask("report", ("keyword", "previous")),
    )


def check_rate(rate: object) -> int:
    """A sampling rate whose period is a whole number of milliseconds, so sample times are exact."""
    if isinstance(rate, bool) or not isinstance(rate, int) or rate < 1 or 1000 % rate:
        raise InputError("--rate", f"must be a whole number of frames per second dividing 1000 (1, 2, 4, 5, 8, 10, ...), got {rate!r}")
    return rate


class _Recording:
    """Where a procedure's frames come from, and how long it lasts (None: the container does not say)."""

    def __init__(self, folder: Path):
        videos = sorted(path for path in folder.iterdir() if path.stem == "video" and path.suffix.lower() in VIDEO_SUFFIXES)
        has_frames = (folder / FRAMES_FOLDER).is_dir()
        if len(videos) + has_frames != 1:
            found = ", ".join(path.name for path in videos) + (f"{', ' if videos else ''}{FRAMES_FOLDER}/" if has_frames else "")
            raise InputError(
                folder,
                f"needs exactly one recording: video.<{'|'.join(s[1:] for s in VIDEO_SUFFIXES)}> or {FRAMES_FOLDER}/ "
                f"with {FRAMES_META} (found: {found or 'none'})",
            )
        if not has_frames and (folder / FRAMES_META).exists():
            raise InputError(folder / FRAMES_META, f"belongs to a {FRAMES_FOLDER}/ folder, but the recording is {videos[0].name}")
        if has_frames:
            meta_path = folder / FRAMES_META
            meta = read_json(meta_path, missing=f"missing: {FRAMES_FOLDER}/ needs it to give the frame rate")
            if not isinstance(meta, dict) or set(meta) != {"fps"}:
                raise InputError(meta_path, 'must be {"fps": <frames per second>}')
            self.frames = read_frame_folder(folder / FRAMES_FOLDER, meta["fps"], meta_path)
            self.video = None
            self.duration = self.frames.duration
            self.files = {FRAMES_META: meta_path}
        else:
            self.video, self.frames = videos[0], None
            self.duration = probe_video(self.video).duration
            self.files = {self.video.name: self.video}

    def image(self, time_ms: int):
        return VideoFrame(self.video, time_ms) if self.video is not None else self.frames.frame_at(time_ms)

    def check_covers(self, activities: tuple[Activity, ...], path: Path) -> None:
        last = activities[-1]
        if self.duration is not None and Fraction(last.end_ms, 1000) > self.duration:
            raise InputError(path, f"line {last.line}: ends at {last.end_ms / 1000:.3f} s, after the recording ({float(self.duration):.3f} s)")


def _sample_times(activity: Activity, period_ms: int) -> range:
    first = -(-activity.start_ms // period_ms) * period_ms  # the first grid time at or after the start
    return range(first, activity.end_ms, period_ms)


@BUILDERS.register(NAME)
def build_ent_fess(
    source: Path,
    out: Path,
    *,
    rate: int = DEFAULT_RATE,
    split_file: Path | None = None,
    seed: int = 0,
    options: BuildOptions = BuildOptions(),
) -> Path:
    source = Path(source)
    period_ms = 1000 // check_rate(rate)
    if not source.is_dir():
        raise InputError(source, "FESS source folder not found")
    landmarks = read_landmarks(source / LANDMARKS_FILE)
    skips: list[Skip] = []
    procedures = {}
    for folder in sorted(path for path in source.iterdir() if path.is_dir()):
        if not (folder / ACTIVITIES_FILE).is_file():
            skips.append(Skip(f"folder without {ACTIVITIES_FILE}", folder.name))
            continue
        activities = read_activities(folder / ACTIVITIES_FILE, landmarks)
        recording = _Recording(folder)
        recording.check_covers(activities, folder / ACTIVITIES_FILE)
        procedures[folder.name] = (activities, read_report(folder / REPORT_FILE), recording)
    if not procedures:
        raise InputError(source, f"no procedure folder with {ACTIVITIES_FILE} found")
    splits, split_record = whole_sequence_splits(split_file, set(procedures), seed, source, "procedures", DEFAULT_SPLIT_SOURCE)
    split_of_procedure = split_of(splits)
    skips += [Skip("procedure not in the split file", name) for name in sorted(set(procedures) - split_of_procedure.keys())]
    unknown = sorted(split_of_procedure.keys() - set(procedures))
    if unknown:
        raise InputError(split_file, f"names procedures that are not in {source}: {', '.join(unknown)}")
    jobs, counts = [], {"activities": 0, "report_sentences": 0}
    for name, (activities, report, recording) in procedures.items():
        counts["activities"] += len(activities)
        counts["report_sentences"] += len(report.sentences)
        if name not in split_of_procedure:
            continue
        for activity in activities:
            for time_ms in _sample_times(activity, period_ms):
                sample_id = safe_id(f"{name}_{time_ms:08d}")  # the dataset reader takes no other
                latest = report.latest(time_ms)
                if latest is None:
                    skips.append(Skip(NO_REPORT_YET, sample_id))
                    continue
                sentence, previous = latest
                jobs.append(
                    SampleJob(
                        sample_id=sample_id,
                        split=split_of_procedure[name],
                        sequence=name,
                        frame=f"{time_ms:08d}",
                        image=recording.image(time_ms),
                        labels={
                            "landmarks": activity.landmarks,
                            "current_description": activity.current,
                            "next_description": activity.next,
                            "report": TextLabel(sentence.sentence, (("keyword", sentence.keyword), ("previous", previous))),
                        },
                    )
                )
    spec = DatasetSpec(
        name=NAME,
        version=VERSION,
        builder_version=BUILDER_VERSION,
        source={
            "description": "FESS recordings with activity tables (landmarks, current and next anatomy) and dictated reports",
            "inputs_sha256": _input_hashes(source, procedures, split_file),
            "counts": {"procedures": len(procedures), **counts},
        },
        tasks=fess_tasks(landmarks),
        splits=SPLITS,
        build_parameters={
            "rate_fps": rate,
            "sampling": SAMPLING_RULE,
            "frame": FRAME_RULE,
            "colour": COLOUR_RULE,
            "report": REPORT_RULE,
            "split": split_record,
            "seed": seed,
        },
        splits_from=str(split_file) if split_file else f"{source} (default procedure split, seed {seed})",
    )
    return write_dataset(spec, jobs, skips, out, options)


def _input_hashes(source: Path, procedures: dict, split_file: Path | None) -> dict[str, str]:
    """sha256 of every input file but the frames of a frames folder (their images are in samples.csv)."""
    hashes = {LANDMARKS_FILE: sha256_file(source / LANDMARKS_FILE)}
    for name, (_, _, recording) in procedures.items():
        folder = source / name
        for file_name in (ACTIVITIES_FILE, REPORT_FILE):
            hashes[f"{name}/{file_name}"] = sha256_file(folder / file_name)
        for file_name, path in recording.files.items():
            hashes[f"{name}/{file_name}"] = sha256_file(path)
    if split_file is not None:
        hashes["split_file"] = sha256_file(Path(split_file))
    return hashes
