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
from mtlbench.sources.endovis18 import find_sequence_dirs
from mtlbench.tasks.text import check_text
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


def find_sentence_files(root: Path) -> dict[int, dict[str, Path]]:
    """Sequence number -> frame name -> Sentence file, for sequences that have any."""
    found: dict[int, dict[str, Path]] = {}
    for number, sequence_dir in find_sequence_dirs(root, holding=("vqa",)).items():
        files = sorted((sequence_dir / "vqa" / SENTENCE_FOLDER).glob("*_QA.txt"))
        if files:
            found[number] = {path.name.split("_", 1)[0]: path for path in files}
    return found


def _tools_in(text: str) -> set[int]:
    return {index for index, pattern in enumerate(_TOOL_PATTERNS) if pattern.search(text)}


def read_sentences(path: Path) -> FrameSentences:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text (byte {exc.start})") from None
    tools: set[int] = set()
    answers = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if line.count("|") != 1:
            raise InputError(path, f"line {number}: expected question|answer")
        question, answer = (part.strip() for part in line.split("|"))
        tools |= _tools_in(question)
        if _TOOL_QUESTION.search(question):
            tools |= _tools_in(answer)
        if answer:
            answers.append(answer)
    if not answers:
        raise InputError(path, "holds no answer")
    return FrameSentences(tuple(sorted(tools)), check_text(" ".join(answers), "the joined answers", str(path), required=True))
