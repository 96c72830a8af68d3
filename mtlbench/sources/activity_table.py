"""Per-frame activity labels from a CSV file, in one of two variants told apart by the header.

- `video,start_frame,end_frame,activity`: inclusive frame intervals per video. A frame's number is
  the integer value of its frame string ("000030" -> 30). Intervals of one video may overlap only
  if they give the same activity.
- `file_name,activity`: one row per image, `file_name` as written in the annotation file.

Activity values are matched to the vocabulary ignoring case, spaces, '_' and '-'.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Sequence

from mtlbench.errors import InputError
from mtlbench.taxonomies import normalise_name

INTERVAL_HEADER = ("video", "start_frame", "end_frame", "activity")
FILE_HEADER = ("file_name", "activity")
_FRAME_NUMBER = re.compile(r"^[0-9]+$")


@dataclass(frozen=True)
class Interval:
    line: int
    start: int
    end: int
    activity_id: int


@dataclass(frozen=True)
class IntervalTable:
    path: Path
    intervals: dict[str, tuple[Interval, ...]]  # video -> its intervals, by start frame
    rows: int
    rule = "rows video,start_frame,end_frame,activity: inclusive intervals of the frame's integer value"

    def activity_of(self, video: str, frame: str, file_name: str) -> int | None:
        intervals = self.intervals.get(video)
        if intervals is None:
            return None
        if not _FRAME_NUMBER.match(frame):
            raise InputError(self.path, f"interval rows need numeric frames, but image {file_name!r} has frame {frame!r}")
        number = int(frame)
        # Overlapping intervals agree (checked on reading), so the first match is the answer.
        return next((i.activity_id for i in intervals if i.start <= number <= i.end), None)

    def unknown_references(self, videos: Collection[str], file_names: Collection[str]) -> list[str]:
        return [
            f"video {video} (line {interval.line})"
            for video, intervals in sorted(self.intervals.items())
            if video not in videos
            for interval in intervals
        ]


@dataclass(frozen=True)
class FileTable:
    path: Path
    activities: dict[str, tuple[int, int]]  # file_name -> (line, activity id)
    rows: int
    rule = "rows file_name,activity: one activity per image file"

    def activity_of(self, video: str, frame: str, file_name: str) -> int | None:
        line_and_activity = self.activities.get(file_name)
        return None if line_and_activity is None else line_and_activity[1]

    def unknown_references(self, videos: Collection[str], file_names: Collection[str]) -> list[str]:
        return [f"{name} (line {line})" for name, (line, _) in sorted(self.activities.items()) if name not in file_names]


ActivityTable = IntervalTable | FileTable


def read_activity_table(path: Path, vocabulary: Sequence[str]) -> ActivityTable:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(path, "activity file not found") from None
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text))
    header = tuple(cell.strip().lower() for cell in next(reader, []))
    if header not in (INTERVAL_HEADER, FILE_HEADER):
        raise InputError(path, f"header must be {','.join(INTERVAL_HEADER)} or {','.join(FILE_HEADER)}")
    rows = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputError(path, f"line {reader.line_num}: expected {len(header)} fields, found {len(row)}")
        if not row[0].strip():
            raise InputError(path, f"line {reader.line_num}: empty {header[0]}")
        rows.append((reader.line_num, [cell.strip() for cell in row]))
    activity_ids = {normalise_name(name): i for i, name in enumerate(vocabulary)}

    def activity_id(line: int, value: str) -> int:
        if normalise_name(value) not in activity_ids:
            raise InputError(path, f"line {line}: activity {value!r} is not one of: {', '.join(vocabulary)}")
        return activity_ids[normalise_name(value)]

    if header == FILE_HEADER:
        return _file_table(path, [(line, name, activity_id(line, value)) for line, (name, value) in rows])
    return _interval_table(
        path,
        [
            (line, video, _frame_number(path, line, start), _frame_number(path, line, end), activity_id(line, value))
            for line, (video, start, end, value) in rows
        ],
    )


def _frame_number(path: Path, line: int, text: str) -> int:
    if not _FRAME_NUMBER.match(text):
        raise InputError(path, f"line {line}: frame {text!r} is not a non-negative integer")
    return int(text)


def _file_table(path: Path, rows: list[tuple[int, str, int]]) -> FileTable:
    activities: dict[str, tuple[int, int]] = {}
    for line, name, activity in rows:
        if name in activities:
            raise InputError(path, f"line {line}: {name!r} is already listed on line {activities[name][0]}")
        activities[name] = (line, activity)
    return FileTable(path, activities, len(rows))


def _interval_table(path: Path, rows: list[tuple[int, str, int, int, int]]) -> IntervalTable:
    by_video: dict[str, list[Interval]] = {}
    for line, video, start, end, activity in rows:
        if start > end:
            raise InputError(path, f"line {line}: start_frame {start} is after end_frame {end}")
        by_video.setdefault(video, []).append(Interval(line, start, end, activity))
    for intervals in by_video.values():
        intervals.sort(key=lambda interval: (interval.start, interval.line))
        _check_overlaps(path, intervals)
    return IntervalTable(path, {video: tuple(items) for video, items in by_video.items()}, len(rows))


def _check_overlaps(path: Path, intervals: list[Interval]) -> None:
    """Overlapping intervals must agree. Sorted by start, every earlier interval that overlaps the
    current one contains its start, so they all overlap each other and (checked before) agree:
    comparing with the one reaching furthest is enough."""
    furthest: Interval | None = None
    for interval in intervals:
        if furthest is not None and interval.start <= furthest.end and interval.activity_id != furthest.activity_id:
            first, second = sorted((furthest.line, interval.line))
            raise InputError(path, f"lines {first} and {second}: overlapping intervals with different activities")
        if furthest is None or interval.end > furthest.end:
            furthest = interval
