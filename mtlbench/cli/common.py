"""What every command shares: consoles, the --quiet state, option parsing helpers."""

from __future__ import annotations

from dataclasses import dataclass

import typer
from rich.console import Console

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


@dataclass
class State:
    quiet: bool = False


def state(ctx: typer.Context) -> State:
    return ctx.obj if isinstance(ctx.obj, State) else State()


def comma_list(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else ()
