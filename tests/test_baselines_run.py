"""The reference-runner framework end to end on a tiny dataset: outputs, resumption, NaN stop, torchrun."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from baselines import endoarss_family
from baselines.augment import augment, sample_generator
from baselines.config import DataConfig, load_config
from baselines.run import run_baseline
from mtlbench.builders.mtlendovis import build_mtlendovis
from mtlbench.dataset.manifest import read_dataset
from mtlbench.errors import InputError
from mtlbench.evaluation.submission import open_submission

# A two-block ViT of width 24 on 28x28 inputs: seconds per epoch on a CPU.
TINY = [
    "model.encoder.depth=2", "model.encoder.embed_dim=24", "model.encoder.num_heads=2", "model.head_channels=16",
    "model.encoder.sma.groups=2", "model.aspp_rates=[1,2,3]", "data.input_size=[28,28]", "data.batch_size=2",
    "data.eval_batch_size=4", "train.epochs=2",
]


@pytest.fixture
def dataset(endovis_source: Path, tmp_path: Path) -> Path:
    return build_mtlendovis(endovis_source, tmp_path / "ds")


def weights_of(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_a_run_writes_every_output(dataset: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    results = run_baseline(load_config("endoarss-tiny", TINY), dataset, run_dir)
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "best.pt", "checkpoint.pt", "config.json", "metrics.jsonl", "plots", "predictions", "results.json", "run.json"
    ]
    assert sorted(p.name for p in (run_dir / "plots").iterdir()) == [
        "activity_confusion.png", "segmentation_activity_miou.png", "segmentation_class_iou.png"
    ]
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in epochs] == [1, 2]
    assert set(epochs[0]["train_loss"]) == {"activity", "segmentation"}
    assert "activity.accuracy" in epochs[0]["val"] and "segmentation.miou" in epochs[0]["val"]
    assert weights_of(run_dir / "best.pt").keys() == weights_of(run_dir / "checkpoint.pt")["model"].keys()
    run = json.loads((run_dir / "run.json").read_text())
    assert run["dataset"]["fingerprint"] == read_dataset(dataset).fingerprint
    assert run["seed"] == 42 and run["device"] == "cpu" and run["comparable"] is False and "NOT COMPARABLE" in run["warning"]
    counts = run["parameters"]  # endoarss-tiny trains its whole backbone: nothing is frozen
    assert counts["trainable"] == counts["total"] and counts["encoder_trainable"] == counts["encoder_total"] < counts["total"]
    assert epochs[0]["best"] is True  # the first epoch is the reference of the relative selection rule
    assert run["best_epoch"] == [entry["epoch"] for entry in epochs if entry["best"]][-1]
    with open_submission(run_dir / "predictions", read_dataset(dataset), "test") as submission:
        assert submission.tasks == ("activity", "segmentation") and not submission.missing
        assert submission.meta["comparable"] is False
    assert json.loads((run_dir / "results.json").read_text())["segmentation"]["miou"] == results["segmentation"]["miou"]
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["preset"] == "endoarss-tiny" and saved["data"]["input_size"] == [28, 28]


# endoarss-release at 28 px from 35 px loads: ViT width 48 (the token view needs it divisible
# by the 2 patch rows), the 7x7-patch SMA, a Depth Anything file for the backbone.
RELEASE_TINY = [
    "model.encoder.variant=vits14", "model.encoder.depth=1", "model.encoder.embed_dim=48", "model.encoder.num_heads=2",
    "model.head_channels=16", "model.aspp_rates=[1,2,3]", "data.input_size=[28,28]", "data.load_size=[35,35]",
    "data.batch_size=3", "data.eval_batch_size=4", "data.workers=0", "train.epochs=2",
]


def test_the_release_preset_runs_end_to_end(dataset: Path, tmp_path: Path):
    from test_dinov2 import official_state_dict

    weights = {f"pretrained.{key}": value for key, value in official_state_dict(depth=1, dim=48).items()}
    weights["depth_head.projects.0.weight"] = torch.zeros(4, 48, 1, 1)
    torch.save(weights, tmp_path / "depth_anything_vits14.pth")
    settings = RELEASE_TINY + [f"model.encoder.weights={tmp_path / 'depth_anything_vits14.pth'}", f"data.cache_dir={tmp_path / 'cache'}"]
    run_dir = tmp_path / "run"
    config = load_config("endoarss-release", settings)
    assert run_baseline(config, dataset, run_dir, stop_after_epoch=1) is None
    after_one_epoch = weights_of(run_dir / "checkpoint.pt")["model"]
    run_baseline(config, dataset, run_dir, resume=True)
    run = json.loads((run_dir / "run.json").read_text())
    assert run["comparable"] is True
    assert run["pretrained_weights"][0]["format"] == "depth-anything"
    assert run["pretrained_weights"][0]["ignored"] == ["depth_head.projects.0.weight"]
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert epochs[0]["selection_score"] == 0.0  # Δp of the first epoch against itself
    trained = weights_of(run_dir / "checkpoint.pt")["model"]
    assert all(torch.equal(trained[f"encoder.vit.{key}"], value) for key, value in official_state_dict(depth=1, dim=48).items())
    changed = {key for key, value in trained.items() if not torch.equal(value, after_one_epoch[key])}
    assert any(".lora_A" in key for key in changed)  # the adapters train; the release's SMA stays as initialised
    assert not any(key.startswith("encoder.input_sma.") for key in changed)
    with open_submission(run_dir / "predictions", read_dataset(dataset), "test") as submission:
        assert not submission.missing


def test_a_short_training_run_lowers_the_loss(dataset: Path, tmp_path: Path):
    # One batch of all three training frames, no augmentation, dropout or schedule: plain
    # gradient descent, so every epoch's loss (measured before its step) must fall.
    settings = TINY + [
        "data.batch_size=3", "train.epochs=10", "weighting.name=ew", "data.augment=false", "model.dropout=0.0",
        "optim.lr=0.005", "optim.scheduler=none",
    ]
    run_baseline(load_config("endoarss-tiny", settings), dataset, tmp_path / "run")
    epochs = [json.loads(line)["train_loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    for task in ("activity", "segmentation"):
        losses = [epoch[task] for epoch in epochs]
        assert all(later < earlier for earlier, later in zip(losses, losses[1:])), (task, losses)
        assert losses[-1] < 0.7 * losses[0], (task, losses)


def test_resuming_reproduces_the_uninterrupted_run(dataset: Path, tmp_path: Path):
    config = load_config("endoarss-tiny", TINY)
    run_baseline(config, dataset, tmp_path / "straight")
    assert run_baseline(config, dataset, tmp_path / "split", stop_after_epoch=1) is None
    assert not (tmp_path / "split" / "results.json").exists()
    run_baseline(config, dataset, tmp_path / "split", resume=True)
    straight, split = weights_of(tmp_path / "straight" / "checkpoint.pt"), weights_of(tmp_path / "split" / "checkpoint.pt")
    for key, tensor in straight["model"].items():
        assert torch.equal(tensor, split["model"][key]), key
    assert (tmp_path / "straight" / "metrics.jsonl").read_text().count("\n") == 2
    lines = [json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2]


def test_a_nan_loss_stops_with_a_clear_message(dataset: Path, tmp_path: Path, monkeypatch):
    real = endoarss_family.task_losses

    def poisoned(outputs, batch, device):
        losses = real(outputs, batch, device)
        losses["segmentation"] = losses["segmentation"] * float("nan")
        return losses

    monkeypatch.setattr(endoarss_family, "task_losses", poisoned)
    with pytest.raises(InputError, match="the segmentation loss is nan: training diverged") as caught:
        run_baseline(load_config("endoarss-tiny", TINY), dataset, tmp_path / "run")
    assert caught.value.where == "epoch 1 step 1"
    assert not (tmp_path / "run").exists()  # it failed before its first checkpoint: nothing to resume


def test_unknown_settings_and_presets_are_refused():
    with pytest.raises(InputError, match="unknown setting"):
        load_config("endoarss-tiny", ["optim.learning_rate=1"])
    with pytest.raises(InputError, match="unknown preset"):
        load_config("no-such-preset")
    assert load_config("endoarss-ew").weighting.name == "ew"
    assert load_config("endoarss-ew").model.encoder.adapter.kind == "dv-lora"  # inherited from endoarss


def test_augmentations_depend_only_on_seed_epoch_and_index():
    image = torch.rand(3, 40, 50)
    mask = torch.randint(0, 5, (40, 50))
    config = DataConfig(input_size=(24, 32), colour_jitter=0.3)
    first = augment(image, mask, config, sample_generator(7, 3, 11))
    again = augment(image, mask, config, sample_generator(7, 3, 11))
    other = augment(image, mask, config, sample_generator(7, 4, 11))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    assert first[0].shape == (3, 24, 32) and first[1].shape == (24, 32)
    assert set(first[1].unique().tolist()) <= set(range(5))  # nearest neighbour: no blended class ids


def test_two_processes_with_gloo_end_with_identical_weights(dataset: Path, tmp_path: Path):
    run_dir = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "mtlbench", "-q", "run-baseline", "endoarss-tiny", "--dataset", str(dataset), "--out", str(run_dir),
        *[argument for setting in TINY for argument in ("--set", setting)], "--set", "train.device=cpu",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads((run_dir / "run.json").read_text())
    digests = run["final_weights_sha256_per_rank"]
    assert run["world_size"] == 2 and len(digests) == 2 and digests[0] == digests[1]


def test_cli_lists_presets_by_group_then_architectures_and_weighting_methods():
    from baselines.catalogue import PRESET_GROUPS
    from baselines.models.registries import ARCHITECTURES
    from baselines.weighting.registry import WEIGHTINGS

    result = subprocess.run([sys.executable, "-m", "mtlbench", "run-baseline", "--list"], capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()

    def line_of(text: str) -> int:
        return next(index for index, line in enumerate(lines) if text in line)

    endoarss, vision_language = (line_of(f"Presets - {group}") for group in PRESET_GROUPS.values())
    architectures, weightings = line_of("Architectures (--set model.architecture=NAME)"), line_of("Weighting methods (--set weighting.name=NAME)")
    assert endoarss < vision_language < architectures < weightings
    for name in ("endoarss", "endoarss-release", "endoarss-tiny", "hps-resnet50", "single-task-resnet50"):
        assert endoarss < line_of(f"│ {name} ") < vision_language
    for name in ("vlm-small", "vlm-tiny", "lv-gpt", "mono-bilstm"):
        assert vision_language < line_of(f"│ {name} ") < architectures
    for name in ARCHITECTURES.names():
        assert architectures < line_of(f"│ {name} ") < weightings
        assert ARCHITECTURES.get(name).summary[:40] in lines[line_of(f"│ {name} ")]  # long lines wrap
    for name in WEIGHTINGS.names():
        assert weightings < line_of(f"│ {name} ")
        assert WEIGHTINGS.get(name).SUMMARY[:40] in lines[line_of(f"│ {name} ")]
    assert re.search(r"│ graddrop +│ representation +│", result.stdout)
    assert re.search(r"│ mgda +│ shared parameters or representation +│", result.stdout)
    assert re.search(r"│ ew +│ losses +│", result.stdout)


def test_a_run_also_scores_a_robustness_set(dataset: Path, tmp_path: Path):
    from mtlbench.builders.mtlendovis_gen import build_mtlendovis_gen

    gen = build_mtlendovis_gen(dataset, tmp_path / "gen", corruptions=("gaussian_blur", "bleeding"), severities=(1, 5))
    results = run_baseline(load_config("endoarss-tiny", TINY + ["train.epochs=1"]), dataset, tmp_path / "run", gen=gen)
    folder = tmp_path / "run" / "gen"
    assert sorted(p.name for p in folder.iterdir()) == ["predictions", "results.json", "robustness.png"]
    summary = json.loads((folder / "results.json").read_text())["robustness"]
    assert summary == results["gen"]["robustness"]
    assert summary["clean"]["segmentation.miou"] == results["segmentation"]["miou"]  # P_clean from the run's own test split
    assert summary["clean_source"] == "this run's results on the clean test split" and len(summary["table"]) == 4
    with open_submission(folder / "predictions", read_dataset(gen), "test") as submission:
        assert submission.meta["dataset_fingerprint"] == read_dataset(gen).fingerprint


def test_a_robustness_set_with_clean_copies_supplies_its_own_clean_reference(dataset: Path, tmp_path: Path):
    from mtlbench.builders.mtlendovis_gen import build_mtlendovis_gen

    gen = build_mtlendovis_gen(dataset, tmp_path / "gen", corruptions=("contrast",), severities=(3,), frames=2, include_clean=True)
    results = run_baseline(load_config("endoarss-tiny", TINY + ["train.epochs=1"]), dataset, tmp_path / "run", gen=gen)
    assert results["gen"]["robustness"]["clean_source"] == "the 'clean' frames of the robustness set"
