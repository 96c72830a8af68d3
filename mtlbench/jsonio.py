"""JSON in and out: the one reader every input file goes through, and the one writer.

Reading is strict, because a JSON file is input that enters the program: NaN, Infinity and
numbers too large for a float are not JSON (Python's json module accepts them), and a key given
twice in one object is refused rather than silently taking the last value. A reader whose files
are known to carry NaN in fields it ignores (COCO exports of some tools write "area": NaN) may
accept non-finite numbers, and must then check every number it uses. Writing never emits
NaN or Infinity, and keeps lists of integers (colours, sequence numbers) on one line.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from mtlbench.outputs import write_bytes
from mtlbench.errors import InputError

_NUMBER_LIST = re.compile(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]")


class _NotJSON(ValueError):
    pass


def _refuse_constant(name: str):
    raise _NotJSON(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotJSON(f"number {text} is too large")
    return value


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise _NotJSON(f"key {key!r} occurs twice in one object")
        result[key] = value
    return result


def parse_json(text: str, where: str | Path, allow_non_finite: bool = False):
    """Parse JSON text strictly; anything else is an InputError naming `where`."""
    numbers = {} if allow_non_finite else {"parse_constant": _refuse_constant, "parse_float": _finite_float}
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, **numbers)
    except _NotJSON as exc:
        raise InputError(where, f"not valid JSON ({exc})") from None
    except json.JSONDecodeError as exc:
        raise InputError(where, f"not valid JSON ({exc})") from None


def read_json(path: str | Path, missing: str = "file not found", allow_non_finite: bool = False):
    """Parse a JSON file; a missing, unreadable or malformed file is an InputError naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, missing) from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, not a JSON file") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror})") from None
    return parse_json(text, path, allow_non_finite)


def dump_json(data, compact: bool = False) -> str:
    """JSON text ending in a newline: indented with integer lists on one line, or compact (large
    machine-read files). Non-finite numbers raise ValueError: they are not JSON."""
    if compact:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    return _NUMBER_LIST.sub(lambda match: "[" + ", ".join(match.group(1).replace(",", " ").split()) + "]", text) + "\n"


def dump_json_line(data) -> str:
    """One JSON Lines record: compact, on one line, with its newline."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(path: str | Path, data, compact: bool = False) -> str:
    """Write `data` as JSON (through a temporary name, then rename); returns the file's sha256."""
    return write_bytes(Path(path), dump_json(data, compact).encode("utf-8"))
