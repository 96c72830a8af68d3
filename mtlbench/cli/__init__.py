"""The `mtlbench` command line.

Every command stops on bad input with one line, `error: <file or option>: <problem>`, exit
status 1 and no traceback; output paths are checked before any work starts, and folders are
committed only when complete. SIGTERM is handled like Ctrl-C: temporary outputs and worker
processes are cleaned up, and the exit status is 128 + the signal number (130, 143).
"""

from __future__ import annotations

import signal
import sys
from typing import Sequence

import typer
from rich.markup import escape

from mtlbench import __version__
from mtlbench.cli import baselines, build, datasets, demo, evaluate, leaderboard, robustness, sweep
from mtlbench.cli.common import QUIET_FLAGS, State, err_console, new_app
from mtlbench.errors import InputError

app = new_app(
    name="mtlbench",
    help="Dataset toolkit and benchmark suite for multi-task learning in endoscopic surgery.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mtlbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    quiet: bool = typer.Option(False, *QUIET_FLAGS, help="No progress bars or tables (anywhere on the line); errors still go to stderr.", metavar=""),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit.", metavar=""),
) -> None:
    ctx.obj = State(quiet=quiet)


app.add_typer(build.app, name="build-dataset")
datasets.register(app)
demo.register(app)
evaluate.register(app)
baselines.register(app)
robustness.register(app)
leaderboard.register(app)
sweep.register(app)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that the same clean-up as for Ctrl-C runs."""


_terminated = False


def _on_sigterm(signum, frame) -> None:
    global _terminated
    _terminated = True
    raise Terminated()


def quiet_first(arguments: Sequence[str]) -> list[str]:
    """Move -q/--quiet to the front, where the root command reads it: users write it after the
    sub-command too. Arguments after `--` are left alone."""
    arguments = list(arguments)
    end = arguments.index("--") if "--" in arguments else len(arguments)
    flags = [argument for argument in arguments[:end] if argument in QUIET_FLAGS]
    rest = [argument for argument in arguments[:end] if argument not in QUIET_FLAGS]
    return flags[:1] + rest + arguments[end:]


def main() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        app(args=quiet_first(sys.argv[1:]), prog_name="mtlbench")
    except InputError as error:
        err_console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
        sys.exit(1)
    except OSError as error:
        # A file system refusal the checks could not foresee (disk full, a file removed meanwhile).
        where = error.filename if error.filename is not None else "mtlbench"
        err_console.print(f"[bold red]error:[/] {escape(str(where))}: {escape(error.strerror or str(error))}", highlight=False)
        sys.exit(1)
    except SystemExit:
        # typer turns the interrupt into exit status 130 (Ctrl-C); SIGTERM gets its own.
        if _terminated:
            err_console.print("stopped by SIGTERM", highlight=False)
            sys.exit(128 + signal.SIGTERM)
        raise
