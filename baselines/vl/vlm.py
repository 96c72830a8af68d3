"""The "vlm" architecture: the ENT multi-task vision-language model (BLIP-style).

  image encoder (dinov2, resnet50, endovit)   -> image tokens, projected to the text width
  text encoder (BERT family, text_encoder.py) -> the context text, its layers cross-attending
                                                 to the image tokens (image-grounded encoding)
  memory = [fused text tokens ; image tokens]
  label heads  (multilabel, classification)   on the masked mean of the memory
  text decoder (decoder.py)                   cross-attends to the memory, one prompt per text task

The ablations (model.fusion) remove a part and nothing else: without the image embedding the
memory is the text tokens (and the heads see text only); without the text embedding it is the
image tokens (the heads see the image only); without cross-attention the text encoder does not
attend to the image, and the two token sets meet only in the decoder and the pooled heads.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from baselines.models.registries import ENCODERS
from baselines.vl.heads import build_decoder, generation_settings, label_heads, masked_mean, text_task_names
from baselines.vl.registry import register_vl_architecture
from baselines.vl.text_encoder import load_text_encoder, random_text_encoder, tokenizer_vocab_size
from baselines.vl.vocabulary import WordVocabulary
from mtlbench.errors import InputError
from mtlbench.tasks.base import Task


class VisionLanguageModel(nn.Module):
    def __init__(self, image_encoder, text_encoder, tasks: tuple[Task, ...], vocabulary: WordVocabulary, config, ignored_text_keys=()):
        super().__init__()
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        width = text_encoder.hidden_size if text_encoder is not None else config.model.decoder.width
        self.image_projection = (
            nn.Sequential(nn.Linear(image_encoder.out_channels, width), nn.LayerNorm(width)) if image_encoder is not None else None
        )
        self.heads = label_heads(tasks, width)
        self.text_tasks = text_task_names(tasks)
        self.decoder = build_decoder(config, vocabulary, width, self.text_tasks)
        self.vocabulary = vocabulary
        self.settings = generation_settings(config)
        self.cross_attention = config.model.fusion.cross_attention
        self.loading_report = {"text_encoder_ignored": list(ignored_text_keys)} if ignored_text_keys else {}

    def memory(self, batch: dict) -> tuple[Tensor, Tensor]:
        """The fused memory (B, N, width) and which of its tokens are real (B, N)."""
        parts, valid = [], []
        image_tokens = None
        if self.image_encoder is not None:
            features = self.image_encoder(batch["image"])
            image_tokens = self.image_projection(features.flatten(2).transpose(1, 2))
        if self.text_encoder is not None:
            mask = batch["context_mask"]
            parts.append(self.text_encoder(batch["context_ids"], mask, image_tokens if self.cross_attention else None))
            valid.append(mask.bool())
        if image_tokens is not None:
            parts.append(image_tokens)
            valid.append(torch.ones(image_tokens.shape[:2], dtype=torch.bool, device=image_tokens.device))
        return torch.cat(parts, dim=1), torch.cat(valid, dim=1)

    def forward(self, batch: dict) -> dict[str, Tensor]:
        memory, valid = self.memory(batch)
        pooled = masked_mean(memory, valid)
        outputs = {name: head(pooled) for name, head in self.heads.items()}
        for index, name in enumerate(self.text_tasks):
            prompt = torch.full((len(memory),), index, dtype=torch.long, device=memory.device)
            outputs[name] = self.decoder(batch[name]["inputs"], memory, valid, prompt)
        return outputs

    @torch.no_grad()
    def generate(self, batch: dict, memory_and_valid=None) -> dict[str, list[str]]:
        """Every text task's texts for the batch (greedy or beam search, model.decoder settings)."""
        memory, valid = memory_and_valid or self.memory(batch)
        texts = {}
        for index, name in enumerate(self.text_tasks):
            prompt = torch.full((len(memory),), index, dtype=torch.long, device=memory.device)
            ids = self.decoder.generate(memory, valid, prompt, self.vocabulary.bos, self.vocabulary.eos, self.settings)
            texts[name] = [self.vocabulary.decode(row) for row in ids]
        return texts

    @torch.no_grad()
    def predict(self, batch: dict) -> dict[str, object]:
        """Label logits and generated texts from one pass of the encoders."""
        memory, valid = self.memory(batch)
        pooled = masked_mean(memory, valid)
        outputs: dict[str, object] = {name: head(pooled) for name, head in self.heads.items()}
        outputs.update(self.generate(batch, (memory, valid)))
        return outputs

    def shared_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters every task's loss reaches: encoders and the image projection."""
        shared = [self.image_encoder, self.text_encoder, self.image_projection]
        return [p for module in shared if module is not None for p in module.parameters() if p.requires_grad]


@register_vl_architecture(
    "vlm", "the ENT vision-language model: image and text encoders fused by cross-attention, multi-label, description and report heads"
)
def build_vlm(config, tasks: tuple[Task, ...], vocabulary: WordVocabulary, input_size: tuple[int, int]) -> VisionLanguageModel:
    fusion, text = config.model.fusion, config.model.text
    image_encoder = ENCODERS.get(config.model.encoder.name, "model.encoder.name")(config.model.encoder, (), tuple(input_size)) if fusion.image else None
    text_encoder, ignored = None, ()
    if fusion.text:
        if text.weights is None:
            text_encoder = random_text_encoder(tokenizer_vocab_size(None), text.hidden, text.layers, text.heads, fusion.cross_attention)
        else:
            loaded = load_text_encoder(text.weights, fusion.cross_attention)
            text_encoder, ignored = loaded.encoder, loaded.ignored
        if text.max_tokens > text_encoder.config.max_position_embeddings:
            raise InputError("model.text.max_tokens", f"{text.max_tokens} exceeds the text encoder's {text_encoder.config.max_position_embeddings} positions")
        if text.freeze:
            for name, parameter in text_encoder.named_parameters():
                parameter.requires_grad_(".crossattention." in name)
    return VisionLanguageModel(image_encoder, text_encoder, tasks, vocabulary, config, ignored)
