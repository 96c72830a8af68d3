"""The raw FESS annotation export (docs/datasets.md, "ent-fess"): the landmark vocabulary, and per
procedure its activities and its dictated report, each file checked strictly as it is read.

  landmarks.txt     one landmark name per line, in id order (blank lines are skipped)
  activities.csv    start,end,landmarks,current,next: half-open intervals [start, end) in
                    seconds (at most millisecond precision) that do not overlap; the visible
                    landmarks joined by "|" (empty: none visible); the current and the next
                    anatomy as sentences
  report.csv        time,keyword,sentence: the report sentence dictated at `time` seconds, with
                    its keyword; times strictly increasing

Files are UTF-8 (a byte-order mark is accepted); texts keep their umlauts and ß as written.
"""

from __future__ import annotations

import bisect
import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mtlbench.errors import InputError
from mtlbench.metrics.text import tokenize
from mtlbench.tasks.base import LABEL_SEPARATOR, check_names
from mtlbench.tasks.text import check_text
from mtlbench.textfiles import read_text_file

ACTIVITY_COLUMNS = ("start", "end", "landmarks", "current", "next")
REPORT_COLUMNS = ("time", "keyword", "sentence")
_SECONDS = re.compile(r"^([0-9]+)(?:\.([0-9]{1,3}))?$")


@dataclass(frozen=True)
class Activity:
    start_ms: int
    end_ms: int  # exclusive
    landmarks: tuple[int, ...]  # sorted landmark ids
    current: str
    next: str
    line: int


@dataclass(frozen=True)
class ReportSentence:
    time_ms: int
    keyword: str
    sentence: str


@dataclass(frozen=True)
class Report:
    sentences: tuple[ReportSentence, ...]  # in time order
    times_ms: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "times_ms", tuple(sentence.time_ms for sentence in self.sentences))

    def latest(self, time_ms: int) -> tuple[ReportSentence, str] | None:
        """The last sentence dictated at or before `time_ms`, and the sentence before it ("" if none)."""
        index = bisect.bisect_right(self.times_ms, time_ms) - 1
        if index < 0:
            return None
        return self.sentences[index], self.sentences[index - 1].sentence if index else ""


def read_landmarks(path: Path) -> tuple[str, ...]:
    names = [line.strip() for line in read_text_file(path).splitlines() if line.strip()]
    return check_names(names, "landmarks", path)


def seconds_to_ms(cell: str, what: str, where: str) -> int:
    match = _SECONDS.match(cell.strip())
    if not match:
        raise InputError(where, f"{what} {cell!r} is not a time in seconds >= 0 with at most 3 decimals")
    whole, fraction = match.groups()
    return int(whole) * 1000 + int((fraction or "").ljust(3, "0"))


def _rows(path: Path, columns: Sequence[str]):
    """(line, {column: cell}) of a table with exactly `columns` (in any order)."""
    reader = csv.reader(io.StringIO(read_text_file(path), newline=""))
    try:
        header = [cell.strip() for cell in next(reader, [])]
        if sorted(header) != sorted(columns):
            raise InputError(path, f"header must hold exactly the columns {','.join(columns)} (found: {','.join(header)})")
        end = reader.line_num
        for row in reader:
            line, end = end + 1, reader.line_num  # a quoted cell may span lines: name the row's first
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(path, f"line {line}: expected {len(header)} fields, found {len(row)}")
            yield line, dict(zip(header, row))
    except csv.Error as exc:
        raise InputError(path, f"line {reader.line_num}: not valid CSV ({exc})") from None


def _landmark_ids(cell: str, vocabulary: dict[str, int], where: str) -> tuple[int, ...]:
    names = [name.strip() for name in cell.split(LABEL_SEPARATOR)] if cell.strip() else []
    unknown = [name for name in names if name not in vocabulary]
    if unknown:
        raise InputError(where, f"landmark {unknown[0]!r} is not in landmarks.txt")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(where, f"landmark {repeated[0]!r} is listed twice")
    return tuple(sorted(vocabulary[name] for name in names))


def read_activities(path: Path, landmarks: Sequence[str]) -> tuple[Activity, ...]:
    vocabulary = {name: index for index, name in enumerate(landmarks)}
    activities = []
    for line, values in _rows(path, ACTIVITY_COLUMNS):
        where = f"{path}: line {line}"
        start, end = seconds_to_ms(values["start"], "start", where), seconds_to_ms(values["end"], "end", where)
        if end <= start:
            raise InputError(where, f"end {values['end']} must be after start {values['start']}")
        activities.append(
            Activity(
                start, end, _landmark_ids(values["landmarks"], vocabulary, where),
                check_text(values["current"], "current", where, required=True),
                check_text(values["next"], "next", where, required=True),
                line,
            )
        )
    if not activities:
        raise InputError(path, "holds no activity")
    activities.sort(key=lambda activity: activity.start_ms)
    for before, after in zip(activities, activities[1:]):
        if after.start_ms < before.end_ms:
            raise InputError(path, f"line {after.line}: overlaps the activity of line {before.line}")
    return tuple(activities)


def read_report(path: Path) -> Report:
    sentences = []
    for line, values in _rows(path, REPORT_COLUMNS):
        where = f"{path}: line {line}"
        time_ms = seconds_to_ms(values["time"], "time", where)
        if sentences and time_ms <= sentences[-1].time_ms:
            raise InputError(where, "times must increase from row to row")
        keyword = check_text(values["keyword"], "keyword", where, required=True)
        if not tokenize(keyword):
            raise InputError(where, f"keyword {keyword!r} has no letter or digit")
        sentences.append(ReportSentence(time_ms, keyword, check_text(values["sentence"], "sentence", where, required=True)))
    if not sentences:
        raise InputError(path, "holds no report sentence")
    return Report(tuple(sentences))
