"""Datasets written in format 1 (before task types) keep loading, and their results stay the same.

tests/data/format-v1 was written by mtlbench at commit d99c387: a tiny MTLEndovis build, a
robustness set of it, a random dummy submission for each, and the evaluator's results.json of
each. Every key and every number must come out the same, whatever the evaluator's version string
and the wording of the missing-prediction rule (now one sentence per task).
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


@pytest.mark.parametrize("dataset, submission, expected", [("mtlendovis", "submission", "results.json"), ("gen", "gen-submission", "gen-results.json")])
def test_a_format_1_dataset_evaluates_exactly_as_before(dataset: str, submission: str, expected: str):
    card = read_dataset(DATA / dataset)
    assert card.meta["format_version"] == 1
    results = mtlbench.evaluate(DATA / submission, card, "test", bootstrap=200, seed=0)
    assert _comparable(results) == _comparable(json.loads((DATA / expected).read_text(encoding="utf-8")))
