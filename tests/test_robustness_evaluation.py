"""Scoring a robustness set end to end: per-condition metrics, mPC / rPC, CE against a reference."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import mtlbench
from mtlbench.builders.mtlendovis import build_mtlendovis
from mtlbench.builders.mtlendovis_gen import build_mtlendovis_gen
from mtlbench.dataset.manifest import read_dataset
from test_evaluate import write_submission


@pytest.fixture
def gen(endovis_source: Path, tmp_path: Path) -> Path:
    base = build_mtlendovis(endovis_source, tmp_path / "base")
    return build_mtlendovis_gen(base, tmp_path / "gen", corruptions=("gaussian_noise", "bleeding"), severities=(1, 5), include_clean=True)


def test_a_perfect_submission_keeps_its_clean_performance(gen: Path, tmp_path: Path):
    card = read_dataset(gen)
    results = mtlbench.evaluate(write_submission(tmp_path / "perfect", card, "test"), card, "test", bootstrap=0)
    summary = results["robustness"]
    assert summary["corruptions"] == ["bleeding", "gaussian_noise"] and summary["severities"] == [1, 5]
    assert len(summary["table"]) == 4
    assert summary["clean"] == {"activity.accuracy": 1.0, "activity.macro_f1": 1.0, "segmentation.miou": 1.0}
    assert summary["mpc"]["segmentation.miou"] == pytest.approx(1.0)
    assert summary["rpc"]["activity.accuracy"] == pytest.approx(1.0)
    assert summary["ce"] is None  # no reference model


def test_ce_against_a_reference_and_clean_from_a_results_file(gen: Path, tmp_path: Path):
    card = read_dataset(gen)
    # the reference is right on the clean frames only; the evaluated model everywhere
    reference_submission = write_submission(
        tmp_path / "reference", card, "test",
        activity_of=lambda s: s.activity if s.extra["corruption"] == "clean" else "Cutting",
    )
    out = tmp_path / "reference.json"
    command = [sys.executable, "-m", "mtlbench", "-q", "evaluate", str(reference_submission), "--dataset", str(gen), "--out", str(out), "--bootstrap", "0"]
    assert subprocess.run(command, capture_output=True, text=True).returncode == 0
    clean = tmp_path / "clean.json"
    base = card.meta["source"]["base"]
    clean.write_text(json.dumps({
        "dataset": {"name": base["name"], "fingerprint": base["fingerprint"], "split": "test"},
        "activity": {"accuracy": 0.5, "macro_f1": 0.5}, "segmentation": {"miou": 0.5},
    }))
    plots = tmp_path / "plots"
    perfect = write_submission(tmp_path / "perfect", card, "test")
    shown = subprocess.run(
        [sys.executable, "-m", "mtlbench", "evaluate", str(perfect), "--dataset", str(gen), "--out", str(tmp_path / "r.json"),
         "--bootstrap", "0", "--clean", str(clean), "--reference", str(out), "--plots", str(plots)],
        capture_output=True, text=True,
    )
    assert shown.returncode == 0, shown.stderr
    summary = json.loads((tmp_path / "r.json").read_text())["robustness"]
    assert summary["clean"]["activity.accuracy"] == 0.5 and summary["rpc"]["activity.accuracy"] == pytest.approx(2.0)
    # the evaluated model makes no error, the reference errs on every corrupted frame: CE = 0 / 2 = 0
    assert summary["ce"]["activity.accuracy"] == {"bleeding": 0.0, "gaussian_noise": 0.0}
    assert summary["mce"]["activity.accuracy"] == 0.0
    assert (plots / "robustness.png").is_file()
    assert "gaussian_noise" in shown.stdout and "mPC" in shown.stdout
