"""Progress reporting that library code can call without knowing about the terminal.

A `ProgressFn` is called as `progress(description, total)` and returns an `advance(note=None)`
callable; a note (e.g. running losses) is shown after the description. The CLI passes a rich
progress bar; library callers pass nothing and get silence.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

Advance = Callable[..., None]
ProgressFn = Callable[[str, int], Advance]


def silent(description: str, total: int) -> Advance:
    return lambda note=None: None


@contextlib.contextmanager
def rich_progress(console: Console, quiet: bool = False) -> Iterator[ProgressFn]:
    """A live progress bar on `console`; silent when quiet or when the console is not a terminal
    (a bar redrawn into a log file or a pipe is noise)."""
    if quiet or not console.is_terminal:
        yield silent
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:

        def start(description: str, total: int) -> Advance:
            task = bar.add_task(description, total=total)

            def advance(note: str | None = None) -> None:
                bar.update(task, advance=1, **({"description": f"{description} {note}"} if note else {}))

            return advance

        yield start
