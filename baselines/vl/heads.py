"""What every vision-language architecture shares: label heads on a pooled representation, the
text decoder per text task, and turning generated word ids back into texts."""

from __future__ import annotations

from torch import Tensor, nn

from baselines.vl.decoder import TextDecoder
from baselines.vl.generation import GenerationSettings
from baselines.vl.vocabulary import WordVocabulary
from mtlbench.tasks.base import Task

LABEL_KINDS = ("multilabel", "classification")


def label_count(task: Task) -> int:
    """Logits of a label task: one per label (multilabel) or per class (classification)."""
    return len(task.labels) if task.kind == "multilabel" else len(task.classes)


def label_heads(tasks: tuple[Task, ...], width: int) -> nn.ModuleDict:
    """A linear head per multilabel and classification task."""
    return nn.ModuleDict({task.name: nn.Linear(width, label_count(task)) for task in tasks if task.kind in LABEL_KINDS})


def text_task_names(tasks: tuple[Task, ...]) -> tuple[str, ...]:
    return tuple(task.name for task in tasks if task.kind == "text")


def generation_settings(config) -> GenerationSettings:
    decoder = config.model.decoder
    return GenerationSettings(max_length=decoder.max_length, beam_size=decoder.beam_size,
                              no_repeat_ngram=decoder.no_repeat_ngram, length_penalty=decoder.length_penalty)


def build_decoder(config, vocabulary: WordVocabulary, memory_width: int, text_tasks: tuple[str, ...]) -> TextDecoder | None:
    if not text_tasks:
        return None
    decoder = config.model.decoder
    return TextDecoder(len(vocabulary), decoder.width, decoder.layers, decoder.heads, memory_width, len(text_tasks), decoder.max_length)


def masked_mean(tokens: Tensor, valid: Tensor) -> Tensor:
    weights = valid.to(tokens.dtype)[..., None]
    return (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
