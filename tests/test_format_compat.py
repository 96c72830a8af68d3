"""Datasets written in format 1 (before task types) keep loading, and their results stay the same.

tests/data/format-v1 was written by mtlbench at commit d99c387: a tiny MTLEndovis build, a
robustness set of it, a random dummy submission for each, and the evaluator's results.json of
each. Every key and every number must come out the same, whatever the evaluator's version string
and the wording of the missing-prediction rule (now one sentence per task); keys added since
(the evaluator 1.2's foreground IoU per activity and its spread) are allowed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mtlbench
from mtlbench.dataset.manifest import read_dataset
from mtlbench.jsonio import dump_json

DATA = Path(__file__).resolve().parent / "data" / "format-v1"


def _comparable(results: dict) -> dict:
    results = json.loads(dump_json(results))
    results.pop("evaluator")
    results["definitions"].pop("missing_predictions")
    return results


def missing_or_changed(expected, actual, where: str = "results") -> list[str]:
    """Where `actual` lacks or changes a key, list item or value of `expected` (added keys are fine)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [where]
        return [found for key, value in expected.items()
                for found in ([f"{where}.{key}"] if key not in actual else missing_or_changed(value, actual[key], f"{where}.{key}"))]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [where]
        return [found for index, (a, b) in enumerate(zip(expected, actual)) for found in missing_or_changed(a, b, f"{where}[{index}]")]
    return [] if expected == actual else [f"{where}: {expected!r} -> {actual!r}"]


def test_the_comparison_finds_a_changed_value_a_missing_key_and_allows_an_added_one():
    expected = {"a": [{"x": 1}], "b": 2}
    assert missing_or_changed(expected, {"a": [{"x": 1, "new": 0}], "b": 2, "c": 3}) == []
    assert missing_or_changed(expected, {"a": [{"x": 2}], "b": 2}) == ["results.a[0].x: 1 -> 2"]
    assert missing_or_changed(expected, {"a": [{"x": 1}]}) == ["results.b"]


@pytest.mark.parametrize("dataset, submission, expected", [("mtlendovis", "submission", "results.json"), ("gen", "gen-submission", "gen-results.json")])
def test_a_format_1_dataset_evaluates_exactly_as_before(dataset: str, submission: str, expected: str):
    card = read_dataset(DATA / dataset)
    assert card.meta["format_version"] == 1
    results = mtlbench.evaluate(DATA / submission, card, "test", bootstrap=200, seed=0)
    assert missing_or_changed(_comparable(json.loads((DATA / expected).read_text(encoding="utf-8"))), _comparable(results)) == []
