"""Every architecture with every weighting method, as a user picks them on the command line
(`--set model.architecture=A --set weighting.name=W`): an allowed pair trains without NaN, a
refused one stops in one line when the configuration is made, before anything is built.

The default suite trains every method with hps (whose representation every method can use) and
every architecture with one loss method and one per-task-gradient method, on a tiny MTLEndovis;
the slow test trains the whole cross product on the demo MTLEndovis.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from baselines.config import load_config
from baselines.families import make_family
from baselines.models.registries import ARCHITECTURES
from baselines.runtime import start
from baselines.train import Trainer
from baselines.weighting.registry import WEIGHTINGS
from baselines.weighting.sources import REPRESENTATION
from mtlbench.builders.mtlendovis import build_mtlendovis
from mtlbench.dataset.manifest import read_dataset
from mtlbench.errors import InputError
from mtlbench.progress import silent
from tests.conftest import TINY_RUN, write_endovis_source

STEPS = 2
# The tiny ViT of TINY_RUN with two blocks, so that stage-wise architectures have stages to split.
PAIR_RUN = [*TINY_RUN, "model.encoder.depth=2", "train.epochs=1", f"train.max_steps_per_epoch={STEPS}", "data.batch_size=2"]


def pair_settings(architecture: str, method: str) -> list[str]:
    return [*PAIR_RUN, f"model.architecture={architecture}", f"weighting.name={method}"]


def refusal(architecture: str, method: str) -> str | None:
    """Why the configuration refuses the pair (one line), or None."""
    try:
        load_config("endoarss-tiny", pair_settings(architecture, method))
    except InputError as error:
        return str(error)
    return None


def train_a_few_steps(dataset: Path, run_dir: Path, architecture: str, method: str) -> dict:
    config = load_config("endoarss-tiny", pair_settings(architecture, method))
    card = read_dataset(dataset)
    family = make_family(config, card)
    torch.manual_seed(0)
    model = family.build_model()
    trainer = Trainer(config, card, family, model, start(config.train), run_dir)
    record = trainer.train_epoch(0, silent)  # a NaN loss raises TrainingError
    for name, parameter in list(model.named_parameters()) + list(trainer.weighting.named_parameters()):
        assert torch.isfinite(parameter).all(), f"{architecture} + {method}: {name} is not finite after {STEPS} steps"
    assert all(math.isfinite(value) for value in record["task_weights"].values()), record
    assert all(math.isfinite(value) for value in record["train_loss"].values()), record
    return record


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pairs")
    return build_mtlendovis(write_endovis_source(folder / "source"), folder / "dataset")


def needs_representation(method: str) -> bool:
    return WEIGHTINGS.get(method).gradient_source(load_config("endoarss-tiny", [f"weighting.name={method}"]).weighting) == REPRESENTATION


@pytest.mark.parametrize("method", WEIGHTINGS.names())
def test_every_weighting_method_trains_with_hps(tiny_dataset: Path, tmp_path: Path, method: str):
    assert refusal("hps", method) is None
    record = train_a_few_steps(tiny_dataset, tmp_path, "hps", method)
    assert set(record["task_weights"]) == {"activity", "segmentation"}


@pytest.mark.parametrize("architecture", ARCHITECTURES.names())
@pytest.mark.parametrize("method", ["ew", "pcgrad"])
def test_every_architecture_trains_with_a_loss_and_a_gradient_method(tiny_dataset: Path, tmp_path: Path, architecture: str, method: str):
    reason = refusal(architecture, method)
    if reason is not None:  # an architecture that cannot use this encoder says so in one line
        assert "\n" not in reason and reason.startswith("model."), reason
        pytest.skip(reason)
    train_a_few_steps(tiny_dataset, tmp_path, architecture, method)


@pytest.mark.parametrize("architecture", [name for name in ARCHITECTURES.names() if name != "hps"])
def test_representation_methods_are_refused_without_a_shared_representation(architecture: str):
    for method in WEIGHTINGS.names():
        if needs_representation(method):
            reason = refusal(architecture, method)
            assert reason is not None and "\n" not in reason
            assert f"architecture {architecture} does not have" in reason or reason.startswith("model."), reason


def test_a_representation_method_with_tesla_adapters_is_refused():
    with pytest.raises(InputError, match=r"^weighting.gradients: mgda balances the gradients of the shared representation, which architecture hps does not have \(its TESLA encoder computes features per task\)"):
        load_config("endoarss-tiny", ["model.encoder.adapter.tesla=true", "weighting.name=mgda", "weighting.gradients=representation"])


@pytest.mark.slow
def test_every_allowed_pair_trains_on_the_demo_mtlendovis(tmp_path_factory):
    from mtlbench.demo.endovis import write_endovis

    folder = tmp_path_factory.mktemp("demo-pairs")
    write_endovis(folder / "endovis2018", folder / "vqa", 0, silent)
    dataset = build_mtlendovis(folder / "endovis2018", folder / "dataset", vqa=folder / "vqa")
    trained, refused = [], []
    for architecture in ARCHITECTURES.names():
        for method in WEIGHTINGS.names():
            reason = refusal(architecture, method)
            if reason is not None:
                assert "\n" not in reason
                refused.append((architecture, method))
                continue
            train_a_few_steps(dataset, tmp_path_factory.mktemp(f"{architecture}-{method}"), architecture, method)
            trained.append((architecture, method))
    assert len(trained) >= len(WEIGHTINGS.names()) * 2


def test_a_pair_from_the_command_line_runs_and_a_refused_one_stops_in_one_line(tiny_dataset: Path, tmp_path: Path):
    def run_baseline(*pair: str, out: Path):
        settings = [argument for value in [*PAIR_RUN, *pair] for argument in ("--set", value)]
        command = [sys.executable, "-m", "mtlbench", "-q", "run-baseline", "endoarss-tiny", "--dataset", str(tiny_dataset), "--out", str(out), *settings]
        return subprocess.run(command, capture_output=True, text=True)

    refused = run_baseline("model.architecture=mtan", "weighting.name=graddrop", out=tmp_path / "refused")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines() == [
        "error: weighting.name: graddrop balances the gradients of the shared representation, which architecture mtan does not "
        "have (its heads read no single shared representation); use model.architecture=hps or weighting.gradients=parameters"
    ]
    assert not (tmp_path / "refused").exists()

    trained = run_baseline("model.architecture=mtan", "weighting.name=cagrad", out=tmp_path / "run")
    assert trained.returncode == 0, trained.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["model"]["architecture"], config["weighting"]["name"]) == ("mtan", "cagrad")
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(value) for value in history[-1]["train_loss"].values())
    assert (tmp_path / "run" / "results.json").is_file()
