"""EndoVis-18-VQA Sentence files: the tools present in a frame and its sentence answers.

`seq_N/vqa/Sentence/frameXXX_QA.txt` holds `question|answer` lines whose answers are sentences
("the tools operating are bipolar forceps , prograsp forceps", "The prograsp_forceps is located
at left-top."). Per frame:

  tools      the instruments (ENDOVIS18_TOOLS) named in a question, or in the answer to a
             question about the tools; a name matches as whole words with "_" or a space
             between its parts, ignoring case
  sentences  the answers in file order, each stripped, joined by one space

A file that is not UTF-8, has a non-blank line that is not `question|answer`, or no answer, is
refused with its name and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mtlbench.errors import InputError
from mtlbench.tasks.text import check_text
from mtlbench.textfiles import question_answer_lines
from mtlbench.taxonomies import ENDOVIS18_TOOLS

SENTENCE_FOLDER = "Sentence"
TOOL_RULE = (
    "tools named in a question, or in the answer to a question about the tools; names match as whole words, "
    "'_' or ' ' between their parts, ignoring case"
)
SENTENCES_RULE = "the answers of the Sentence file in file order, stripped, joined by one space"
_TOOL_QUESTION = re.compile(r"\btools?\b", re.IGNORECASE)
_TOOL_PATTERNS = tuple(
    re.compile(r"(?<![a-z0-9])" + r"[ _]".join(map(re.escape, tool.split("_"))) + r"(?![a-z0-9])", re.IGNORECASE)
    for tool in ENDOVIS18_TOOLS
)


@dataclass(frozen=True)
class FrameSentences:
    tools: tuple[int, ...]  # ids in ENDOVIS18_TOOLS, sorted
    sentences: str


def _tools_in(text: str) -> set[int]:
    return {index for index, pattern in enumerate(_TOOL_PATTERNS) if pattern.search(text)}


def read_sentences(path: Path) -> FrameSentences:
    tools: set[int] = set()
    answers = []
    for _, question, answer in question_answer_lines(path):
        tools |= _tools_in(question)
        if _TOOL_QUESTION.search(question):
            tools |= _tools_in(answer)
        if answer:
            answers.append(answer)
    if not answers:
        raise InputError(path, "holds no answer")
    return FrameSentences(tuple(sorted(tools)), check_text(" ".join(answers), "the joined answers", str(path), required=True))
