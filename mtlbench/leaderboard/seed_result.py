"""One seed of an entry, read from what a run left behind: its run record, its test results and,
when it scored a robustness set, those results too.

Two sources give a seed: a run folder of `mtlbench run-baseline` (run.json, results.json,
plots/, gen/), and a submission from outside (the same record, docs/format-run.md, with its
predictions, docs/format-submission.md), which is scored here by the standard evaluator on the
dataset given, so that both pass through the same checks.
"""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from mtlbench.dataset.manifest import DatasetCard
from mtlbench.errors import InputError
from mtlbench.evaluation.results_file import load_results
from mtlbench.jsonio import parse_json, read_json
from mtlbench.metrics.multitask import DELTA_METRICS
from mtlbench.metrics.robustness import ROBUSTNESS_METRICS
from mtlbench.run_record import CONFIG_FILE, RUN_FILE, check_run_record, read_run_record

RESULTS_FILE = "results.json"
PLOTS = "plots"
GEN = "gen"
PREDICTIONS = "predictions"
SEED_PREFIX = "seed-"
TEST_SPLIT = "test"
MAX_RECORD_BYTES = 1 << 20

# What each seed's provenance keeps from its run record (docs/format-run.md).
PROVENANCE_FIELDS = (
    "method", "config_sha256", "git", "mtlbench_version", "torch_version", "python_version", "device", "device_name",
    "world_size", "training_seconds", "wall_time_seconds", "epochs", "best_epoch", "selection", "selection_split", "command",
)


@dataclass
class SeedResult:
    """What the board keeps of one seed, plus where its pictures are (copied when it is added)."""

    seed: int
    where: str
    record: dict
    results: dict
    gen_results: dict | None
    pictures: list[Path] = field(default_factory=list)

    @property
    def tasks(self) -> dict[str, str]:
        return self.record["dataset"]["tasks"]

    def headline_metrics(self) -> list[str]:
        return [f"{task}.{metric}" for task, kind in self.tasks.items() for metric in DELTA_METRICS.get(kind, ())]

    def metrics(self) -> dict[str, float | None]:
        return {name: (self.results.get(name.split(".")[0]) or {}).get(name.split(".", 1)[1]) for name in self.headline_metrics()}

    def intervals(self) -> dict[str, dict | None]:
        out = {}
        for name in self.headline_metrics():
            task, metric = name.split(".", 1)
            out[name] = ((self.results.get(task) or {}).get("ci") or {}).get(metric)
        return out

    def robustness(self) -> dict | None:
        if self.gen_results is None:
            return None
        summary = self.gen_results["robustness"]
        return {
            "dataset": {key: self.gen_results["dataset"][key] for key in ("name", "version", "fingerprint")},
            "table": summary["table"],
            "clean": summary["clean"],
            "mpc": {metric: summary["mpc"][metric] for metric in ROBUSTNESS_METRICS},
            "rpc": {metric: summary["rpc"][metric] for metric in ROBUSTNESS_METRICS},
        }

    def provenance(self) -> dict:
        record = self.record
        return {
            **{key: record[key] for key in PROVENANCE_FIELDS if key in record},
            "evaluator_version": self.results["evaluator"]["version"],
            "comparable": record["comparable"],
            "weights": [{"file": entry.get("file"), "sha256": entry["sha256"]} for entry in record["pretrained_weights"] or ()],
        }


def is_finished(folder: Path) -> bool:
    """A run folder whose run wrote its record and its test results (what add reads)."""
    return (Path(folder) / RUN_FILE).is_file() and (Path(folder) / RESULTS_FILE).is_file()


def seed_folders(path: Path) -> list[Path]:
    """A multi-seed run folder (seed-N inside) as its seed folders, in seed order; else [path]."""
    path = Path(path)
    if path.is_dir() and not (path / RUN_FILE).exists():
        seeds = [child for child in path.iterdir() if child.is_dir() and child.name.startswith(SEED_PREFIX)]
        if seeds:
            return sorted(seeds, key=lambda child: (len(child.name), child.name))
    return [path]


def read_run_folder(folder: Path) -> SeedResult:
    """A finished run folder of run-baseline."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not found" if not folder.exists() else "not a folder: give a run folder or a submission folder or zip")
    record = read_run_record(folder)
    if not (folder / RESULTS_FILE).is_file():
        raise InputError(folder, "no results.json: the run has not finished (continue it with run-baseline --resume)")
    results = load_results(folder / RESULTS_FILE, "test results", record["dataset"]["fingerprint"], TEST_SPLIT)
    gen_path = folder / GEN / RESULTS_FILE
    gen_results = None
    if gen_path.is_file():
        # the robustness set is its own dataset: its fingerprint is checked across seeds and against the board
        gen_results = load_results(gen_path, "robustness results", _named_fingerprint(gen_path), TEST_SPLIT, needs_robustness=True)
    pictures = sorted((folder / PLOTS).glob("*.png")) + sorted((folder / GEN).glob("*.png"))
    return SeedResult(record["seed"], str(folder), record, results, gen_results, pictures)


def _named_fingerprint(path: Path) -> str | None:
    data = read_json(path)
    return ((data.get("dataset") or {}) if isinstance(data, dict) else {}).get("fingerprint")


def is_submission(path: Path) -> bool:
    """A submission from outside: a zip, or a folder with run.json and predictions that is not a
    run folder (no config.json)."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".zip":
        return True
    return path.is_dir() and (path / RUN_FILE).is_file() and not (path / CONFIG_FILE).exists() and (path / PREDICTIONS).exists()


def read_submission(path: Path, card: DatasetCard | None, scratch: Path, *, workers: int = 1, bootstrap: int = 1000) -> SeedResult:
    """Score a submission from outside on `card`'s test split; its pictures are drawn into `scratch`.

    A folder holds run.json and predictions/ (or predictions.zip); a zip is a predictions zip of the
    submission format with run.json at its root, read by the evaluator's own zip reader (which
    skips run.json and bounds what it extracts)."""
    from mtlbench.evaluation.evaluate import evaluate
    from mtlbench.evaluation.plot_results import write_plots

    path = Path(path)
    if card is None:
        raise InputError(path, "a submission from outside is scored at add time: give --dataset DIR (the dataset it predicts)")
    if path.is_file():
        where, record, predictions = f"{path}:{RUN_FILE}", _zipped_record(path), path
    else:
        where = path / RUN_FILE
        record = read_json(where, missing="no run.json: a submission from outside carries its run record (docs/format-run.md)")
        predictions = path / PREDICTIONS if (path / PREDICTIONS).exists() else path / f"{PREDICTIONS}.zip"
    record = check_run_record(record, where)
    record = {**record, "dataset": {**record["dataset"], "tasks": {task.name: task.kind for task in card.tasks}}}
    if record["dataset"]["fingerprint"] != card.fingerprint:
        raise InputError(where, f"names dataset fingerprint {record['dataset']['fingerprint']}, not that of --dataset ({card.fingerprint})")
    results = evaluate(predictions, card, TEST_SPLIT, seed=record["seed"], workers=workers, bootstrap=bootstrap)
    plots = Path(tempfile.mkdtemp(prefix="plots-", dir=scratch))
    pictures = write_plots(results, card.tasks, plots)
    return SeedResult(record["seed"], str(path), record, results, None, sorted(pictures))


def _zipped_record(zip_path: Path) -> dict:
    """run.json at the root of a submission zip, read without extracting anything."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            try:
                info = archive.getinfo(RUN_FILE)
            except KeyError:
                raise InputError(zip_path, f"no {RUN_FILE} at the zip's root (docs/format-run.md)") from None
            if info.file_size > MAX_RECORD_BYTES:
                raise InputError(zip_path, f"{RUN_FILE} declares {info.file_size} bytes, more than a run record can need ({MAX_RECORD_BYTES})")
            text = archive.read(info).decode("utf-8")
    except (zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise InputError(zip_path, f"{RUN_FILE} cannot be read ({error})") from None
    return parse_json(text, f"{zip_path}:{RUN_FILE}")
