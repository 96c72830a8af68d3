"""Cluster bootstrap over sequences: frames of one video are not independent (docs/metrics.md).

Each resample draws S sequences with replacement; its statistics are the sums of the drawn
sequences' summable statistics (a sequence drawn twice counts twice), from which `statistic`
computes the metrics. Intervals are percentile intervals (numpy's default linear method).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# A metric undefined in more resamples than this fraction allows gets no interval.
MIN_DEFINED_FRACTION = 0.95

# Resamples per tensordot chunk keep the summed statistics below about this many numbers.
_CHUNK_ELEMENTS = 1 << 22

Statistic = Callable[[dict[str, np.ndarray]], dict[str, float | None]]


def sum_by_sequence(
    per_frame: dict[str, np.ndarray], sequences: Sequence[str]
) -> tuple[list[str], dict[str, np.ndarray]]:
    """Sorted sequence names and each statistic summed over the frames of each sequence."""
    names, index = np.unique(np.asarray(sequences, dtype=str), return_inverse=True)
    summed = {}
    for key, values in per_frame.items():
        if len(values) != len(index):
            raise ValueError(f"{key!r} has {len(values)} rows for {len(index)} frames")
        totals = np.zeros((len(names),) + values.shape[1:], dtype=values.dtype)
        np.add.at(totals, index.reshape(-1), values)
        summed[key] = totals
    return names.tolist(), summed


def multiplicities(sequences: int, resamples: int, seed: int) -> np.ndarray:
    """(R, S) how often each sequence is drawn in each resample.

    Row r counts the r-th S draws of default_rng(seed): the same draws as R successive
    rng.integers(0, S, size=S) calls.
    """
    draws = np.random.default_rng(seed).integers(0, sequences, size=(resamples, sequences))
    # one bincount over all resamples: resample r owns the bins r*S .. r*S + S - 1
    offsets = np.arange(resamples)[:, None] * sequences
    return np.bincount((draws + offsets).ravel(), minlength=resamples * sequences).reshape(resamples, sequences)


def _resample_sums(per_sequence: dict[str, np.ndarray], counts: np.ndarray):
    """Yield the summed statistics of each resample, computed chunk by chunk."""
    per_resample = sum(int(np.prod(values.shape[1:])) for values in per_sequence.values())
    chunk = max(1, _CHUNK_ELEMENTS // max(1, per_resample))
    for start in range(0, len(counts), chunk):
        block = counts[start : start + chunk]
        sums = {key: np.tensordot(block, values, axes=(1, 0)) for key, values in per_sequence.items()}
        for row in range(len(block)):
            yield {key: values[row] for key, values in sums.items()}


def _interval(values: list[float | None], tail: float) -> tuple[dict | None, str | None]:
    defined = np.array([v for v in values if v is not None], dtype=np.float64)
    if len(defined) < MIN_DEFINED_FRACTION * len(values):
        return None, f"defined in only {len(defined)} of {len(values)} resamples (needs {MIN_DEFINED_FRACTION:.0%})"
    low, high = np.percentile(defined, [tail, 100 - tail])
    return {"low": float(low), "high": float(high)}, None


def cluster_bootstrap(
    per_sequence: dict[str, np.ndarray],
    statistic: Statistic,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Percentile intervals of every metric `statistic` returns, resampling whole sequences.

    `per_sequence` maps names to arrays with a leading sequence axis (S, ...) whose sums over
    sequences are what `statistic` expects.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    lengths = {len(values) for values in per_sequence.values()}
    if len(lengths) != 1:
        raise ValueError(f"per_sequence needs arrays of one common leading length, got lengths {sorted(lengths)}")
    sequences = lengths.pop()
    metrics = list(statistic({key: values.sum(axis=0) for key, values in per_sequence.items()}))

    intervals: dict[str, dict | None] = dict.fromkeys(metrics)
    null_reasons: dict[str, str] = {}
    if sequences < 2:
        null_reasons = dict.fromkeys(metrics, "needs at least 2 sequences")
    else:
        counts = multiplicities(sequences, resamples, seed)
        resampled = [statistic(sums) for sums in _resample_sums(per_sequence, counts)]
        # rounded so that 0.95 gives exactly the 2.5 and 97.5 percentiles
        tail = round(50 * (1 - confidence), 10)
        for metric in metrics:
            intervals[metric], reason = _interval([values[metric] for values in resampled], tail)
            if reason:
                null_reasons[metric] = reason
    return {
        "intervals": intervals,
        "resamples": resamples,
        "seed": seed,
        "confidence": confidence,
        "unit": "sequence",
        "sequences": sequences,
        "null_reasons": null_reasons,
    }
