"""text: a target sentence per frame, optionally with named context fields.

Declared as {"name", "type": "text", "context": [field names]}; samples.csv holds the target in
column `<name>` and each context field in `<name>.<field>` (a report part, say, with its
`keyword` and the `previous` part). Texts are stored losslessly as UTF-8: no normalisation, no
case folding (umlauts and ß stay as they are), and they are covered by the fingerprint like
every cell of samples.csv. They are checked on the way in: no control characters (a CSV row is
one line), no lone surrogates (UTF-8 cannot encode them), at most MAX_CHARACTERS characters, and
a target is never empty (a context field may be).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mtlbench.errors import InputError
from mtlbench.tasks.base import TASK_NAME, Task, TextLabel, json_list
from mtlbench.tasks.registry import TASK_TYPES

MAX_CHARACTERS = 1000
# Unicode categories Cc (control characters) and Zl, Zp (line and paragraph separators, which end
# a line as well), and Cs (lone surrogates, which UTF-8 cannot encode), as one character class:
# checked for every text cell of every read, so one regex search rather than a category per character.
_NOT_IN_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def check_text(text: Any, what: str, where: str, required: bool) -> str:
    """A text as stored: a string of at most MAX_CHARACTERS without control characters."""
    if not isinstance(text, str):
        raise InputError(where, f"{what} must be text, got {type(text).__name__}")
    if required and not text.strip():
        raise InputError(where, f"{what} is empty")
    if len(text) > MAX_CHARACTERS:
        raise InputError(where, f"{what} has {len(text)} characters, more than the limit of {MAX_CHARACTERS}")
    bad = _NOT_IN_TEXT.search(text)
    if bad is not None:
        character = bad.group()
        if "\ud800" <= character <= "\udfff":
            raise InputError(where, f"{what} holds the lone surrogate U+{ord(character):04X}, which UTF-8 cannot encode")
        raise InputError(where, f"{what} holds the control character U+{ord(character):04X}")
    return text


@TASK_TYPES.register("text")
class TextTask(Task):
    kind = "text"
    statistics_keys = ("texts", "distinct", "mean_characters", "max_characters")

    def __init__(self, name: str, context: Sequence[str] = (), where: str | Path = "task"):
        super().__init__(name, where)
        self.context = tuple(context)
        bad = [field for field in self.context if not isinstance(field, str) or not TASK_NAME.match(field)]
        if bad or len(set(self.context)) != len(self.context):
            raise InputError(where, f"task {name!r}: context fields must be distinct lower-case identifiers, got {list(self.context)}")

    @classmethod
    def from_json(cls, data: dict, where: str | Path) -> TextTask:
        return cls(data.get("name"), json_list(data, "context", where), where)

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.kind, "context": list(self.context)}

    @property
    def submission_name(self) -> str:
        return f"{self.name}.jsonl"

    def columns(self) -> tuple[str, ...]:
        return (self.name, *(f"{self.name}.{field}" for field in self.context))

    def parse(self, cells: Sequence[str], where: str) -> TextLabel:
        text, *context = cells
        return TextLabel(
            check_text(text, self.name, where, required=True),
            tuple((field, check_text(value, f"{self.name}.{field}", where, required=False)) for field, value in zip(self.context, context)),
        )

    def cells(self, label: TextLabel) -> list[str]:
        return [label.text, *(value for _, value in label.context)]

    def check(self, label: Any, where: str) -> TextLabel:
        if isinstance(label, str):
            label = TextLabel(label, ())
        if not isinstance(label, TextLabel) or tuple(field for field, _ in label.context) != self.context:
            raise InputError(where, f"task {self.name!r} takes a text with the context fields {list(self.context)}")
        return self.parse(self.cells(label), where)

    def split_statistics(self, labels: Sequence[TextLabel], pixel_counts: np.ndarray) -> dict:
        lengths = [len(label.text) for label in labels]
        return {
            "texts": len(labels),
            "distinct": len({label.text for label in labels}),
            "mean_characters": round(float(np.mean(lengths)), 2) if lengths else None,
            "max_characters": max(lengths, default=None),
        }

    def item(self, label: TextLabel) -> dict[str, Any]:
        return {self.name: label.text, **{f"{self.name}.{field}": value for field, value in label.context}}

    def summary(self, statistics: dict[str, dict]) -> tuple[str, list[str], list[list[str]]]:
        def cell(split: dict, key: str) -> str:
            return "" if split[key] is None else str(split[key])

        rows = [[label, *(cell(split, key) for split in statistics.values())] for key, label in (
            ("texts", "texts"), ("distinct", "distinct texts"), ("mean_characters", "mean characters"), ("max_characters", "max characters"),
        )]
        context = f" (context: {', '.join(self.context)})" if self.context else ""
        return f"Task {self.name}: text{context}", ["statistic"], rows
