"""PitVQA question|answer files: what a frame's QA file says, read strictly.

`QA/video_XX/NNNNN.txt` holds UTF-8 `question|answer` lines (blank lines are skipped). A
question is recognised by its words, case-insensitively, in this order (the first rule that
matches decides), so that rewordings of the release's templates keep working:

  next + phase            next phase          next + step        next step
  phase                   current phase       step               current step
  operation               operation note      how many           instrument count
  tip                     where a tool's tip is (the tool named after "tip of the")
  activity | doing | performing   what a tool does (the tool named after "is the")
  which instrument | instrument at   the instrument at a position

Any other question is refused with its file and line. Answers `no_visible_instrument` and
`no_secondary_instrument` name no instrument: they are dropped, as the reference loader does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mtlbench.errors import InputError
from mtlbench.tasks.text import check_text
from mtlbench.textfiles import question_answer_lines

NO_INSTRUMENT_ANSWERS = ("no_visible_instrument", "no_secondary_instrument")
SINGLE_ANSWERS = ("phase", "step", "next_phase", "next_step", "operation", "count")
# (kind, pattern on the lower-cased question), first match wins
QUESTION_RULES = (
    ("next_phase", re.compile(r"\bnext\b.*\bphase\b")),
    ("next_step", re.compile(r"\bnext\b.*\bstep\b")),
    ("phase", re.compile(r"\bphase\b")),
    ("step", re.compile(r"\bstep\b")),
    ("operation", re.compile(r"\boperation\b")),
    ("count", re.compile(r"\bhow many\b")),
    ("tip", re.compile(r"\btip of (?:the )?(?P<tool>[\w-]+)")),
    ("tool_activity", re.compile(r"\b(?:activity|doing|performing)\b.*?\bis the (?P<tool>[\w-]+)|\bis the (?P<tool2>[\w-]+) (?:doing|performing)")),
    ("at_position", re.compile(r"\bwhich instrument\b|\binstrument (?:is )?at\b")),
)


@dataclass
class FrameQA:
    """The answers of one frame: one per single-answer question, and the instruments named, each
    with the line it is on (for errors about its value)."""

    path: Path
    answers: dict[str, tuple[str, int]] = field(default_factory=dict)  # kind -> (answer, line)
    instruments: dict[str, int] = field(default_factory=dict)  # name -> first line naming it

    def where(self, line: int) -> str:
        return f"{self.path}: line {line}"


def question_kind(question: str) -> tuple[str, str | None] | None:
    """(kind, the tool the question names or None), or None for an unknown question."""
    text = question.lower()
    for kind, pattern in QUESTION_RULES:
        match = pattern.search(text)
        if match:
            tool = next((value for name, value in match.groupdict().items() if value), None)
            return kind, tool
    return None


def read_qa_file(path: Path) -> FrameQA:
    frame = FrameQA(path)
    for line_number, question, answer in question_answer_lines(path):
        recognised = question_kind(question)
        if recognised is None:
            raise InputError(path, f"line {line_number}: unknown question {question!r}")
        if not answer:
            raise InputError(path, f"line {line_number}: empty answer")
        kind, tool = recognised
        if kind in SINGLE_ANSWERS:
            if kind in frame.answers:
                raise InputError(path, f"line {line_number}: a second {kind.replace('_', ' ')} question")
            if kind == "operation":
                check_text(answer, "operation note", frame.where(line_number), required=True)
            frame.answers[kind] = (answer, line_number)
        elif kind == "at_position":
            if answer not in NO_INSTRUMENT_ANSWERS:
                frame.instruments.setdefault(answer, line_number)
        else:
            frame.instruments.setdefault(tool, line_number)
    return frame
