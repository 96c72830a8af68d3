"""What the scorers of every task type share: the split being evaluated, reading a per-sample CSV
file of a submission strictly, and attaching bootstrap intervals to a section of results.json."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mtlbench.dataset.manifest import DatasetCard, Sample
from mtlbench.errors import InputError
from mtlbench.metrics.bootstrap import cluster_bootstrap, sum_by_sequence
from mtlbench.tasks.base import SCORE_PREFIX
from mtlbench.textfiles import read_text_file

MAX_LISTED = 10
FORMAT_COLUMN = 26  # where the explanations of `evaluate --format` start
NOT_SCORED = "task not in the submission"


@dataclass(frozen=True)
class SplitContext:
    """The split a submission is read and scored against."""

    card: DatasetCard
    split: str
    samples: tuple[Sample, ...]
    split_of: dict[str, str] = field(init=False, repr=False)  # every sample id of the dataset -> its split

    def __post_init__(self) -> None:
        object.__setattr__(self, "split_of", {sample.sample_id: sample.split for sample in self.card.samples})

    @property
    def sequences(self) -> list[str]:
        return [sample.sequence for sample in self.samples]

    def where_else(self, sample_id: str) -> str | None:
        """Why a sample id is not one of the split's, or None if it is."""
        other = self.split_of.get(sample_id)
        if other is None:
            return f"not a sample of dataset {self.card.name!r}"
        if other != self.split:
            return f"a sample of split {other!r}, not {self.split!r}"
        return None


def format_line(indent: int, name: str, text: str) -> str:
    """A line of `evaluate --format`: the name, then its explanation from FORMAT_COLUMN on (two
    spaces at least, so that a long name never runs into it)."""
    return f"{' ' * indent}{name}".ljust(FORMAT_COLUMN - 2) + "  " + text


def listing(items: Sequence[str]) -> str:
    items = list(items)
    shown = ", ".join(items[:MAX_LISTED])
    return shown if len(items) <= MAX_LISTED else f"{shown}, ... ({len(items)} in all)"


def refuse_symlink(path: Path) -> None:
    if path.is_symlink():
        raise InputError(path, "symbolic links are not accepted in a submission")


def read_text(path: Path) -> str:
    """A submission file's text: a UTF-8 file (a byte-order mark is accepted)."""
    if not path.is_file():
        raise InputError(path, "must be a file")
    return read_text_file(path)


def csv_rows(path: Path, context: SplitContext, check_header: Callable[[list[str]], None]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, {column: cell}) of each data row of a per-sample CSV file, strictly checked.

    The header is stripped and given to `check_header` first; blank lines are skipped; every row
    needs the header's number of fields and a sample_id of the split, each once."""
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    try:
        header = [cell.strip() for cell in next(reader, [])]
        repeated = sorted({column for column in header if header.count(column) > 1})
        if repeated:
            raise InputError(path, f"header repeats the column(s) {', '.join(repeated)}")
        check_header(header)
        first_line: dict[str, int] = {}
        for row in reader:
            if not row:
                continue  # blank lines, e.g. at the end of a hand-written file
            line = reader.line_num
            row = [cell.strip() for cell in row]
            if len(row) != len(header):
                raise InputError(path, f"line {line}: expected {len(header)} fields, found {len(row)}")
            values = dict(zip(header, row))
            check_sample_id(path, line, values["sample_id"], context, first_line)
            yield line, values
    except csv.Error as exc:
        raise InputError(path, f"line {reader.line_num}: not valid CSV ({exc})") from None


def score_column(name: str) -> str:
    return f"{SCORE_PREFIX}{name}"


def check_score_header(path: Path, header: list[str], fixed: Sequence[str], names: Sequence[str], each: str, columns: str) -> None:
    """The header of a CSV predictions file: the `fixed` columns, and a score_<name> column for
    every one of `names` or for none (`each` says what a name is, `columns` what `fixed` are)."""
    require_columns(path, header, fixed)
    expected = [score_column(name) for name in names]
    others = [column for column in header if column not in fixed]
    unknown = [column for column in others if column not in expected]
    if unknown:
        hint = " (an unnamed column: a pandas index? write with index=False)" if "" in unknown else ""
        raise InputError(
            path,
            f"unknown column(s) {', '.join(map(repr, unknown))}{hint}: the columns are {columns} "
            f"and optionally score_<{each}> for every {each}, e.g. {expected[0]}",
        )
    if others and len(others) != len(expected):
        raise InputError(path, f"give a score column for every {each} or none; lacking: {listing([c for c in expected if c not in others])}")


def check_sample_id(path: Path, line: int, sample_id: str, context: SplitContext, first_line: dict[str, int]) -> None:
    """A sample id on `line` of a predictions file: one of the split's, not seen before (`first_line`
    remembers the line of each id seen)."""
    problem = context.where_else(sample_id)
    if problem:
        raise InputError(path, f"line {line}: sample_id {sample_id!r} is {problem}")
    if sample_id in first_line:
        raise InputError(path, f"line {line}: duplicate sample_id {sample_id!r} (first on line {first_line[sample_id]})")
    first_line[sample_id] = line


def require_columns(path: Path, header: list[str], required: Sequence[str]) -> None:
    if not header:
        raise InputError(path, f"empty: expected the header {','.join(required)}")
    absent = [column for column in required if column not in header]
    if absent:
        raise InputError(path, f"header lacks the column(s) {', '.join(absent)} (found: {','.join(header)})")


def probability(path: Path, line: int, column: str, cell: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise InputError(path, f"line {line}: {column} {cell!r} is not a number") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InputError(path, f"line {line}: {column} {cell!r} is not a probability in [0, 1]")
    return value


def per_sequence(per_frame: dict[str, np.ndarray], context: SplitContext) -> dict[str, np.ndarray]:
    """Per-frame summable statistics summed per sequence (sequences in sorted order)."""
    return sum_by_sequence(per_frame, context.sequences)[1]


def with_intervals(section: dict, per_sequence: dict[str, np.ndarray], statistic, resamples: int, seed: int) -> dict:
    """`section` scored, with 95% cluster-bootstrap intervals (whole sequences resampled) of `statistic`
    computed from per-sequence summable statistics."""
    section["scored"] = True
    if resamples <= 0:
        section["ci"] = None
        section["null_reasons"]["ci"] = "bootstrap turned off (--bootstrap 0)"
        return section
    drawn = cluster_bootstrap(per_sequence, statistic, resamples=resamples, seed=seed)
    section["ci"] = drawn["intervals"]
    for key, reason in drawn["null_reasons"].items():
        section["null_reasons"][f"ci.{key}"] = reason
    return section


def not_scored(headline: Sequence[str]) -> dict:
    """The section of a task the submission does not carry: every headline key null, with the reason."""
    return {**{key: None for key in headline}, "per_class": [], "scored": False, "null_reasons": {key: NOT_SCORED for key in headline}}
