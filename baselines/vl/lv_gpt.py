"""The "lv-gpt" architecture: a SurgicalGPT-style reference (LV-GPT, Seenivasan et al., MICCAI 2023)
extended with a language-model head to generate text.

GPT-2 (gpt2.py) reads, as inputs_embeds, the context text's tokens, then the visual tokens (the
image encoder's features projected to GPT-2's width), each token plus a token-type embedding
taken from the word embedding table (row 0 text, row 1 vision) as in LV-GPT; text tokens have
positions 0..n-1, visual tokens all position 0; contexts are padded to the batch's longest and
the padding is masked out of attention and pooling, so a frame's outputs do not depend on its
batch. Label tasks: masked mean pool over those positions,
then Linear(width, 512), BatchNorm, Dropout, Linear (LV-GPT's classifier). Text tasks: the
sequence continues with a learned task prompt and the target tokens (positions from 64, after
every possible context position), predicted causally by the
LM head tied to the word embeddings. Without GPT-2 weights the token table is the run's word
vocabulary; with them, the folder's tokenizer.json (GPT-2's byte-level BPE).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from baselines.models.registries import ENCODERS
from baselines.vl.generation import generate
from baselines.vl.gpt2 import GPT2Model, GPT2Shape, load_gpt2
from baselines.vl.heads import LABEL_KINDS, generation_settings, label_count, masked_mean, text_task_names
from baselines.vl.registry import register_vl_architecture
from mtlbench.errors import InputError

TEXT_TYPE, VISION_TYPE = 0, 1
CONTEXT_TOKENS = 64  # the context's positions are 0..63; the generated text's start after them
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
                nn.Linear(CLASSIFIER_WIDTH, label_count(task)),
            )
            for task in tasks if task.kind in LABEL_KINDS
        })

    def prefix(self, batch: dict) -> tuple[Tensor, Tensor, Tensor]:
        """The embedded [context text ; visual tokens] (B, P, width), their positions (B, P) and
        which of them are real (B, P): contexts are padded to the batch's longest, and no
        position attends to or pools over the padding."""
        device = self.gpt.wte.weight.device
        encoded = [self.vocabulary.encode(text, CONTEXT_TOKENS) for text in batch["context"]]
        length = max(len(ids) for ids in encoded)
        ids = torch.full((len(encoded), length), self.vocabulary.pad, dtype=torch.long, device=device)
        text_valid = torch.zeros(len(encoded), length, dtype=torch.bool, device=device)
        for row, tokens in enumerate(encoded):
            ids[row, : len(tokens)] = torch.tensor(tokens, device=device)
            text_valid[row, : len(tokens)] = True  # by length: GPT-2's padding token is also its end token
        type_ids = torch.tensor([TEXT_TYPE, VISION_TYPE], device=device)
        text_type, vision_type = self.gpt.wte(type_ids)
        text = self.gpt.wte(ids) + text_type
        features = self.image_encoder(batch["image"].to(device))
        visual = self.visual_projection(features.flatten(2).transpose(1, 2)) + vision_type
        positions = torch.cat([
            torch.arange(length, device=device).expand(len(ids), -1),
            torch.zeros(visual.shape[:2], dtype=torch.long, device=device),
        ], dim=1)
        visual_valid = torch.ones(visual.shape[:2], dtype=torch.bool, device=device)
        return torch.cat([text, visual], dim=1), positions, torch.cat([text_valid, visual_valid], dim=1)

    def _text_logits(self, prefix: Tensor, positions: Tensor, valid: Tensor, index: int, tokens: Tensor) -> Tensor:
        """Logits of the words after each of `tokens` (which start with BOS), continuing the prefix
        (the target's own padding comes after its words, where the causal mask hides it)."""
        start = CONTEXT_TOKENS
        prompt = self.prompts.weight[index].expand(len(prefix), 1, -1)
        embedded = torch.cat([prefix, prompt, self.gpt.wte(tokens)], dim=1)
        suffix = torch.arange(start, start + 1 + tokens.shape[1], device=prefix.device).expand(len(prefix), -1)
        suffix_valid = torch.ones(suffix.shape, dtype=torch.bool, device=prefix.device)
        hidden = self.gpt(embedded, torch.cat([positions, suffix], dim=1), torch.cat([valid, suffix_valid], dim=1))
        return hidden[:, -tokens.shape[1]:] @ self.gpt.wte.weight.t()

    def _labels(self, prefix: Tensor, positions: Tensor, valid: Tensor) -> dict[str, Tensor]:
        if not self.heads:
            return {}
        pooled = masked_mean(self.gpt(prefix, positions, valid), valid)
        return {name: head(pooled) for name, head in self.heads.items()}

    def forward(self, batch: dict) -> dict[str, Tensor]:
        prefix, positions, valid = self.prefix(batch)
        outputs = self._labels(prefix, positions, valid)
        for index, name in enumerate(self.text_tasks):
            outputs[name] = self._text_logits(prefix, positions, valid, index, batch[name]["inputs"].to(prefix.device))
        return outputs

    @torch.no_grad()
    def predict(self, batch: dict) -> dict[str, object]:
        prefix, positions, valid = self.prefix(batch)
        outputs: dict[str, object] = self._labels(prefix, positions, valid)
        for index, name in enumerate(self.text_tasks):
            def step(tokens, state, index=index):
                step_prefix, step_positions, step_valid = state
                return self._text_logits(step_prefix, step_positions, step_valid, index, tokens)[:, -1].log_softmax(dim=-1), state

            ids = generate(step, (prefix, positions, valid), len(prefix), self.vocabulary.bos, self.vocabulary.eos, self.settings)
            outputs[name] = [self.vocabulary.decode(row) for row in ids]
        return outputs

    def shared_parameters(self) -> list[nn.Parameter]:
        shared = (self.gpt, self.image_encoder, self.visual_projection)
        return [p for module in shared for p in module.parameters() if p.requires_grad]


@register_vl_architecture(
    "lv-gpt", "SurgicalGPT-style reference (LV-GPT, Seenivasan et al., MICCAI 2023) with a language-model head"
)
def build_lv_gpt(config, tasks, vocabulary, input_size) -> LVGPT:
    settings = config.model.gpt2
    if settings.weights:
        gpt = load_gpt2(settings.weights, settings.heads)
        if gpt.shape.vocab_size != len(vocabulary):
            raise InputError(settings.weights, f"GPT-2's vocabulary has {gpt.shape.vocab_size} tokens, its tokenizer.json {len(vocabulary)}")
    else:
        gpt = GPT2Model(GPT2Shape(vocab_size=len(vocabulary), positions=1024, width=settings.width, layers=settings.layers, heads=settings.heads))
    needed = CONTEXT_TOKENS + 1 + config.model.decoder.max_length
    if needed > gpt.shape.positions:
        raise InputError("model.decoder.max_length", f"the context ({CONTEXT_TOKENS}), the prompt and {config.model.decoder.max_length} tokens need {needed} positions; GPT-2 has {gpt.shape.positions}")
    if settings.freeze:
        gpt.requires_grad_(False)
    image_encoder = ENCODERS.get(config.model.encoder.name, "model.encoder.name")(config.model.encoder, (), tuple(input_size))
    return LVGPT(gpt, image_encoder, tasks, vocabulary, generation_settings(config), config.model.dropout)
