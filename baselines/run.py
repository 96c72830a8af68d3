"""One baseline run end to end: train with validation-based selection, predict the test split
once, score it with the mtlbench evaluator, and record everything needed to repeat the run."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from baselines.config import RunConfig, config_from_dict
from baselines.data import SplitView
from baselines.inference import predict
from baselines.models import build_model
from baselines.predictions import write_submission
from baselines.runtime import Runtime, seed_everything, start, stop, weights_digest
from baselines.train import BEST, Trainer
from mtlbench import __version__
from mtlbench.atomic import check_target
from mtlbench.dataset.manifest import DatasetCard, dump_json, read_dataset
from mtlbench.errors import InputError, read_json
from mtlbench.pngio import sha256_file, write_bytes
from mtlbench.sources.corrupted import CLEAN
from mtlbench.progress import ProgressFn, silent

CONFIG_FILE = "config.json"
RUN_FILE = "run.json"
RESULTS_FILE = "results.json"
PREDICTIONS = "predictions"
NOT_COMPARABLE = (
    "NOT COMPARABLE: the backbone was randomly initialised (no --weights); "
    "these numbers say nothing about the method's published performance"
)


def resumed_config(run_dir: Path) -> RunConfig:
    """The configuration saved in a run folder, for --resume."""
    return config_from_dict(read_json(run_dir / CONFIG_FILE, missing="no config.json: not a run folder"), str(run_dir / CONFIG_FILE))


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


def pretrained(model: torch.nn.Module, config: RunConfig) -> dict | None:
    encoders = [module for module in model.modules() if hasattr(module, "weights_loaded")]
    if not encoders or not all(encoder.weights_loaded for encoder in encoders):
        return None
    path = Path(config.model.encoder.weights)
    return {"file": path.name, "sha256": sha256_file(path)}


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


def _prepare_folder(run_dir: Path, config: RunConfig, resume: bool, runtime: Runtime) -> None:
    if runtime.is_main and not resume:
        check_target(run_dir, overwrite=False)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_bytes(run_dir / CONFIG_FILE, dump_json(config.to_dict()).encode("utf-8"))
    runtime.barrier()


def run_baseline(
    config: RunConfig,
    dataset: Path,
    run_dir: Path,
    *,
    resume: bool = False,
    stop_after_epoch: int | None = None,
    gen: Path | None = None,
    progress: ProgressFn = silent,
    say=lambda message: None,
) -> dict | None:
    """Returns the evaluator's results, or None when stopped early (continue with resume=True).

    With `gen` (a robustness set built from the same dataset) the selected model also predicts
    it, and RUN_DIR/gen/results.json scores it against this run's clean test results."""
    started = time.perf_counter()
    runtime = start(config.train)
    try:
        seed_everything(config.train.seed)
        card = read_dataset(dataset)
        _check_splits(card)
        run_dir = Path(run_dir)
        _prepare_folder(run_dir, config, resume, runtime)
        model = build_model(config.model, tuple(config.tasks), len(card.classes), len(card.activities), tuple(config.data.input_size))
        counts = parameter_counts(model)
        weights = pretrained(model, config)
        if runtime.is_main:
            say(f"{config.preset}: {counts['total']:,} parameters, {counts['trainable']:,} trainable "
                f"(encoder {counts['encoder_trainable']:,} of {counts['encoder_total']:,}); device {runtime.device}, {runtime.world_size} process(es)")
            if weights is None:
                say(f"[bold red]{NOT_COMPARABLE}[/]")
        trainer = Trainer(config, card, model, runtime, run_dir)
        if resume:
            trainer.load_checkpoint()
        state = trainer.fit(progress, report=lambda record: say(_epoch_line(record)) if runtime.is_main else None, stop_after_epoch=stop_after_epoch)
        if state.next_epoch < config.train.epochs:
            if runtime.is_main:
                say(f"stopped after epoch {state.next_epoch}; continue with --resume {run_dir}")
            return None
        digests = runtime.gather(weights_digest(model))
        results = None
        if runtime.is_main:
            results = _finish(config, card, model, runtime, run_dir, state, counts, weights, started, digests)
            if gen is not None:
                results["gen"] = _score_gen(config, read_dataset(gen), model, runtime, run_dir, results, counts, weights)
            if weights is None:
                say(f"[bold red]{NOT_COMPARABLE}[/]")
        runtime.barrier()
        return results
    finally:
        stop(runtime)


def _epoch_line(record: dict) -> str:
    losses = ", ".join(f"{task} {value:.4f}" for task, value in record["train_loss"].items())
    validation = ", ".join(f"{key} {value:.4f}" for key, value in record["val"].items() if value is not None)
    mark = "  [green]best[/]" if record["best"] else ""
    return f"epoch {record['epoch']}: loss {losses} | val {validation}{mark}"


def _predict_and_score(config, card, model, runtime, folder: Path, counts, weights, **evaluation) -> dict:
    """Predict the test split of `card` into folder/predictions and score it."""
    import mtlbench

    meta = {
        "method": f"mtlbench-baseline/{config.preset}",
        "dataset_fingerprint": card.fingerprint,
        "split": "test",
        "seed": config.train.seed,
        "parameters": config.to_dict(),
        "parameter_count": counts["total"],
        "trainable_parameter_count": counts["trainable"],
        "pretrained_weights": weights,
        "comparable": weights is not None,
        **({"warning": NOT_COMPARABLE} if weights is None else {}),
    }
    view = SplitView(card, "test", config.data, train=False, seed=config.train.seed)
    predictions = write_submission(predict(model, view, config.data, runtime.device, runtime.autocast), card, folder / PREDICTIONS, meta)
    results = mtlbench.evaluate(predictions, card, "test", seed=config.train.seed, **evaluation)
    write_bytes(folder / RESULTS_FILE, dump_json(results).encode("utf-8"))
    return results


def _score_gen(config, gen_card: DatasetCard, model, runtime, run_dir: Path, clean_results: dict, counts, weights) -> dict:
    if "corruption" not in gen_card.samples[0].extra:
        raise InputError(gen_card.root, "--gen needs a robustness set (build-dataset mtlendovis-gen)")
    folder = run_dir / "gen"
    folder.mkdir(exist_ok=True)
    # P_clean from the set's own clean copies when it has them (the same frames, also with --frames),
    # else from this run's test results
    has_clean = any(sample.extra["corruption"] == CLEAN for sample in gen_card.samples)
    clean = {} if has_clean else {"clean": clean_results, "clean_source": "this run's results on the clean test split"}
    results = _predict_and_score(config, gen_card, model, runtime, folder, counts, weights, **clean)
    from mtlbench.evaluation.robustness_report import robustness_plot

    robustness_plot(results["robustness"], folder / "robustness.png")
    return results


def _finish(config, card, model, runtime, run_dir, state, counts, weights, started, digests) -> dict:
    model.load_state_dict(torch.load(run_dir / BEST, map_location=runtime.device, weights_only=True))
    results = _predict_and_score(config, card, model, runtime, run_dir, counts, weights)
    record = {
        "preset": config.preset,
        "command": sys.argv,
        "git": git_commit(),
        "mtlbench_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "dataset": {"name": card.name, "version": card.meta["version"], "fingerprint": card.fingerprint},
        "seed": config.train.seed,
        "device": str(runtime.device),
        "device_name": torch.cuda.get_device_name(runtime.device) if runtime.device.type == "cuda" else platform.processor() or "cpu",
        "world_size": runtime.world_size,
        "final_weights_sha256_per_rank": digests,
        "wall_time_seconds": round(time.perf_counter() - started, 2),
        "training_seconds": round(sum(entry["seconds"] for entry in state.history), 2),
        "epochs": config.train.epochs,
        "best_epoch": state.best_epoch,
        "selection": config.train.selection,
        "best_validation_score": state.best_score,
        "parameters": counts,
        "pretrained_weights": weights,
        "comparable": weights is not None,
        **({"warning": NOT_COMPARABLE} if weights is None else {}),
    }
    write_bytes(run_dir / RUN_FILE, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
    return results
