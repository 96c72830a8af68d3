"""The Transformer text decoder: causal self-attention over the words so far, cross-attention to
the fused memory, one learned prompt per text task (which sentence to write), output tied to the
word embeddings. Trained with teacher forcing; generates through baselines.vl.generation."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from baselines.vl.generation import GenerationSettings, generate


class TextDecoder(nn.Module):
    def __init__(self, vocab_size: int, width: int, layers: int, heads: int, memory_width: int, prompts: int, max_length: int, dropout: float = 0.1):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, width)
        self.positions = nn.Embedding(max_length + 1, width)  # BOS, then up to max_length words
        self.prompts = nn.Embedding(max(1, prompts), width)
        self.memory_projection = nn.Linear(memory_width, width) if memory_width != width else nn.Identity()
        layer = nn.TransformerDecoderLayer(width, heads, 4 * width, dropout, activation="gelu", batch_first=True, norm_first=True)
        self.layers = nn.TransformerDecoder(layer, layers)
        self.norm = nn.LayerNorm(width)
        nn.init.normal_(self.embed.weight, std=0.02)

    def hidden(self, tokens: Tensor, memory: Tensor, memory_valid: Tensor, prompt: Tensor) -> Tensor:
        length = tokens.shape[1]
        x = self.embed(tokens) + self.positions(torch.arange(length, device=tokens.device)) + self.prompts(prompt)[:, None]
        causal = torch.triu(torch.full((length, length), float("-inf"), device=tokens.device), diagonal=1)
        return self.norm(self.layers(x, self.memory_projection(memory), tgt_mask=causal, memory_key_padding_mask=~memory_valid))

    def forward(self, tokens: Tensor, memory: Tensor, memory_valid: Tensor, prompt: Tensor) -> Tensor:
        """tokens (B, T) starting with BOS; memory (B, N, memory_width); memory_valid (B, N) bool;
        prompt (B,) task ids -> word logits (B, T, V)."""
        return self.hidden(tokens, memory, memory_valid, prompt) @ self.embed.weight.t()

    def generate(self, memory: Tensor, memory_valid: Tensor, prompt: Tensor, bos: int, eos: int, settings: GenerationSettings) -> list[list[int]]:
        def step(tokens, state):
            step_memory, step_valid, step_prompt = state
            last = self.hidden(tokens, step_memory, step_valid, step_prompt)[:, -1]
            return (last @ self.embed.weight.t()).log_softmax(dim=-1), state

        return generate(step, (memory, memory_valid, prompt), len(memory), bos, eos, settings)
