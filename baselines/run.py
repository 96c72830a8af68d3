"""One baseline run end to end: train with validation-based selection, predict the test split
once, score it with the mtlbench evaluator, and record everything needed to repeat the run.

Everything that can be checked is checked before the run folder exists: the configuration
(when it was made), the dataset and its splits, the robustness set, the output folder, the
model (weights file included) and, for --resume, the checkpoint and its dataset fingerprint. A
run that fails or is stopped before its first checkpoint leaves no folder behind; one that has
a checkpoint keeps it, to be continued with --resume.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from baselines.config import RunConfig, config_from_dict
from baselines.families import make_family
from mtlbench.checkpoints import load_tensor_file
from baselines.predictions import write_submission
from baselines.runtime import Runtime, seed_everything, start, stop, weights_digest
from baselines.train import BEST, CHECKPOINT, Trainer
from mtlbench import __version__
from mtlbench.dataset.manifest import DatasetCard, read_dataset
from mtlbench.errors import InputError
from mtlbench.evaluation.evaluate import evaluate
from mtlbench.evaluation.plot_results import write_plots
from mtlbench.evaluation.results_file import write_results
from mtlbench.evaluation.robustness_plot import robustness_plot
from mtlbench.jsonio import read_json, write_json
from mtlbench.outputs import check_output_folder, sha256_file
from mtlbench.progress import ProgressFn, silent
from mtlbench.run_record import CONFIG_FILE, SELECTION_SPLIT, config_sha256, write_run_record
from mtlbench.sources.corrupted import CLEAN

RESULTS_FILE = "results.json"
PREDICTIONS = "predictions"
PLOTS = "plots"
NOT_COMPARABLE = (
    "NOT COMPARABLE: a pretrained part (image encoder, GPT-2) was randomly initialised (no weights file); "
    "these numbers say nothing about the method's published performance"
)


def resumed_config(run_dir: Path) -> RunConfig:
    """The configuration saved in a run folder, for --resume (checked like a new one)."""
    path = Path(run_dir) / CONFIG_FILE
    return config_from_dict(read_json(path, missing="no config.json: not a run folder"), str(path))


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    encoders = [module for module in model.modules() if hasattr(module, "weights_loaded")]

    def count(parameters, trainable_only=False):
        return sum(p.numel() for p in parameters if p.requires_grad or not trainable_only)

    return {
        "total": count(model.parameters()),
        "trainable": count(model.parameters(), trainable_only=True),
        "encoder_total": sum(count(e.parameters()) for e in encoders),
        "encoder_trainable": sum(count(e.parameters(), trainable_only=True) for e in encoders),
    }


def pretrained(model: torch.nn.Module, config: RunConfig) -> list[dict] | None:
    """Every pretrainable part's weights file, its sha256 and what loading it reported (format,
    keys of the file not loaded), as an empty list for a model trained from scratch by design,
    such as the BiLSTM baseline; None when any such part was randomly initialised. A pretrainable
    part is a module with `weights_loaded` and `weights_file` (and optionally `loading_report`)."""
    parts = [module for module in model.modules() if hasattr(module, "weights_loaded")]
    if not all(part.weights_loaded for part in parts):
        return None
    reports: dict[Path, dict] = {}
    for part in parts:
        reports.setdefault(Path(part.weights_file), {}).update(getattr(part, "loading_report", {}))
    return [{"file": path.name, "sha256": sha256_file(path), **reports[path]} for path in sorted(reports)]


def _key_families(keys: list[str]) -> str:
    """'depth_head.*, decoder_embed.*': the first name parts of the keys, in order of appearance."""
    return ", ".join(dict.fromkeys(f"{key.split('.')[0]}.*" for key in keys))


def _device_name(device: torch.device) -> str:
    """What the leaderboards show as hardware: the GPU's name, or the CPU's architecture and cores."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores"


def git_commit() -> dict:
    repository = Path(__file__).resolve().parent.parent

    def git(*arguments):
        result = subprocess.run(["git", "-C", str(repository), *arguments], capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--untracked-files=no")) if commit else None}


def _check_splits(card: DatasetCard) -> None:
    for split in ("train", "val", "test"):
        if split not in card.split_names or not card.split(split):
            raise InputError(card.root, f"the {split} split is empty: a baseline run needs train, val and test samples")


def read_robustness_set(gen: Path, card: DatasetCard) -> DatasetCard:
    """A robustness set built from `card`'s test split (build-dataset mtlendovis-gen --base <card>)."""
    gen_card = read_dataset(gen)
    if "corruption" not in gen_card.samples[0].extra:
        raise InputError(gen_card.root, "--gen needs a robustness set (build-dataset mtlendovis-gen)")
    base = gen_card.meta["source"].get("base") or {}
    if base.get("fingerprint") != card.fingerprint:
        raise InputError(
            gen_card.root, f"built from {base.get('name')} with fingerprint {base.get('fingerprint')}, not from --dataset {card.fingerprint}"
        )
    return gen_card


def run_baseline(
    config: RunConfig,
    dataset: Path,
    run_dir: Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    ignore_fingerprint: bool = False,
    stop_after_epoch: int | None = None,
    gen: Path | None = None,
    progress: ProgressFn = silent,
    say=lambda message: None,
) -> dict | None:
    """Returns the evaluator's results, or None when stopped early (continue with resume=True).

    With `gen` (a robustness set built from the same dataset) the selected model also predicts
    it, and RUN_DIR/gen/results.json scores it against this run's clean test results.
    `ignore_fingerprint` resumes a checkpoint trained on another dataset."""
    started = time.perf_counter()
    runtime = start(config.train)
    try:
        seed_everything(config.train.seed)
        card = read_dataset(dataset)
        _check_splits(card)
        gen_card = read_robustness_set(gen, card) if gen is not None else None
        run_dir = Path(run_dir)
        if not resume:
            check_output_folder(run_dir, "--out", overwrite)
            if overwrite and run_dir.is_dir() and any(run_dir.iterdir()) and not (run_dir / CONFIG_FILE).is_file():
                raise InputError(run_dir, "not a run folder (no config.json): --overwrite replaces run folders only")
        family = make_family(config, card, progress)
        family.check_selection()
        config = dataclasses.replace(config, tasks=family.tasks)  # config.json records the tasks trained
        model = family.build_model()
        trainer = Trainer(config, card, family, model, runtime, run_dir)
        if resume:
            trainer.load_checkpoint(ignore_fingerprint)
        else:
            _create_folder(run_dir, config, overwrite, runtime)
        try:
            return _train_and_score(config, card, gen_card, family, model, trainer, runtime, run_dir, started, stop_after_epoch, progress, say)
        except BaseException:
            if runtime.is_main and not resume and not (run_dir / CHECKPOINT).is_file():
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
    finally:
        stop(runtime)


def _create_folder(run_dir: Path, config: RunConfig, overwrite: bool, runtime: Runtime) -> None:
    if runtime.is_main:
        if overwrite and run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / CONFIG_FILE, config.to_dict())
    runtime.barrier()


def _train_and_score(config, card, gen_card, family, model, trainer, runtime, run_dir, started, stop_after_epoch, progress, say) -> dict | None:
    counts = parameter_counts(model)
    weights = pretrained(model, config)
    if runtime.is_main:
        say(f"{config.preset}: {counts['total']:,} parameters, {counts['trainable']:,} trainable "
            f"(encoder {counts['encoder_trainable']:,} of {counts['encoder_total']:,}); device {runtime.device}, {runtime.world_size} process(es)")
        if weights is None:
            say(f"[bold red]{NOT_COMPARABLE}[/]")
        for entry in weights or ():
            if entry.get("ignored"):
                say(f"weights {entry['file']}: {len(entry['ignored'])} tensors not loaded ({_key_families(entry['ignored'])}), as designed")
    state = trainer.fit(progress, report=lambda record: say(_epoch_line(record)) if runtime.is_main else None, stop_after_epoch=stop_after_epoch)
    if state.next_epoch < config.train.epochs:
        if runtime.is_main:
            say(f"stopped after epoch {state.next_epoch}; continue with --resume {run_dir}")
        return None
    digests = runtime.gather(weights_digest(model))
    results = None
    if runtime.is_main:
        results = _finish(config, card, family, model, runtime, run_dir, state, counts, weights, started, digests)
        if gen_card is not None:
            results["gen"] = _score_gen(config, gen_card, family, model, runtime, run_dir, results, counts, weights)
        if weights is None:
            say(f"[bold red]{NOT_COMPARABLE}[/]")
    runtime.barrier()
    return results


def _epoch_line(record: dict) -> str:
    losses = ", ".join(f"{task} {value:.4f}" for task, value in record["train_loss"].items())
    validation = ", ".join(f"{key} {value:.4f}" for key, value in record["val"].items() if value is not None)
    mark = "  [green]best[/]" if record["best"] else ""
    return f"epoch {record['epoch']}: loss {losses} | val {validation}{mark}"


def _predict_and_score(config, card, family, model, runtime, folder: Path, counts, weights, **evaluation) -> dict:
    """Predict the test split of `card` into folder/predictions and score it."""
    meta = {
        "method": f"mtlbench-baseline/{config.preset}",
        "seed": config.train.seed,
        "parameters": config.to_dict(),
        "parameter_count": counts["total"],
        "trainable_parameter_count": counts["trainable"],
        "pretrained_weights": weights,
        "comparable": weights is not None,
        **({"warning": NOT_COMPARABLE} if weights is None else {}),
        **family.description(),
    }
    predictions = family.predict(model, card, "test", runtime)
    folder.mkdir(parents=True, exist_ok=True)
    submission = write_submission(predictions, card, "test", tuple(config.tasks), folder / PREDICTIONS, meta)
    results = evaluate(submission, card, "test", seed=config.train.seed, **evaluation)
    write_results(folder / RESULTS_FILE, results)
    return results


def _score_gen(config, gen_card: DatasetCard, family, model, runtime, run_dir: Path, clean_results: dict, counts, weights) -> dict:
    folder = run_dir / "gen"
    # P_clean from the set's own clean copies when it has them (the same frames, also with --frames),
    # else from this run's test results
    has_clean = any(sample.extra["corruption"] == CLEAN for sample in gen_card.samples)
    clean = {} if has_clean else {"clean": clean_results, "clean_source": "this run's results on the clean test split"}
    results = _predict_and_score(config, gen_card, family, model, runtime, folder, counts, weights, **clean)
    robustness_plot(results, folder / "robustness.png")
    return results


def _finish(config, card, family, model, runtime, run_dir, state, counts, weights, started, digests) -> dict:
    model.load_state_dict(load_tensor_file(run_dir / BEST, map_location=runtime.device))
    results = _predict_and_score(config, card, family, model, runtime, run_dir, counts, weights)
    write_plots(results, card.tasks, run_dir / PLOTS)
    record = {
        "method": f"mtlbench-baseline/{config.preset}",
        "preset": config.preset,
        "config_sha256": config_sha256(config.to_dict()),
        "command": sys.argv,
        "git": git_commit(),
        "mtlbench_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "dataset": {
            "name": card.name, "version": card.meta["version"], "fingerprint": card.fingerprint,
            "tasks": {task.name: task.kind for task in card.tasks},
        },
        "seed": config.train.seed,
        "device": str(runtime.device),
        "device_name": _device_name(runtime.device),
        "world_size": runtime.world_size,
        "final_weights_sha256_per_rank": digests,
        "wall_time_seconds": round(time.perf_counter() - started, 2),
        "training_seconds": round(sum(entry["seconds"] for entry in state.history), 2),
        "epochs": config.train.epochs,
        "best_epoch": state.best_epoch,
        "selection": config.train.selection,
        "selection_split": SELECTION_SPLIT,
        "best_validation_score": state.best_score,
        "parameters": counts,
        **family.description(),
        "pretrained_weights": weights,
        "comparable": weights is not None,
        **({"warning": NOT_COMPARABLE} if weights is None else {}),
    }
    write_run_record(run_dir, record)
    return results
