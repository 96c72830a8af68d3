"""The `mtlbench` command line."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from mtlbench import __version__
from mtlbench.cli import baselines, build, datasets, demo, evaluate, robustness
from mtlbench.cli.common import State, err_console
from mtlbench.errors import InputError

app = typer.Typer(
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or tables; errors still go to stderr."),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
) -> None:
    ctx.obj = State(quiet=quiet)


app.add_typer(build.app, name="build-dataset")
datasets.register(app)
demo.register(app)
evaluate.register(app)
baselines.register(app)
robustness.register(app)


def main() -> None:
    try:
        app()
    except InputError as error:
        err_console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
        sys.exit(1)
