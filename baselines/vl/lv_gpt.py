"""The "lv-gpt" architecture: a SurgicalGPT-style reference (LV-GPT, Seenivasan et al., MICCAI 2023)
extended with a language-model head to generate text.

GPT-2 (gpt2.py) reads, as inputs_embeds, the context text's tokens, then the visual tokens (the
image encoder's features projected to GPT-2's width), each token plus a token-type embedding
taken from the word embedding table (row 0 text, row 1 vision) as in LV-GPT; text tokens have
positions 0..n-1, visual tokens all position 0. Label tasks: mean pool over those positions,
then Linear(width, 512), BatchNorm, Dropout, Linear (LV-GPT's classifier). Text tasks: the
sequence continues with a learned task prompt and the target tokens, predicted causally by the
LM head tied to the word embeddings. Without GPT-2 weights the token table is the run's word
vocabulary; with them, the folder's tokenizer.json (GPT-2's byte-level BPE).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from baselines.models.registries import ENCODERS
from baselines.vl.generation import generate
from baselines.vl.gpt2 import GPT2Model, GPT2Shape, load_gpt2
from baselines.vl.heads import LABEL_KINDS, generation_settings, text_task_names
from baselines.vl.registry import VL_ARCHITECTURES

TEXT_TYPE, VISION_TYPE = 0, 1
CONTEXT_TOKENS = 64
CLASSIFIER_WIDTH = 512


class LVGPT(nn.Module):
    def __init__(self, gpt: GPT2Model, image_encoder, tasks, vocabulary, settings, dropout: float):
        super().__init__()
        width = gpt.shape.width
        self.gpt = gpt
        self.image_encoder = image_encoder
        self.visual_projection = nn.Linear(image_encoder.out_channels, width)
        self.vocabulary = vocabulary
        self.settings = settings
        self.text_tasks = text_task_names(tasks)
        self.prompts = nn.Embedding(max(1, len(self.text_tasks)), width)
        self.heads = nn.ModuleDict({
            task.name: nn.Sequential(
                nn.Linear(width, CLASSIFIER_WIDTH), nn.BatchNorm1d(CLASSIFIER_WIDTH), nn.Dropout(dropout),
                nn.Linear(CLASSIFIER_WIDTH, len(task.labels) if task.kind == "multilabel" else len(task.classes)),
            )
            for task in tasks if task.kind in LABEL_KINDS
        })

    def prefix(self, batch: dict) -> tuple[Tensor, Tensor]:
        """The embedded [context text ; visual tokens] (B, P, width) and their positions (B, P)."""
        device = self.gpt.wte.weight.device
        encoded = [self.vocabulary.encode(text, CONTEXT_TOKENS) for text in batch["context"]]
        length = max(len(ids) for ids in encoded)
        ids = torch.full((len(encoded), length), self.vocabulary.pad, dtype=torch.long, device=device)
        for row, tokens in enumerate(encoded):
            ids[row, : len(tokens)] = torch.tensor(tokens, device=device)
        type_ids = torch.tensor([TEXT_TYPE, VISION_TYPE], device=device)
        text_type, vision_type = self.gpt.wte(type_ids)
        text = self.gpt.wte(ids) + text_type
        features = self.image_encoder(batch["image"].to(device))
        visual = self.visual_projection(features.flatten(2).transpose(1, 2)) + vision_type
        positions = torch.cat([
            torch.arange(length, device=device).expand(len(ids), -1),
            torch.zeros(visual.shape[:2], dtype=torch.long, device=device),
        ], dim=1)
        return torch.cat([text, visual], dim=1), positions

    def _text_logits(self, prefix: Tensor, positions: Tensor, index: int, tokens: Tensor) -> Tensor:
        """Logits of the words after each of `tokens` (which start with BOS), continuing the prefix."""
        start = int(positions.max()) + 1
        prompt = self.prompts.weight[index].expand(len(prefix), 1, -1)
        embedded = torch.cat([prefix, prompt, self.gpt.wte(tokens)], dim=1)
        suffix = torch.arange(start, start + 1 + tokens.shape[1], device=prefix.device).expand(len(prefix), -1)
        hidden = self.gpt(embedded, torch.cat([positions, suffix], dim=1))
        return hidden[:, -tokens.shape[1]:] @ self.gpt.wte.weight.t()

    def _labels(self, prefix: Tensor, positions: Tensor) -> dict[str, Tensor]:
        if not self.heads:
            return {}
        pooled = self.gpt(prefix, positions).mean(dim=1)
        return {name: head(pooled) for name, head in self.heads.items()}

    def forward(self, batch: dict) -> dict[str, Tensor]:
        prefix, positions = self.prefix(batch)
        outputs = self._labels(prefix, positions)
        for index, name in enumerate(self.text_tasks):
            outputs[name] = self._text_logits(prefix, positions, index, batch[name]["inputs"].to(prefix.device))
        return outputs

    @torch.no_grad()
    def predict(self, batch: dict) -> dict[str, object]:
        prefix, positions = self.prefix(batch)
        outputs: dict[str, object] = self._labels(prefix, positions)
        for index, name in enumerate(self.text_tasks):
            def step(tokens, state, index=index):
                step_prefix, step_positions = state
                return self._text_logits(step_prefix, step_positions, index, tokens)[:, -1].log_softmax(dim=-1), state

            ids = generate(step, (prefix, positions), len(prefix), self.vocabulary.bos, self.vocabulary.eos, self.settings)
            outputs[name] = [self.vocabulary.decode(row) for row in ids]
        return outputs

    def shared_parameters(self) -> list[nn.Parameter]:
        shared = (self.gpt, self.image_encoder, self.visual_projection)
        return [p for module in shared for p in module.parameters() if p.requires_grad]


@VL_ARCHITECTURES.register("lv-gpt")
def build_lv_gpt(config, tasks, vocabulary, input_size) -> LVGPT:
    settings = config.model.gpt2
    if settings.weights:
        gpt = load_gpt2(settings.weights, settings.heads)
        if gpt.shape.vocab_size != len(vocabulary):
            from mtlbench.errors import InputError

            raise InputError(settings.weights, f"GPT-2's vocabulary has {gpt.shape.vocab_size} tokens, its tokenizer.json {len(vocabulary)}")
    else:
        gpt = GPT2Model(GPT2Shape(vocab_size=len(vocabulary), positions=1024, width=settings.width, layers=settings.layers, heads=settings.heads))
    if settings.freeze:
        gpt.requires_grad_(False)
    image_encoder = ENCODERS.get(config.model.encoder.name, "model.encoder.name")(config.model.encoder, (), tuple(input_size))
    return LVGPT(gpt, image_encoder, tasks, vocabulary, generation_settings(config), config.model.dropout)
