"""What every command shares: consoles, the --quiet state, option parsing helpers."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import typer
from rich.console import Console

# Outside a terminal (logs, CI, pipes) rich would assume 80 columns and truncate table cells.
_LOG_WIDTH = 160
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else _LOG_WIDTH)
err_console = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else _LOG_WIDTH)


@dataclass
class State:
    quiet: bool = False


def state(ctx: typer.Context) -> State:
    return ctx.obj if isinstance(ctx.obj, State) else State()


def comma_list(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else ()
