"""What every command shares: consoles, the --quiet state, option helpers and checks."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TypeVar

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from mtlbench.errors import InputError

T = TypeVar("T")

# Outside a terminal (logs, CI, pipes) rich would assume 80 columns and truncate table cells.
_LOG_WIDTH = 160
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else _LOG_WIDTH)
err_console = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else _LOG_WIDTH)

QUIET_FLAGS = ("--quiet", "-q")


@dataclass
class State:
    quiet: bool = False


def state(ctx: typer.Context) -> State:
    return ctx.obj if isinstance(ctx.obj, State) else State()


class _HelpWithoutType:
    """typer's rich help lists --help as if it took a value (`--help <bool>`): give it no metavar."""

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


class Command(_HelpWithoutType, TyperCommand):
    pass


class Group(_HelpWithoutType, TyperGroup):
    pass


def new_app(**settings) -> typer.Typer:
    """A typer app (the root or a command group) whose commands use `Command` (register with `cls=Command`)."""
    return typer.Typer(cls=Group, **settings)


def flag(name: str, help: str) -> bool:
    """An on/off option; the empty metavar keeps typer from showing it as taking a value (`<bool>`)."""
    return typer.Option(False, name, help=help, metavar="")


def comma_list(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else ()


def int_list(value: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in comma_list(value))
    except ValueError:
        raise InputError(option, f"not a comma-separated list of integers: {value!r}") from None


def required(value: T | None, option: str, unless: str) -> T:
    """The value of an option that is required except in the case `unless` describes."""
    if value is None:
        raise InputError(option, f"is required ({unless})")
    return value
