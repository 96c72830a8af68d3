"""`mtlbench build-dataset BUILDER ...`: one sub-command per registered builder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mtlbench.builders import BUILDERS
from mtlbench.builders.options import BuildOptions
from mtlbench.cli.common import Command, comma_list, console, err_console, flag, int_list, new_app, state
from mtlbench.cli.datasets import print_build_report
from mtlbench.errors import InputError
from mtlbench.outputs import check_output_folder
from mtlbench.progress import rich_progress

app = new_app(help="Build a dataset folder from raw sources.", no_args_is_help=True)

OUT = typer.Option(..., "--out", help="Dataset folder to create.")
OVERWRITE = flag("--overwrite", "Replace an existing non-empty output folder.")
WORKERS = typer.Option(1, "--workers", min=1, help="Worker processes decoding and encoding frames.")
EXPORT = typer.Option(None, "--export", help="Comma-separated exports to add: endoarss, coco, hf.")
SPLIT_FILE = typer.Option(None, "--split-file", help='JSON {"train": [...], "val": [...], "test": [...]} of sequences.')
ALLOW_EMPTY_SPLITS = flag("--allow-empty-splits", "Build even if train, val or test gets no samples (refused otherwise).")


def _run(ctx: typer.Context, builder: str, out: Path, overwrite: bool, workers: int, export: str | None,
         allow_empty_splits: bool = False, **arguments) -> None:
    """Check the options and the output folder, then build; nothing is written before both pass."""
    quiet = state(ctx).quiet
    check_output_folder(out, "--out", overwrite)
    with rich_progress(err_console, quiet) as progress:
        options = BuildOptions(overwrite, workers, comma_list(export), allow_empty_splits, progress)
        BUILDERS.get(builder)(out=out, options=options, **arguments)
    if not quiet:
        print_build_report(out, console)


@app.command("mtlendovis", cls=Command)
def mtlendovis(
    ctx: typer.Context,
    source: Path = typer.Option(..., "--source", help="EndoVis 2018 training release root (seq_* here or one level down)."),
    vqa: Optional[Path] = typer.Option(None, "--vqa", help="EndoVis-18-VQA root (seq_*/vqa/Classification); default: --source."),
    out: Path = OUT,
    split_file: Optional[Path] = SPLIT_FILE,
    skip_unlabelled: bool = flag("--skip-unlabelled", "Skip (and count) frames whose QA file is empty or unreadable, instead of stopping."),
    classes: str = typer.Option(
        "endovis18", "--classes",
        help="Class scheme: endovis18 (the 12 EndoVis 2018 classes) or release (10: shaft, clasper and wrist merged "
        "into instrument, the most the EndoARSS release's loader accepts; needed for --export endoarss).",
    ),
    allow_empty_splits: bool = ALLOW_EMPTY_SPLITS,
    overwrite: bool = OVERWRITE,
    workers: int = WORKERS,
    export: Optional[str] = EXPORT,
) -> None:
    """MTLEndovis: EndoVis 2018 scene segmentation with EndoVis-18-VQA frame activities."""
    _run(ctx, "mtlendovis", out, overwrite, workers, export, allow_empty_splits,
         source=source, vqa=vqa, split_file=split_file, skip_unlabelled=skip_unlabelled, classes=classes)


@app.command("mtlesd", cls=Command)
def mtlesd(
    ctx: typer.Context,
    coco: Optional[Path] = typer.Option(None, "--coco", help="COCO instance annotations (JSON) of ESD frames. Required with --images and --activities, unless --release."),
    images: Optional[Path] = typer.Option(None, "--images", help="Folder the COCO file_name entries are relative to."),
    activities: Optional[Path] = typer.Option(None, "--activities", help="CSV: video,start_frame,end_frame,activity or file_name,activity."),
    release: Optional[Path] = typer.Option(None, "--release", help="The EndoARSS authors' MTLESD folder ({train,test}/<activity>/{image,mask}), instead of --coco."),
    class_names: Optional[str] = typer.Option(None, "--class-names", help="With --release: comma-separated class names by mask value."),
    activity_names: Optional[str] = typer.Option(None, "--activity-names", help="With --release: comma-separated activity names by folder number - 1."),
    out: Path = OUT,
    split_file: Optional[Path] = SPLIT_FILE,
    seed: int = typer.Option(0, "--seed", help="Seed of the default video split and of the carved validation split."),
    allow_empty_splits: bool = ALLOW_EMPTY_SPLITS,
    overwrite: bool = OVERWRITE,
    workers: int = WORKERS,
    export: Optional[str] = EXPORT,
) -> None:
    """MTLESD: endoscopic submucosal dissection, from a COCO export or from the authors' release."""
    common = dict(seed=seed, allow_empty_splits=allow_empty_splits)
    if release is not None:
        if coco or images or activities or split_file:
            raise InputError(release, "--release cannot be combined with --coco, --images, --activities or --split-file")
        names = dict(class_names=comma_list(class_names) or None, activity_names=comma_list(activity_names) or None)
        _run(ctx, "mtlesd-release", out, overwrite, workers, export, release=release, **names, **common)
        return
    if not (coco and images and activities):
        raise InputError("mtlesd", "give either --release DIR, or all of --coco FILE --images DIR --activities FILE")
    if class_names or activity_names:
        raise InputError("mtlesd", "--class-names and --activity-names apply to --release only (COCO input is matched by name)")
    _run(ctx, "mtlesd-coco", out, overwrite, workers, export, coco=coco, images=images, activities=activities,
         split_file=split_file, **common)


@app.command("endoarss-release", cls=Command)
def endoarss_release(
    ctx: typer.Context,
    release: Path = typer.Option(..., "--release", help="A folder in the EndoARSS authors' layout (e.g. an mtlbench endoarss export)."),
    name: str = typer.Option(..., "--name", help="Name of the new dataset."),
    class_names: Optional[str] = typer.Option(None, "--class-names", help="Comma-separated class names by decoded mask value."),
    activity_names: Optional[str] = typer.Option(None, "--activity-names", help="Comma-separated activity names by folder number - 1."),
    out: Path = OUT,
    seed: int = typer.Option(0, "--seed", help="Seed of the carved validation split."),
    allow_empty_splits: bool = ALLOW_EMPTY_SPLITS,
    overwrite: bool = OVERWRITE,
    workers: int = WORKERS,
    export: Optional[str] = EXPORT,
) -> None:
    """Import any dataset in the EndoARSS release layout (names from its mtlbench-export.json or the options)."""
    _run(
        ctx, "endoarss-release", out, overwrite, workers, export, allow_empty_splits,
        release=release, name=name, class_names=comma_list(class_names) or None,
        activity_names=comma_list(activity_names) or None, seed=seed,
    )


@app.command("mtlendovis-gen", cls=Command)
def mtlendovis_gen(
    ctx: typer.Context,
    base: Path = typer.Option(..., "--base", help="A built dataset (MTLEndovis, MTLESD, ...) whose test split is corrupted."),
    out: Path = OUT,
    corruptions: Optional[str] = typer.Option(None, "--corruptions", help="Comma-separated corruptions (default: the 13 of MTLEndovis-Gen)."),
    severities: str = typer.Option("1,2,3,4,5", "--severities", help="Comma-separated severities."),
    seed: int = typer.Option(0, "--seed", help="Global seed; each output's seed derives from it, the sample, corruption and severity."),
    release_compat: bool = flag("--release-compat", "The release's protocol: corrupt at 256x256 and resize back."),
    include_clean: bool = flag("--include-clean", "Also add each frame uncorrupted (corruption 'clean'), so evaluate finds P_clean."),
    frames: Optional[int] = typer.Option(None, "--frames", min=1, help="Use only this many test frames, evenly spaced (quick runs)."),
    overwrite: bool = OVERWRITE,
    workers: int = WORKERS,
    export: Optional[str] = EXPORT,
) -> None:
    """MTLEndovis-Gen: a dataset's test frames under noise, blur, compression, spatter and bleeding."""
    from mtlbench.corruptions import DEFAULT_CORRUPTIONS

    _run(
        ctx, "mtlendovis-gen", out, overwrite, workers, export,
        base=base, corruptions=comma_list(corruptions) or DEFAULT_CORRUPTIONS, severities=int_list(severities, "--severities"),
        seed=seed, release_compat=release_compat, include_clean=include_clean, frames=frames,
    )


@app.command("ent-fess", cls=Command)
def ent_fess(
    ctx: typer.Context,
    source: Path = typer.Option(..., "--source", help="FESS export: landmarks.txt and one folder per procedure (recording, activities.csv, report.csv)."),
    out: Path = OUT,
    rate: int = typer.Option(5, "--rate", help="Frames sampled per second inside activities (a divisor of 1000)."),
    split_file: Optional[Path] = typer.Option(None, "--split-file", help='JSON {"train": [...], "val": [...], "test": [...]} of procedure folder names.'),
    seed: int = typer.Option(0, "--seed", help="Seed of the default procedure split."),
    allow_empty_splits: bool = ALLOW_EMPTY_SPLITS,
    overwrite: bool = OVERWRITE,
    workers: int = WORKERS,
    export: Optional[str] = EXPORT,
) -> None:
    """ENT FESS: landmarks, current and next anatomy descriptions and the report, per frame of sinus surgery videos."""
    _run(ctx, "ent-fess", out, overwrite, workers, export, allow_empty_splits, source=source, rate=rate, split_file=split_file, seed=seed)


@app.command("pitvqa", cls=Command)
def pitvqa(
    ctx: typer.Context,
    source: Path = typer.Option(..., "--source", help="PitVQA release folder (images/video_XX/, QA/video_XX/)."),
    out: Path = OUT,
    split_file: Optional[Path] = typer.Option(None, "--split-file", help='JSON {"train": [...], "val": [...], "test": [...]} of video numbers (1 or "01" .. 25).'),
    seed: int = typer.Option(0, "--seed", help="Seed of the validation videos carved from training."),
    allow_empty_splits: bool = ALLOW_EMPTY_SPLITS,
    overwrite: bool = OVERWRITE,
    workers: int = WORKERS,
    export: Optional[str] = EXPORT,
) -> None:
    """PitVQA: instruments, phase, step, next phase and step, and the operation note per frame of pituitary surgery."""
    _run(ctx, "pitvqa", out, overwrite, workers, export, allow_empty_splits, source=source, split_file=split_file, seed=seed)
