"""The typed run configuration: presets, overrides, and the checks every setting gets when it is made."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from baselines.config import DataConfig, RunConfig, TrainConfig, config_from_dict, load_config, preset_names
from mtlbench.errors import InputError

DOCS = Path(__file__).resolve().parent.parent / "docs" / "baselines.md"


def setting_paths(cls: type = RunConfig, prefix: str = "") -> list[str]:
    hints = typing.get_type_hints(cls)
    paths = []
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            paths += setting_paths(kind, f"{prefix}{field.name}.")
        elif field.name not in ("preset", "description"):
            paths.append(prefix + field.name)
    return paths


def test_every_setting_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    assert [path for path in setting_paths() if f"| `{path}` |" not in text] == []


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads_and_round_trips_through_its_saved_form(name):
    config = load_config(name)
    assert config_from_dict(config.to_dict(), "config.json") == config


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epochs=abc", 'train.epochs: expected an integer, got "abc"'),
        ("train.epochs=2.5", "train.epochs: expected an integer, got 2.5"),
        ("train.epochs=true", "train.epochs: expected an integer, got true"),
        ("optim.lr=abc", 'optim.lr: expected a number, got "abc"'),
        ("optim.lr=0", "optim.lr: must be above 0, got 0.0"),
        ("optim.lr=NaN", 'optim.lr: expected a number, got "NaN"'),
        ("model.dropout=1", "model.dropout: must be below 1, got 1.0"),
        ("data.input_size=[224]", "data.input_size: expected a list of 2 values, got [224]"),
        ("data.input_size=[224,0]", "data.input_size: must be at least 1, got [224, 0]"),
        ("data.crop_scale=[0.9,0.5]", "data.crop_scale: the smaller scale comes first, got [0.9, 0.5]"),
        ("data.augment=yes", 'data.augment: expected true or false, got "yes"'),
        ('model.aspp_rates=[1,"two"]', 'model.aspp_rates[1]: expected an integer, got "two"'),
        ("model.encoder.name=vit", 'model.encoder.name: "vit" is not one of: "dinov2", "endovit", "resnet50"'),
        ("optim.scheduler=linear", 'optim.scheduler: "linear" is not one of: "cosine", "none", "step"'),
        ('tasks=["activity","activity"]', "tasks: expected distinct task names, got ['activity', 'activity']"),
        ("task_types=[]", "task_types: name at least one task type"),
        ('task_types=["segmentation"]', 'task_types: "segmentation" is not one of: "multilabel", "classification", "text"'),
        ("model.fusion.image=false", "model.fusion.cross_attention: cross-attention fuses text with image tokens"),
        ("model=3", "model: expected an object of settings, got 3"),
        ("train.learning_rate=1", "train: unknown setting(s) learning_rate"),
        ("epochs", "--set epochs: an override must look like section.key=value"),
    ],
)
def test_bad_overrides_are_one_line_errors_naming_the_setting(override, message):
    with pytest.raises(InputError) as caught:
        load_config("endoarss-tiny", [override])
    assert str(caught.value).startswith(message), str(caught.value)


def test_values_are_normalised_when_made():
    config = load_config("endoarss-tiny", ["data.input_size=[56,84]", "optim.lr=1", "model.encoder.name=resnet50"])
    assert config.data.input_size == (56, 84) and config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert config.model.encoder.name == "resnet50"  # a bare word is a string


def test_sections_check_themselves_however_they_are_made():
    with pytest.raises(InputError, match="train.epochs: must be at least 1, got 0"):
        TrainConfig(epochs=0)
    with pytest.raises(InputError, match="data.batch_size: must be at least 1, got 0"):
        dataclasses.replace(DataConfig(), batch_size=0)


def test_a_saved_configuration_is_checked_like_a_new_one():
    saved = load_config("endoarss-tiny").to_dict()
    saved["train"]["epochs"] = "many"
    with pytest.raises(InputError) as caught:
        config_from_dict(saved, "runs/x/config.json")
    assert str(caught.value) == 'runs/x/config.json: train.epochs: expected an integer, got "many"'


def test_every_architecture_and_weighting_method_has_a_documented_row():
    from baselines.models.registries import ARCHITECTURES
    from baselines.weighting.registry import WEIGHTINGS

    text = DOCS.read_text(encoding="utf-8")
    assert [name for name in ARCHITECTURES.names() if f"| `{name}` |" not in text] == []
    assert [name for name in WEIGHTINGS.names() if f"| `{name}` |" not in text] == []
