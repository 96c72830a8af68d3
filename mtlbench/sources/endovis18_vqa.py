"""EndoVis-18-VQA classification files and the per-frame activity rule.

Each `seq_N/vqa/Classification/frameXXX_QA.txt` holds `question|answer` lines. Action lines
are recognised by their answer being one of the 13 actions (question wording varies); each
names one instrument's action. The frame's activity is the most frequent non-Idle action,
ties broken by the standard action order (earlier wins), and Idle when every instrument is
idle.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from mtlbench.errors import InputError
from mtlbench.sources.endovis18 import find_sequence_dirs
from mtlbench.taxonomies import ENDOVIS18_ACTIONS, normalise_name

ACTIVITY_RULE = (
    "per frame: the most frequent non-Idle per-instrument action among the QA lines whose answer is an action; "
    "ties broken by the standard action order (earlier wins); Idle when every instrument is idle"
)
_ACTION_BY_KEY = {normalise_name(action): action for action in ENDOVIS18_ACTIONS}
IDLE = ENDOVIS18_ACTIONS[0]


def find_qa_files(root: Path) -> dict[int, dict[str, Path]]:
    """Sequence number -> frame name -> QA file, for sequences that have any."""
    found: dict[int, dict[str, Path]] = {}
    for number, sequence_dir in find_sequence_dirs(root, holding=("vqa",)).items():
        files = sorted((sequence_dir / "vqa" / "Classification").glob("*_QA.txt"))
        if files:
            found[number] = {path.name.split("_", 1)[0]: path for path in files}
    return found


def read_actions(path: Path) -> list[str]:
    """The per-instrument actions of one QA file, in file order."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(path, "QA file is not UTF-8 text") from None
    actions = []
    for line in text.splitlines():
        if "|" not in line:
            continue
        answer = line.rsplit("|", 1)[1]
        action = _ACTION_BY_KEY.get(normalise_name(answer))
        if action is not None:
            actions.append(action)
    return actions


def frame_activity(actions: list[str]) -> str:
    busy = Counter(action for action in actions if action != IDLE)
    if not busy:
        return IDLE
    return min(busy, key=lambda action: (-busy[action], ENDOVIS18_ACTIONS.index(action)))
