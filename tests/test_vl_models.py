"""The vision-language runners' parts: word vocabulary, generation (greedy, beam, n-gram blocking,
length limits), losses against hand-computed values, model sizes against the paper's counts."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from baselines.config import load_config
from baselines.vl.generation import GenerationSettings, generate
from baselines.vl.losses import asymmetric_loss, positive_weights
from baselines.vl.vocabulary import WordVocabulary


def test_the_word_vocabulary_keeps_umlauts_sharp_s_and_case():
    vocabulary = WordVocabulary.build(["Die Stirnhöhle ist frei.", "Die Straße, (links) frei."], max_size=50)
    assert vocabulary.tokens[:4] == ("[PAD]", "[BOS]", "[EOS]", "[UNK]")
    assert vocabulary.tokens[4:7] == (".", "Die", "frei")  # by count (2 each), then by the word
    text = "Die Stirnhöhle, (links) frei."
    assert vocabulary.decode(vocabulary.encode(text, 20)) == text
    assert vocabulary.decode(vocabulary.encode("Die Kieferhöhle", 20)) == "Die"  # unknown words are dropped as [UNK]
    assert vocabulary.encode("Die Die Die", 3) == [5, 5, vocabulary.eos]  # max_length counts the end token


def test_the_vocabulary_cap_keeps_the_most_frequent_words():
    vocabulary = WordVocabulary.build(["a a a b b c"], max_size=6)
    assert vocabulary.tokens == ("[PAD]", "[BOS]", "[EOS]", "[UNK]", "a", "b")


def table_step(table: dict[tuple, list[float]], vocabulary_size: int):
    """A decoder whose next-token probabilities depend on the prefix (tuple of ids after BOS)."""

    def step(tokens, state):
        rows = []
        for row in tokens[:, 1:].tolist():
            probabilities = table.get(tuple(row), [1.0 / vocabulary_size] * vocabulary_size)
            rows.append(torch.tensor(probabilities).log())
        return torch.stack(rows), state

    return step


BOS, EOS = 0, 1


def test_greedy_and_beam_search_on_a_hand_made_tree():
    # greedy takes 2 (0.6) then must take 1 (EOS) with 0.5: total 0.30; the beam finds 3 (0.4) then EOS (0.9): 0.36
    table = {(): [0, 0, 0.6, 0.4], (2,): [0, 0.5, 0.25, 0.25], (3,): [0, 0.9, 0.05, 0.05],
             (2, 2): [0, 1, 0, 0], (2, 3): [0, 1, 0, 0], (3, 2): [0, 1, 0, 0], (3, 3): [0, 1, 0, 0]}
    state = (torch.zeros(1, 1),)
    greedy = generate(table_step(table, 4), state, 1, BOS, EOS, GenerationSettings(max_length=5))
    assert greedy == [[2]]
    beam = generate(table_step(table, 4), state, 1, BOS, EOS, GenerationSettings(max_length=5, beam_size=2, length_penalty=0.0))
    assert beam == [[3]]


def test_length_limit_and_repeated_ngrams_are_blocked():
    # the decoder always prefers token 2, then 3, then EOS. Without blocking: "2 2 2 2", cut by the
    # length limit. With bigram blocking: 2; 2 (no bigram yet); after "2 2" the bigram (2, 2) exists,
    # so 2 is banned and 3 follows; after "2 2 3" no bigram starts with 3, so 2 again.
    table = {}
    always = [0.0, 0.01, 0.7, 0.29]
    for length in range(6):
        for prefix in itertools.product([2, 3], repeat=length):
            table[prefix] = always
    state = (torch.zeros(1, 1),)
    # max_length counts the end token, as in training: at most 4 words for max_length 5
    plain = generate(table_step(table, 4), state, 1, BOS, EOS, GenerationSettings(max_length=5))
    assert plain == [[2, 2, 2, 2]]  # stopped by the length limit, no end token
    blocked = generate(table_step(table, 4), state, 1, BOS, EOS, GenerationSettings(max_length=5, no_repeat_ngram=2))
    assert blocked == [[2, 2, 3, 2]]
    beam = generate(table_step(table, 4), state, 1, BOS, EOS, GenerationSettings(max_length=5, beam_size=2))
    assert beam == [[2, 2, 2, 2]]


def test_min_length_and_batches_generate_independently():
    table = {(): [0, 0.9, 0.1, 0.0], (2,): [0, 0.9, 0.1, 0.0], (2, 2): [0, 1, 0, 0]}
    state = (torch.zeros(2, 1),)
    assert generate(table_step(table, 4), state, 2, BOS, EOS, GenerationSettings(max_length=5, min_length=0)) == [[], []]
    # by default at least one word: EOS is banned at the first step only
    assert generate(table_step(table, 4), state, 2, BOS, EOS, GenerationSettings(max_length=5)) == [[2], [2]]
    assert generate(table_step(table, 4), state, 2, BOS, EOS, GenerationSettings(max_length=5, min_length=2)) == [[2, 2], [2, 2]]


def test_asymmetric_loss_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # p = 0.5 and 0.75
    targets = torch.tensor([[1.0, 0.0]])
    # positive (gamma+ = 1): -(1 - 0.5)^1 * log 0.5; negative (gamma- = 2, clip 0.05): p_m = 0.70,
    # -(0.70)^2 * log(0.30)
    expected = -(0.5 * math.log(0.5)) - (0.70**2) * math.log(0.30)
    assert asymmetric_loss(logits, targets, 1.0, 2.0, 0.05).item() == pytest.approx(expected, rel=1e-6)
    # with gamma 0 and no clip it is the binary cross-entropy summed over labels
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="sum")
    assert asymmetric_loss(logits, targets, 0.0, 0.0, 0.0).item() == pytest.approx(bce.item(), rel=1e-6)


def test_positive_weights_are_negatives_over_positives():
    targets = torch.tensor([[1, 0, 0], [0, 0, 0], [0, 0, 0], [1, 1, 0]], dtype=torch.float32)
    assert positive_weights(targets).tolist() == [1.0, 3.0, 1.0]


def parameter_count(preset: str) -> int:
    """The preset's VLM as built for a dataset with 15 landmarks, 3 text tasks and a full
    8000-word decoder vocabulary (what a 130,000-frame set fills), on the meta device."""
    from baselines.vl.vlm import build_vlm
    from baselines.vl.vocabulary import SPECIALS
    from mtlbench.tasks.multilabel import MultilabelTask
    from mtlbench.tasks.text import TextTask

    # all-MiniLM-L6-v2's shape (vocabulary 30522, hidden 384, 6 layers, 12 heads, 512 positions),
    # built without reading its weights so that everything stays on the meta device
    config = load_config(preset, ["model.text.weights=null", "model.text.heads=12"])
    tasks = (MultilabelTask("landmarks", [f"l{index}" for index in range(15)]), TextTask("current"), TextTask("next"), TextTask("report", ("keyword", "previous")))
    vocabulary = WordVocabulary((*SPECIALS, *(f"w{index}" for index in range(config.model.decoder.vocabulary - 4))))
    with torch.device("meta"):
        model = build_vlm(config, tasks, vocabulary, tuple(config.data.input_size))
    return sum(parameter.numel() for parameter in model.parameters())


@pytest.mark.parametrize("preset, paper", [("vlm-small", 61e6), ("vlm-base", 176e6)])
def test_model_sizes_are_within_5_percent_of_the_paper(preset, paper):
    count = parameter_count(preset)
    assert abs(count - paper) / paper < 0.05, f"{preset}: {count:,} parameters"


class EndIsPadding:
    """A vocabulary like GPT-2's: one token (7) is BOS, EOS and padding."""

    pad = bos = eos = 7

    def encode(self, text: str, max_length: int) -> list[int]:
        return [len(word) for word in text.split()][: max_length - 1] + [self.eos]


def test_the_end_token_is_learned_even_when_it_is_also_the_padding():
    from baselines.vl.data import IGNORE_LABEL, Collate
    from baselines.vl.losses import token_loss

    targets = Collate((), EndIsPadding(), None, 10).targets(["ab c", "abc de fgh i"])
    assert targets["inputs"].tolist() == [[7, 2, 1, 7, 7], [7, 3, 2, 3, 1]]
    assert targets["labels"].tolist() == [[2, 1, 7, IGNORE_LABEL, IGNORE_LABEL], [3, 2, 3, 1, 7]]
    # the loss is the mean over the 8 real labels, both end tokens included
    logits = torch.zeros(2, 5, 10)
    logits[0, 2, 7] = 5.0  # confident and right about the first text's end
    uniform, confident = math.log(10), -math.log(math.exp(5) / (math.exp(5) + 9))
    assert token_loss(logits, targets["labels"], IGNORE_LABEL, 0.0).item() == pytest.approx((7 * uniform + confident) / 8)


def test_lv_gpt_outputs_do_not_depend_on_the_other_contexts_of_the_batch():
    from baselines.vl.lv_gpt import build_lv_gpt
    from mtlbench.tasks.multilabel import MultilabelTask
    from mtlbench.tasks.text import TextTask

    torch.manual_seed(0)
    config = load_config("lv-gpt", ["model.gpt2.layers=2", "model.gpt2.width=32", "model.gpt2.heads=2", "model.encoder.depth=1",
                                    "model.encoder.embed_dim=24", "model.encoder.num_heads=2", "data.input_size=[28,28]"])
    tasks = (MultilabelTask("tools", ["a", "b", "c"]), TextTask("note"))
    vocabulary = WordVocabulary.build(["one two three four five six seven"], 20)
    model = build_lv_gpt(config, tasks, vocabulary, (28, 28)).eval()
    images = torch.randn(2, 3, 28, 28)
    inputs = torch.tensor([[vocabulary.bos, 5, 6], [vocabulary.bos, 7, 8]])
    alone = model({"image": images[:1], "context": ["one"], "note": {"inputs": inputs[:1]}})
    batched = model({"image": images, "context": ["one", "two three four five six"], "note": {"inputs": inputs}})
    for name in ("tools", "note"):
        torch.testing.assert_close(batched[name][:1], alone[name], atol=1e-5, rtol=1e-5)
