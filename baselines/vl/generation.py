"""Greedy and beam-search decoding for any step-wise decoder, with length limits and repetition handling.

A decoder is driven through `step(tokens, state) -> (log_probs (B, V), state)`: `tokens` are
the ids generated so far (B, t) and `state` a tuple of tensors whose first dimension is the
batch (memory, recurrent state), which beam search reorders with index_select. Repetition
handling is n-gram blocking: a token that would complete an n-gram already in the hypothesis is
given probability 0 (as `no_repeat_ngram_size` in Hugging Face generation). Beams are ranked by
their summed log-probability divided by length ** length_penalty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

StepFn = Callable[[Tensor, tuple[Tensor, ...]], tuple[Tensor, tuple[Tensor, ...]]]


@dataclass(frozen=True)
class GenerationSettings:
    max_length: int  # tokens, EOS included: at most max_length - 1 words, as in training
    beam_size: int = 1
    no_repeat_ngram: int = 0  # 0: no blocking
    length_penalty: float = 1.0
    min_length: int = 1  # words before EOS is allowed: by default a text is never empty


def _block_repeats(log_probs: Tensor, tokens: Tensor, size: int) -> None:
    """Set -inf where a token would repeat an n-gram of `tokens` (in place)."""
    if size <= 0 or tokens.shape[1] < size:
        return
    prefix_length = size - 1
    for row in range(tokens.shape[0]):
        sequence = tokens[row].tolist()
        tail = tuple(sequence[len(sequence) - prefix_length :]) if prefix_length else ()
        banned = [sequence[i + prefix_length] for i in range(len(sequence) - prefix_length) if tuple(sequence[i : i + prefix_length]) == tail]
        if banned:
            log_probs[row, banned] = float("-inf")


def _constrain(log_probs: Tensor, tokens: Tensor, settings: GenerationSettings, eos: int) -> Tensor:
    log_probs = log_probs.float().clone()
    _block_repeats(log_probs, tokens, settings.no_repeat_ngram)
    if tokens.shape[1] < settings.min_length:
        log_probs[:, eos] = float("-inf")
    return log_probs


def generate(step: StepFn, state: tuple[Tensor, ...], batch: int, bos: int, eos: int, settings: GenerationSettings) -> list[list[int]]:
    """Token ids per sample, without BOS and EOS."""
    if settings.beam_size == 1:
        return _greedy(step, state, batch, bos, eos, settings)
    return _beam(step, state, batch, bos, eos, settings)


def _greedy(step, state, batch, bos, eos, settings) -> list[list[int]]:
    device = state[0].device
    tokens = torch.full((batch, 1), bos, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    for _ in range(settings.max_length - 1):
        log_probs, state = step(tokens, state)
        chosen = _constrain(log_probs, tokens[:, 1:], settings, eos).argmax(dim=-1)
        chosen = torch.where(finished, torch.full_like(chosen, eos), chosen)
        tokens = torch.cat([tokens, chosen[:, None]], dim=1)
        finished |= chosen == eos
        if finished.all():
            break
    return [_strip(row, eos) for row in tokens[:, 1:].tolist()]


def _strip(ids: list[int], eos: int) -> list[int]:
    return ids[: ids.index(eos)] if eos in ids else ids


def _beam(step, state, batch, bos, eos, settings) -> list[list[int]]:
    width = settings.beam_size
    device = state[0].device
    expand = torch.arange(batch, device=device).repeat_interleave(width)
    state = tuple(tensor.index_select(0, expand) for tensor in state)
    tokens = torch.full((batch * width, 1), bos, dtype=torch.long, device=device)
    scores = torch.zeros(batch, width, device=device)
    scores[:, 1:] = float("-inf")  # all beams start identical: keep one
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]
    for length in range(1, settings.max_length):
        log_probs, state = step(tokens, state)
        log_probs = _constrain(log_probs, tokens[:, 1:], settings, eos)
        vocabulary = log_probs.shape[-1]
        candidates = (scores.view(-1, 1) + log_probs).view(batch, width * vocabulary)
        top_scores, top_indices = candidates.topk(2 * width, dim=-1)
        next_rows, next_tokens, next_scores = [], [], []
        for sample in range(batch):
            kept = 0
            for score, index in zip(top_scores[sample].tolist(), top_indices[sample].tolist()):
                beam, token = divmod(index, vocabulary)
                row = sample * width + beam
                if score == float("-inf"):
                    break
                if token == eos or length == settings.max_length - 1:
                    ids = tokens[row, 1:].tolist() + ([] if token == eos else [token])
                    finished[sample].append((score / (max(1, len(ids)) ** settings.length_penalty), ids))
                    continue
                next_rows.append(row)
                next_tokens.append(token)
                next_scores.append(score)
                kept += 1
                if kept == width:
                    break
            while kept < width:  # too few live candidates: pad with dead beams
                next_rows.append(sample * width)
                next_tokens.append(eos)
                next_scores.append(float("-inf"))
                kept += 1
        if all(len(done) >= width for done in finished):
            break
        rows = torch.tensor(next_rows, device=device)
        tokens = torch.cat([tokens.index_select(0, rows), torch.tensor(next_tokens, device=device)[:, None]], dim=1)
        scores = torch.tensor(next_scores, device=device).view(batch, width)
        state = tuple(tensor.index_select(0, rows) for tensor in state)
        if torch.isinf(scores).all():
            break
    return [max(done, key=lambda pair: pair[0])[1] if done else [] for done in finished]
