"""EndoVis-18-VQA classification files and the per-frame activity rule.

Each `seq_N/vqa/Classification/frameXXX_QA.txt` holds `question|answer` lines. Action lines
are recognised by their answer being one of the 13 actions (question wording varies); each
names one instrument's action. The frame's activity is the most frequent non-Idle action,
ties broken by the standard action order (earlier wins), and Idle when every instrument is
idle. A QA file that is not UTF-8, has a non-blank line that is not `question|answer`, or has
no action line at all says nothing about the frame's activity: it is an `UnlabelledFrame`
error, never a label (Idle included).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from mtlbench.errors import InputError
from mtlbench.sources.endovis18 import find_sequence_dirs
from mtlbench.taxonomies import ENDOVIS18_ACTIONS, normalise_name

ACTIVITY_RULE = (
    "per frame: the most frequent non-Idle per-instrument action among the QA lines whose answer is an action; "
    "ties broken by the standard action order (earlier wins); Idle when every instrument is idle; "
    "a QA file without an action line is never labelled"
)
_ACTION_BY_KEY = {normalise_name(action): action for action in ENDOVIS18_ACTIONS}
IDLE = ENDOVIS18_ACTIONS[0]


def find_qa_files(root: Path, kind: str = "Classification") -> dict[int, dict[str, Path]]:
    """Sequence number -> frame name -> QA file of `seq_N/vqa/<kind>/` (Classification or
    Sentence), for sequences that have any."""
    found: dict[int, dict[str, Path]] = {}
    for number, sequence_dir in find_sequence_dirs(root, holding=("vqa",)).items():
        files = sorted((sequence_dir / "vqa" / kind).glob("*_QA.txt"))
        if files:
            found[number] = {path.name.split("_", 1)[0]: path for path in files}
    return found


class UnlabelledFrame(InputError):
    """A QA file from which no activity can be read (empty, not UTF-8, or malformed)."""


def read_actions(path: Path) -> list[str]:
    """The per-instrument actions of one QA file, in file order; at least one, else UnlabelledFrame."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnlabelledFrame(path, f"QA file is not UTF-8 text (byte {exc.start})") from None
    actions = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if "|" not in line:
            raise UnlabelledFrame(path, f"line {number} is not a question|answer line (--skip-unlabelled skips such frames)")
        action = _ACTION_BY_KEY.get(normalise_name(line.rsplit("|", 1)[1]))
        if action is not None:
            actions.append(action)
    if not actions:
        problem = "empty QA file" if not text.strip() else "no line answers with one of the 13 actions"
        raise UnlabelledFrame(path, f"{problem}: the frame's activity is unknown (--skip-unlabelled skips such frames)")
    return actions


def frame_activity(actions: list[str]) -> str:
    if not actions:
        raise ValueError("a frame's activity needs at least one action")
    busy = Counter(action for action in actions if action != IDLE)
    if not busy:
        return IDLE
    return min(busy, key=lambda action: (-busy[action], ENDOVIS18_ACTIONS.index(action)))
