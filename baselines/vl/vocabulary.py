"""Word-level vocabularies for the text decoders, built from the training split's target texts.

The decoders generate words, not WordPiece pieces: BERT-uncased tokenizers (all-MiniLM-L6-v2's
among them) strip accents, so "Nasenhaupthöhle" would come back as "nasenhaupthohle" and score
as a different word. A word vocabulary keeps umlauts, ß and case exactly as written.

Words are maximal runs of \\w characters and single other non-space characters (punctuation);
`decode` joins them with spaces, except before closing and after opening punctuation, so for
the texts of the demo sets decode(encode(text)) == text up to spacing around punctuation, which
the text metrics (mtlbench.metrics.text.tokenize) ignore.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

PAD, BOS, EOS, UNK = "[PAD]", "[BOS]", "[EOS]", "[UNK]"
SPECIALS = (PAD, BOS, EOS, UNK)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_NO_SPACE_BEFORE = frozenset(".,;:!?)]}%")
_NO_SPACE_AFTER = frozenset("([{")


def words(text: str) -> list[str]:
    return _TOKEN.findall(text)


class WordVocabulary:
    """Token ids: the four specials first, then words by descending training frequency (ties by the word)."""

    def __init__(self, tokens: Sequence[str]):
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS or len(set(tokens)) != len(tokens):
            raise ValueError("a vocabulary starts with the special tokens and has no duplicates")
        self.tokens = tuple(tokens)
        self._ids = {token: index for index, token in enumerate(self.tokens)}
        self.pad, self.bos, self.eos, self.unk = (self._ids[token] for token in SPECIALS)

    @classmethod
    def build(cls, texts: Iterable[str], max_size: int) -> WordVocabulary:
        counts = Counter(word for text in texts for word in words(text))
        ranked = sorted(counts, key=lambda word: (-counts[word], word))
        return cls((*SPECIALS, *ranked[: max(0, max_size - len(SPECIALS))]))

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, max_length: int) -> list[int]:
        """The word ids of `text`, cut to max_length - 1 words, then EOS."""
        ids = [self._ids.get(word, self.unk) for word in words(text)][: max_length - 1]
        return ids + [self.eos]

    def decode(self, ids: Iterable[int]) -> str:
        pieces: list[str] = []
        for index in ids:
            if index == self.eos:
                break
            token = self.tokens[index]
            if token in SPECIALS:
                continue
            if pieces and token not in _NO_SPACE_BEFORE and pieces[-1] not in _NO_SPACE_AFTER:
                pieces.append(" ")
            pieces.append(token)
        return "".join(pieces)

    def to_json(self) -> list[str]:
        return list(self.tokens)


class TokenizerVocabulary:
    """A pretrained model's own tokenizer (tokenizer.json, e.g. GPT-2's byte-level BPE, which keeps
    umlauts) in WordVocabulary's interface; `end_token` serves as BOS, EOS and padding, as in GPT-2."""

    def __init__(self, path, end_token: str = "<|endoftext|>"):
        from mtlbench.embeddings.sentence import load_tokenizer
        from mtlbench.errors import InputError

        self.tokenizer = load_tokenizer(Path(path), max_length=None, vocab_size=None)  # encode cuts to its max_length
        end = self.tokenizer.token_to_id(end_token)
        if end is None:
            raise InputError(path, f"has no {end_token!r} token")
        self.pad = self.bos = self.eos = self.unk = end
        self.path = str(path)

    def __len__(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, max_length: int) -> list[int]:
        return self.tokenizer.encode(text).ids[: max_length - 1] + [self.eos]

    def decode(self, ids) -> str:
        ids = list(ids)
        return self.tokenizer.decode(ids[: ids.index(self.eos)] if self.eos in ids else ids).strip()

    def to_json(self) -> dict:
        return {"tokenizer": self.path}
