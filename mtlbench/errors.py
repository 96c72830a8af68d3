"""Bad input: the one exception type the CLI turns into a one-line message."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input: the message names the file (or the option or setting) and the problem on one line."""

    def __init__(self, where: str | Path, problem: str):
        self.where = str(where)
        self.problem = problem
        super().__init__(where, problem)

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"
