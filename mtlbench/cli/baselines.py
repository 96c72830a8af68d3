"""`mtlbench run-baseline` and `mtlbench weights inspect`: the reference runners of baselines/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from mtlbench.cli.common import Command, console, err_console, flag, int_list, new_app, required, state
from mtlbench.errors import InputError
from mtlbench.progress import rich_progress

weights_app = new_app(help="Inspect pretrained weights: DINOv2, Depth Anything, EndoViT, GPT-2 files and BERT folders.", no_args_is_help=True)


def _print_catalogue() -> None:
    from baselines import catalogue

    presets = catalogue.presets()
    for group in dict.fromkeys(entry.detail for entry in presets):
        table = Table(title=f"Presets - {group}", title_justify="left")
        table.add_column("preset")
        table.add_column("description")
        for entry in presets:
            if entry.detail == group:
                table.add_row(entry.name, escape(entry.summary))
        console.print(table)
    table = Table(title="Architectures (--set model.architecture=NAME)", title_justify="left")
    for column in ("architecture", "tasks", "description"):
        table.add_column(column)
    for entry in catalogue.architectures():
        table.add_row(entry.name, escape(entry.detail.split(":")[0]), escape(entry.summary))
    console.print(table)
    table = Table(title="Weighting methods (--set weighting.name=NAME)", title_justify="left")
    for column in ("method", "balances", "description"):
        table.add_column(column)
    for entry in catalogue.weightings():
        table.add_row(entry.name, entry.detail, escape(entry.summary))
    console.print(table)


def run_baseline(
    ctx: typer.Context,
    preset: Optional[str] = typer.Argument(None, help="Preset name (see --list)."),
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="A built dataset folder. Required, except with --list."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder to create. Required, except with --resume or --list."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", help="Override a setting: section.key=value (repeatable)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Image-encoder checkpoint (local file: DINOv2, Depth Anything, EndoViT, ResNet-50); without it the image encoder is random."),
    overwrite: bool = flag("--overwrite", "Replace an existing run folder."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder from its last checkpoint."),
    ignore_fingerprint: bool = flag("--ignore-fingerprint", "With --resume: continue a checkpoint trained on another dataset."),
    stop_after_epoch: Optional[int] = typer.Option(None, "--stop-after-epoch", min=1, help="Stop after this epoch (continue later with --resume)."),
    list_presets: bool = flag("--list", "List the presets (grouped by tasks), architectures and weighting methods, and exit."),
    gen: Optional[Path] = typer.Option(None, "--gen", help="Also predict and score this robustness set (build-dataset mtlendovis-gen)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Comma-separated seeds: one run per seed into RUN_DIR/seed-N, in turn; finished seeds are skipped and started ones continued."),
) -> None:
    """Train a reference model, select it on val, predict and score the test split."""
    from baselines.config import load_config

    if list_presets:
        _print_catalogue()
        return
    from baselines.run import resumed_config, run_baseline as run

    if seeds is not None:
        _run_seeds(ctx, preset, dataset, out, overrides, weights, overwrite, resume, stop_after_epoch, gen, int_list(seeds, "--seeds"))
        return
    if resume is not None:
        if preset or overrides or weights or out or overwrite:
            raise InputError("--resume", "continues a run with its saved configuration in its folder: give no preset, --set, --weights, --out or --overwrite")
        config, out = resumed_config(resume), resume
    else:
        if ignore_fingerprint:
            raise InputError("--ignore-fingerprint", "applies to --resume only")
        if preset is None or out is None:
            raise InputError("run-baseline", "give a preset and --out RUN_DIR (or --resume RUN_DIR, or --list)")
        extra = [f"model.encoder.weights={json.dumps(str(weights))}"] if weights else []
        config = load_config(preset, list(overrides or []) + extra)
    dataset = required(dataset, "--dataset", "except with --list")
    quiet = state(ctx).quiet
    say = (lambda message: None) if quiet else (lambda message: console.print(message, highlight=False))
    with rich_progress(err_console, quiet) as progress:
        results = run(
            config, dataset, out, resume=resume is not None, overwrite=overwrite, ignore_fingerprint=ignore_fingerprint,
            stop_after_epoch=stop_after_epoch, gen=gen, progress=progress, say=say,
        )
    if results is not None and not quiet:
        from mtlbench.dataset.manifest import read_dataset
        from mtlbench.evaluation.report import print_report
        from mtlbench.evaluation.robustness_report import print_robustness

        print_report(results, read_dataset(dataset).tasks, console)
        if "gen" in results:
            print_robustness(results["gen"]["robustness"], console)
        console.print(f"run folder: {escape(str(out))} (plots in {escape(str(Path(out) / 'plots'))})", highlight=False)


def _run_seeds(ctx, preset, dataset, out, overrides, weights, overwrite, resume, stop_after_epoch, gen, seeds) -> None:
    from baselines.seeds import plan_seeds, run_seeds

    if resume is not None or stop_after_epoch is not None:
        raise InputError("--seeds", "continues started seeds by itself: give no --resume or --stop-after-epoch")
    if preset is None or out is None:
        raise InputError("run-baseline", "give a preset and --out RUN_DIR with --seeds")
    dataset = required(dataset, "--dataset", "except with --list")
    extra = [f"model.encoder.weights={json.dumps(str(weights))}"] if weights else []
    plans = plan_seeds(preset, list(overrides or []) + extra, out, seeds, overwrite)
    quiet = state(ctx).quiet
    say = (lambda message: None) if quiet else (lambda message: console.print(message, highlight=False))
    with rich_progress(err_console, quiet) as progress:
        run_seeds(plans, dataset, overwrite=overwrite, gen=gen, progress=progress, say=say)
    if not quiet:
        console.print(f"{len(plans)} seed(s) in {escape(str(out))}; add them to a board with: mtlbench leaderboard add {escape(str(out))} --board NAME", highlight=False)


@weights_app.command("inspect", cls=Command)
def inspect(
    path: Path = typer.Argument(..., help="A DINOv2, Depth Anything, EndoViT or GPT-2 weights file, or a Hugging Face BERT or GPT-2 folder."),
    prefix: str = typer.Option("", "--prefix", help="DINOv2: key prefix to strip (Depth Anything's 'pretrained.' needs none)."),
    weights_format: str = typer.Option("auto", "--format", help="auto, dinov2, depth-anything, endovit, gpt2 or bert."),
) -> None:
    """Report the detected format and architecture and any missing or unexpected keys; exit 1 unless it loads exactly."""
    from baselines.weights_formats import FORMATS, inspect as inspect_weights

    if weights_format not in FORMATS:
        raise InputError("--format", f"{weights_format!r} is not one of: {', '.join(FORMATS)}")
    report = inspect_weights(path, prefix=prefix, weights_format=weights_format)
    console.print(
        f"{escape(str(path))}: {report['format']}: {escape(report['architecture'])}, "
        f"{report['parameters']:,} parameters in {report['tensors']} tensors",
        highlight=False,
    )
    for kind in ("missing", "unexpected", "mismatched"):
        for key in report[kind][:20]:
            console.print(f"  [red]{kind}[/] {escape(str(key))}", highlight=False)
    if report["ignored"]:
        console.print(f"  ignored (not part of the model): {len(report['ignored'])} keys, e.g. {escape(report['ignored'][0])}", highlight=False)
    for name in report["refused"]:
        console.print(f"  refused (an object that is not a tensor, not built): {escape(name)}", highlight=False)
    if not report["loads_exactly"]:
        raise InputError(path, "does not load exactly (see the keys above)")
    console.print("[green]loads exactly[/]")


def register(app: typer.Typer) -> None:
    app.command("run-baseline", cls=Command)(run_baseline)
    app.add_typer(weights_app, name="weights")
