"""Bad input: the one exception type the CLI turns into a one-line message, and the JSON reader that raises it."""

from __future__ import annotations

import json
from pathlib import Path


class InputError(Exception):
    """Bad input: the message names the file and the problem on one line."""

    def __init__(self, where: str | Path, problem: str):
        self.where = str(where)
        self.problem = problem
        super().__init__(where, problem)

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


def read_json(path: str | Path, missing: str = "file not found"):
    """Parse a JSON file; a missing, unreadable or malformed file is an InputError naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, missing) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror})") from None
