"""`mtlbench evaluate`: score a submission, print the expected format, or write a dummy submission."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from mtlbench.cli.common import console, err_console, state
from mtlbench.dataset.manifest import dump_json, read_dataset
from mtlbench.errors import InputError, read_json
from mtlbench.pngio import write_bytes
from mtlbench.progress import rich_progress


def _read_baseline(path: Path) -> dict:
    data = read_json(path, missing="baseline results file not found")
    if not isinstance(data, dict) or not any(isinstance(data.get(task), dict) for task in ("activity", "segmentation")):
        raise InputError(path, "not an mtlbench results.json (no activity or segmentation section)")
    return data


def evaluate(
    ctx: typer.Context,
    predictions: Optional[Path] = typer.Argument(None, help="Predictions folder or .zip (see --format)."),
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="The dataset folder the predictions are for."),
    split: str = typer.Option("test", "--split", help="Split to score."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the results as JSON here."),
    baseline: Optional[List[Path]] = typer.Option(None, "--baseline", help="results.json of single-task runs (repeatable): adds Δm and Δp."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes decoding masks."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="Bootstrap resamples for the 95% intervals; 0 turns them off."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap, and of a random dummy."),
    plots: Optional[Path] = typer.Option(None, "--plots", help="Write PNG plots into this folder."),
    clean: Optional[Path] = typer.Option(None, "--clean", help="Robustness sets: results.json of the same model on the clean test split (P_clean)."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="Robustness sets: results.json of a reference model on the same set (CE, mCE)."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Score missing predictions as wrong instead of refusing."),
    ignore_fingerprint: bool = typer.Option(False, "--ignore-fingerprint", help="Accept a submission made for another dataset fingerprint."),
    show_format: bool = typer.Option(False, "--format", help="Print the expected submission format and exit."),
    write_dummy: Optional[Path] = typer.Option(None, "--write-dummy", help="Write a valid dummy submission to this folder and exit."),
    kind: str = typer.Option("constant", "--kind", help="Dummy kind: constant or random."),
    overwrite: bool = typer.Option(False, "--overwrite", help="With --write-dummy: replace an existing folder."),
) -> None:
    """Score predictions against a dataset split with the standard mtlbench evaluator."""
    quiet = state(ctx).quiet
    card = read_dataset(dataset) if dataset is not None else None
    if show_format:
        from mtlbench.evaluation.submission import expected_format

        typer.echo(expected_format(card, split if card else None))
        return
    if card is None:
        raise InputError("evaluate", "--dataset DIR is required")
    if write_dummy is not None:
        from mtlbench.evaluation.dummy import write_dummy_submission

        write_dummy_submission(card, split, write_dummy, kind=kind, seed=seed, overwrite=overwrite)
        if not quiet:
            console.print(f"[green]wrote[/] {kind} dummy submission for {escape(card.name)}/{split} to {escape(str(write_dummy))}", highlight=False)
        return
    if predictions is None:
        raise InputError("evaluate", "give the predictions folder or zip (or --format / --write-dummy)")
    from mtlbench.evaluation.evaluate import evaluate as run_evaluation
    from mtlbench.evaluation.report import print_report

    baselines = [_read_baseline(path) for path in baseline or []]
    robustness_inputs = {}
    if clean is not None:
        robustness_inputs.update(clean=_read_baseline(clean), clean_source=f"clean results {clean.name}")
    if reference is not None:
        reference_results = _read_baseline(reference)
        if "robustness" not in reference_results:
            raise InputError(reference, "not the results of a robustness set (no robustness section)")
        method = reference_results.get("submission", {}).get("meta", {}).get("method")
        robustness_inputs.update(reference=reference_results, reference_name=method or reference.name)
    with rich_progress(err_console, quiet) as progress:
        results = run_evaluation(
            predictions, card, split, baselines=baselines, workers=workers, bootstrap=bootstrap, seed=seed,
            allow_missing=allow_missing, ignore_fingerprint=ignore_fingerprint, progress=progress, **robustness_inputs,
        )
    if out is not None:
        write_bytes(Path(out), dump_json(results).encode("utf-8"))
    if plots is not None:
        from mtlbench.evaluation.plots import write_plots

        write_plots(results, plots)
    if not quiet:
        print_report(results, console)
        if "robustness" in results:
            from mtlbench.evaluation.robustness_report import print_robustness

            print_robustness(results["robustness"], console)
        if out is not None:
            console.print(f"results: {escape(str(out))}", highlight=False)
        if plots is not None:
            console.print(f"plots: {escape(str(plots))}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
