"""The demo's vision-language table: a run's test results next to the constant baselines'.

Usage: python scripts/vlm_demo_table.py RUN_RESULTS.json CONSTANT_RESULTS.json

The constant baselines are `mtlbench evaluate --write-dummy --kind constant`: each landmark
predicted present when it is on most training frames (confidence = its training prevalence),
and each text task's most frequent training sentence. Prints a markdown table (landmark
macro-F1; BLEU-2 and ROUGE-L per text task) and exits 1 unless the run beats the constant
baselines on landmark macro-F1 and on mean BLEU-2 and mean ROUGE-L over the text tasks.
"""

from __future__ import annotations

import sys

from mtlbench.errors import InputError
from mtlbench.jsonio import read_json


def rows(results: dict) -> dict[str, float]:
    values = {}
    for name, section in results.items():
        if not isinstance(section, dict) or "bleu_2" not in section and "macro_f1" not in section:
            continue
        if "bleu_2" in section:
            values[f"{name} BLEU-2"] = section["bleu_2"]
            values[f"{name} ROUGE-L"] = section["rouge_l"]
        elif "samples_f1" in section:
            values[f"{name} macro-F1"] = section["macro_f1"]
    return values


def main(run_path: str, constant_path: str) -> int:
    run, constant = rows(read_json(run_path)), rows(read_json(constant_path))
    print("| metric (test split) | constant baseline | vlm-tiny |")
    print("|---|---:|---:|")
    for key in run:
        print(f"| {key} | {constant[key]:.3f} | {run[key]:.3f} |")

    def mean(values: dict, suffix: str) -> float:
        chosen = [value for key, value in values.items() if key.endswith(suffix)]
        return sum(chosen) / len(chosen)

    checks = {suffix: (mean(run, suffix), mean(constant, suffix)) for suffix in ("macro-F1", "BLEU-2", "ROUGE-L")}
    for suffix, (ours, theirs) in checks.items():
        print(f"| mean {suffix} | {theirs:.3f} | {ours:.3f} |")
    beaten = all(ours > theirs for ours, theirs in checks.values())
    print("vlm-tiny beats the constant baselines" if beaten else "vlm-tiny does NOT beat the constant baselines")
    return 0 if beaten else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    try:
        sys.exit(main(*sys.argv[1:]))
    except InputError as error:
        sys.exit(f"error: {error}")
