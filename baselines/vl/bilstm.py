"""The "bilstm-seq2seq" architecture: the group's keyword-augmented BiLSTM encoder-decoder with
attention (2021/2022), which writes the next report sentence from the previous one plus a keyword.

The context text (keyword and previous sentence, baselines/vl/data.py) is embedded word by word
(the run's word vocabulary) and read by a bidirectional LSTM; an LSTM decoder, started from the
encoder's final states and a learned prompt per text task, attends to the encoder outputs at
every step (Luong's "general" score) and predicts the next word from [decoder state ; context].
It sees no image and trains text tasks only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from baselines.vl.generation import generate
from baselines.vl.heads import generation_settings, text_task_names
from baselines.vl.registry import register_vl_architecture

CONTEXT_WORDS = 64


class BiLSTMSeq2Seq(nn.Module):
    def __init__(self, vocabulary, text_tasks: tuple[str, ...], width: int, settings):
        super().__init__()
        self.vocabulary = vocabulary
        self.text_tasks = text_tasks
        self.settings = settings
        self.embed = nn.Embedding(len(vocabulary), width, padding_idx=vocabulary.pad)
        self.encoder = nn.LSTM(width, width // 2, batch_first=True, bidirectional=True)
        self.prompts = nn.Embedding(len(text_tasks), width)
        self.decoder = nn.LSTMCell(width, width)
        self.score = nn.Linear(width, width, bias=False)
        self.output = nn.Sequential(nn.Linear(2 * width, width), nn.Tanh(), nn.Linear(width, len(vocabulary)))

    def encode(self, contexts: list[str], device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        encoded = [self.vocabulary.encode(text, CONTEXT_WORDS) for text in contexts]
        length = max(len(ids) for ids in encoded)
        ids = torch.full((len(contexts), length), self.vocabulary.pad, dtype=torch.long, device=device)
        for row, words in enumerate(encoded):
            ids[row, : len(words)] = torch.tensor(words, device=device)
        valid = ids != self.vocabulary.pad
        lengths = valid.sum(dim=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(ids), lengths, batch_first=True, enforce_sorted=False)
        outputs, (hidden, cell) = self.encoder(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=length)
        # the two directions' final states side by side start the decoder
        return outputs, valid, hidden.transpose(0, 1).flatten(1), cell.transpose(0, 1).flatten(1)

    def _step(self, word: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        outputs, valid, hidden, cell, task = state
        hidden, cell = self.decoder(self.embed(word) + self.prompts(task), (hidden, cell))
        scores = torch.einsum("bd,btd->bt", self.score(hidden), outputs).masked_fill(~valid, float("-inf"))
        context = torch.einsum("bt,btd->bd", scores.softmax(dim=-1), outputs)
        return self.output(torch.cat([hidden, context], dim=-1)), (outputs, valid, hidden, cell, task)

    def _start(self, batch: dict, index: int, device) -> tuple[Tensor, ...]:
        outputs, valid, hidden, cell = self.encode(batch["context"], device)
        task = torch.full((len(outputs),), index, dtype=torch.long, device=device)
        return outputs, valid, hidden, cell, task

    def forward(self, batch: dict) -> dict[str, Tensor]:
        device = self.embed.weight.device
        results = {}
        for index, name in enumerate(self.text_tasks):
            state = self._start(batch, index, device)
            inputs = batch[name]["inputs"].to(device)
            logits = []
            for position in range(inputs.shape[1]):
                step_logits, state = self._step(inputs[:, position], state)
                logits.append(step_logits)
            results[name] = torch.stack(logits, dim=1)
        return results

    @torch.no_grad()
    def predict(self, batch: dict) -> dict[str, list[str]]:
        device = self.embed.weight.device
        texts = {}
        for index, name in enumerate(self.text_tasks):
            def step(tokens, state):
                logits, state = self._step(tokens[:, -1], state)
                return logits.log_softmax(dim=-1), state

            ids = generate(step, self._start(batch, index, device), len(batch["context"]), self.vocabulary.bos, self.vocabulary.eos, self.settings)
            texts[name] = [self.vocabulary.decode(row) for row in ids]
        return texts

    def shared_parameters(self) -> list[nn.Parameter]:
        """The context encoder, which every text task's loss reaches."""
        return [p for module in (self.embed, self.encoder) for p in module.parameters() if p.requires_grad]


@register_vl_architecture(
    "bilstm-seq2seq", "keyword-augmented BiLSTM encoder-decoder with attention: the next report sentence from the previous one"
)
def build_bilstm(config, tasks, vocabulary, input_size) -> BiLSTMSeq2Seq:
    return BiLSTMSeq2Seq(vocabulary, text_task_names(tasks), config.model.decoder.width, generation_settings(config))
