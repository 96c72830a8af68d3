"""Text metrics against nltk's corpus_bleu and rouge-score, and against hand-computed German cases."""

from __future__ import annotations

import math
import random
import unicodedata
import warnings

import numpy as np
import pytest
from nltk.translate.bleu_score import corpus_bleu
from rouge_score.rouge_scorer import RougeScorer
from rouge_score.tokenize import tokenize as rouge_tokenize

from mtlbench.metrics.bootstrap import cluster_bootstrap, sum_by_sequence
from mtlbench.metrics.text import text_headline_from_sums, text_metrics, text_statistics, tokenize

BLEU_WEIGHTS = {
    "bleu_1": (1.0,),
    "bleu_2": (0.5, 0.5),
    "bleu_3": (1 / 3, 1 / 3, 1 / 3),
    "bleu_4": (0.25, 0.25, 0.25, 0.25),
}
ROUGE = RougeScorer(["rougeL"], use_stemmer=False)


def nltk_bleu(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nltk warns whenever an n-gram order has no match
        values = corpus_bleu(
            [[tokenize(text)] for text in references],
            [tokenize(text) for text in hypotheses],
            weights=list(BLEU_WEIGHTS.values()),
        )
    return dict(zip(BLEU_WEIGHTS, values, strict=True))


def rouge_score_mean(hypotheses: list[str], references: list[str]) -> float:
    pairs = zip(hypotheses, references, strict=True)
    scores = [ROUGE.score(reference, hypothesis)["rougeL"].fmeasure for hypothesis, reference in pairs]
    return sum(scores) / len(scores)


def assert_bleu_equals_nltk(hypotheses: list[str], references: list[str]) -> None:
    metrics = text_metrics(hypotheses, references)
    for key, expected in nltk_bleu(hypotheses, references).items():
        assert metrics[key] == pytest.approx(expected, abs=1e-12, rel=0), key


def random_corpus(seed: int, vocabulary: list[str], pairs: int, max_length: int) -> tuple[list[str], list[str]]:
    """References of random words, hypotheses edited copies of them, written with capitals,
    punctuation and underscores that every tokenizer must drop."""
    rng = random.Random(seed)

    def write(words: list[str]) -> str:
        separators = [" ", " ", " ", ", ", "; ", " - ", "_", "."]
        text = "".join(word + rng.choice(separators) for word in words)
        return text.capitalize() if rng.random() < 0.5 else text.upper()

    hypotheses, references = [], []
    for _ in range(pairs):
        reference = rng.choices(vocabulary, k=rng.randint(0, max_length))
        kept = [word for word in reference if rng.random() > 0.1]
        hypothesis = [rng.choice(vocabulary) if rng.random() < 0.2 else word for word in kept]
        hypothesis += rng.choices(vocabulary, k=rng.randint(0, 3))
        references.append(write(reference))
        hypotheses.append(write(hypothesis))
    return hypotheses, references


ASCII_WORDS = "grasper clip vessel the a cut no bleeding sinus 2 mm x1".split()
GERMAN_WORDS = "die stirnhöhle ist frei gefäß größe blutung über öffnung mäßig ödem".split()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("vocabulary_size", "max_length"), [(3, 20), (12, 20), (12, 150)])
def test_bleu_equals_nltk_on_random_ascii_corpora(seed, vocabulary_size, max_length):
    # 3 words: repeated n-grams of every order in most hypotheses; 150 tokens: masks wider than 64 bits
    assert_bleu_equals_nltk(*random_corpus(seed, ASCII_WORDS[:vocabulary_size], pairs=60, max_length=max_length))


@pytest.mark.parametrize("seed", range(3))
def test_bleu_equals_nltk_on_random_german_corpora(seed):
    assert_bleu_equals_nltk(*random_corpus(seed, GERMAN_WORDS, pairs=60, max_length=20))


@pytest.mark.parametrize(
    ("hypotheses", "references"),
    [
        (["the grasper holds the vessel"], ["the grasper holds the vessel near the clip"]),  # shorter: BP < 1
        (["the grasper holds the vessel near the clip now"], ["the grasper holds the vessel"]),  # longer: BP = 1
        (["a b x c d"], ["a b c d"]),  # trigram and 4-gram precisions 0
        (["a b"], ["a b c d e"]),  # no 3- or 4-grams at all: nltk counts 1 unmatched each
        (["clip the vessel"], ["clip the vessel"]),  # identical, too short for 4-grams
        (["one two three four"], ["five six seven eight"]),  # no unigram match
        (["", "the clip", "clip"], ["the clip is on", "", "the clip"]),  # empty sides inside a corpus
        (["the the the the"], ["the cat on the mat"]),  # clipping of a repeated token
    ],
)
def test_bleu_equals_nltk_on_edge_cases(hypotheses, references):
    assert_bleu_equals_nltk(hypotheses, references)


def test_zero_precision_gives_exactly_zero():
    # unigrams 4/5, bigrams (a b), (c d) of 4, trigrams 0 of 3: nltk's unsmoothed stand-in is below 1e-70
    metrics = text_metrics(["a b x c d"], ["a b c d"])
    assert metrics["bleu_3"] == metrics["bleu_4"] == 0.0
    assert metrics["bleu_2"] == pytest.approx(math.sqrt(4 / 5 * 2 / 4), abs=1e-15)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("vocabulary_size", "max_length"), [(3, 15), (12, 20), (12, 150)])
def test_rouge_l_equals_rouge_score_on_ascii_corpora(seed, vocabulary_size, max_length):
    # a 3-word vocabulary makes many tied LCS paths; 150 tokens need more than one 64-bit word
    hypotheses, references = random_corpus(seed, ASCII_WORDS[:vocabulary_size], pairs=40, max_length=max_length)
    hypotheses += ["", "!!!", "clip"]
    references += ["clip", "clip", "..."]
    assert text_metrics(hypotheses, references)["rouge_l"] == pytest.approx(
        rouge_score_mean(hypotheses, references), abs=1e-12, rel=0
    )


def test_german_sentence_by_hand_and_where_rouge_score_cuts_the_word():
    hypothesis, reference = "Die Stirnhöhle ist frei.", "Die Stirnhöhle ist nicht frei."
    # ours: hyp [die stirnhöhle ist frei] (4), ref [die stirnhöhle ist nicht frei] (5)
    # unigrams 4/4; bigrams (die stirnhöhle) (stirnhöhle ist) match, (ist frei) not: 2/3;
    # trigrams (die stirnhöhle ist) matches: 1/2; the one 4-gram does not: 0/1; BP = exp(1 - 5/4)
    # LCS = 4: precision 4/4, recall 4/5, F = 2 * 1 * 0.8 / 1.8 = 8/9
    metrics = text_metrics([hypothesis], [reference])
    brevity = math.exp(-0.25)
    assert metrics["bleu_1"] == pytest.approx(brevity, abs=1e-15)
    assert metrics["bleu_2"] == pytest.approx(brevity * math.sqrt(2 / 3), abs=1e-15)
    assert metrics["bleu_3"] == pytest.approx(brevity * (1 / 3) ** (1 / 3), abs=1e-15)
    assert metrics["bleu_4"] == 0.0
    assert metrics["rouge_l"] == pytest.approx(8 / 9, abs=1e-15)
    # rouge-score: [die stirnh hle ist frei] vs [die stirnh hle ist nicht frei]: LCS 5, P 1, R 5/6, F = 10/11
    assert rouge_tokenize(hypothesis, None) == ["die", "stirnh", "hle", "ist", "frei"]
    rouge_score_value = ROUGE.score(reference, hypothesis)["rougeL"].fmeasure
    assert rouge_score_value == pytest.approx(10 / 11, abs=1e-15)
    assert metrics["rouge_l"] != pytest.approx(rouge_score_value, abs=1e-3)


def test_sharp_s_sentence_and_two_pair_corpus_by_hand():
    hypothesis, reference = "Große Blutung am Gefäß.", "Keine große Blutung, Gefäß intakt."
    # ours: hyp [große blutung am gefäß] (4), ref [keine große blutung gefäß intakt] (5)
    # unigrams große blutung gefäß: 3/4; bigrams (große blutung): 1/3; trigrams 0/2; BP = exp(1 - 5/4)
    # LCS = 3 (große blutung gefäß): P 3/4, R 3/5, F = 2 * 9/20 / (27/20) = 2/3
    metrics = text_metrics([hypothesis], [reference])
    assert metrics["bleu_1"] == pytest.approx(math.exp(-0.25) * 3 / 4, abs=1e-15)
    assert metrics["bleu_2"] == pytest.approx(math.exp(-0.25) * math.sqrt(3 / 4 * 1 / 3), abs=1e-15)
    assert metrics["bleu_3"] == 0.0
    assert metrics["rouge_l"] == pytest.approx(2 / 3, abs=1e-15)
    # rouge-score: [gro e blutung am gef] vs [keine gro e blutung gef intakt]: LCS 4, P 4/5, R 4/6, F = 8/11
    assert ROUGE.score(reference, hypothesis)["rougeL"].fmeasure == pytest.approx(8 / 11, abs=1e-15)

    # both pairs as one corpus: unigrams (4 + 3)/(4 + 4), bigrams (2 + 1)/(3 + 3), trigrams (1 + 0)/(2 + 2),
    # 4-grams 0; c = 8, r = 10, BP = exp(1 - 10/8); ROUGE-L mean (8/9 + 2/3)/2 = 7/9
    corpus = text_metrics(
        ["Die Stirnhöhle ist frei.", hypothesis], ["Die Stirnhöhle ist nicht frei.", reference]
    )
    assert corpus["bleu_2"] == pytest.approx(math.exp(-0.25) * math.sqrt(7 / 8 * 3 / 6), abs=1e-15)
    assert corpus["bleu_3"] == pytest.approx(math.exp(-0.25) * (7 / 8 * 3 / 6 * 1 / 4) ** (1 / 3), abs=1e-15)
    assert corpus["bleu_4"] == 0.0
    assert corpus["rouge_l"] == pytest.approx(7 / 9, abs=1e-15)


def test_tokenize_keeps_umlauts_and_sharp_s_and_drops_punctuation_and_underscores():
    assert tokenize("Größe: 3,5 cm; Straße_Nord (ÄÖÜ)! über-all") == [
        "größe", "3", "5", "cm", "straße", "nord", "äöü", "über", "all"
    ]  # fmt: skip
    assert tokenize("STRAẞE") == ["straße"]  # capital sharp s lowercases to ß, never to "ss"
    assert tokenize(unicodedata.normalize("NFD", "Stirnhöhle")) == ["stirnhöhle"]  # o + combining diaeresis
    assert tokenize("") == tokenize(" _ ... ") == []


@pytest.mark.parametrize("seed", range(3))
def test_tokenize_equals_rouge_score_tokenizer_on_ascii(seed):
    rng = random.Random(seed)
    for _ in range(300):  # short texts: many have no underscore, many have one
        text = "".join(rng.choice("aZ09 _-.,;:!?'\"()\t\nxyQ") for _ in range(rng.randint(0, 30)))
        assert tokenize(text) == rouge_tokenize(text, None), text


def test_sums_over_a_video_equal_the_reference_packages_on_that_video():
    hypotheses, references = random_corpus(7, ASCII_WORDS, pairs=90, max_length=20)
    videos = [f"video{index % 3}" for index in range(90)]
    names, per_video = sum_by_sequence(text_statistics(hypotheses, references), videos)
    assert names == ["video0", "video1", "video2"]
    for row, name in enumerate(names):
        subset = [index for index, video in enumerate(videos) if video == name]
        sub_hypotheses = [hypotheses[index] for index in subset]
        sub_references = [references[index] for index in subset]
        headline = text_headline_from_sums({key: values[row] for key, values in per_video.items()})
        for key, expected in nltk_bleu(sub_hypotheses, sub_references).items():
            assert headline[key] == pytest.approx(expected, abs=1e-12, rel=0), (name, key)
        assert headline["rouge_l"] == pytest.approx(rouge_score_mean(sub_hypotheses, sub_references), abs=1e-12)
        on_the_subset = text_metrics(sub_hypotheses, sub_references)
        assert headline == {key: pytest.approx(on_the_subset[key], abs=1e-15) for key in headline}


def test_statistics_feed_the_sequence_bootstrap():
    hypotheses, references = random_corpus(8, GERMAN_WORDS, pairs=60, max_length=15)
    _, per_video = sum_by_sequence(text_statistics(hypotheses, references), [f"v{i % 6}" for i in range(60)])
    result = cluster_bootstrap(per_video, text_headline_from_sums, resamples=100, seed=0)
    for key in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "exact_match"):
        interval = result["intervals"][key]
        assert 0 <= interval["low"] <= interval["high"] <= 1, key
    assert result["intervals"]["keyword_hit_rate"] is None  # no keywords: undefined in every resample


def test_exact_match_and_keyword_hits_by_hand():
    pairs = [
        # (hypothesis, reference, keyword): exact match?, keyword hit?
        ("Die Stirnhöhle ist frei.", "die Stirnhöhle ist frei", "Stirnhöhle"),  # yes, yes
        ("die stirnhöhle, ist FREI", "Die Stirnhöhle ist frei.", "ist frei"),  # yes, yes
        ("Kein Befund", "Kein Befund.", "Befund kein"),  # yes, no: wrong order
        ("Die Stirnhöhle ist nicht frei", "Die Stirnhöhle ist frei", "ist frei"),  # no, no: not contiguous
        ("Stirnhöhle frei", "Stirnhöhle frei", "höhle"),  # yes, no: part of a word is not a token
        ("Große Blutung am Gefäß.", "Keine große Blutung, Gefäß intakt.", "GEFÄẞ"),  # no, yes
    ]
    hypotheses, references, keywords = map(list, zip(*pairs))
    statistics = text_statistics(hypotheses, references, keywords)
    assert statistics["exact_match"].tolist() == [1, 1, 1, 0, 1, 0]
    assert statistics["keyword_hit"].tolist() == [1, 1, 0, 0, 0, 1]
    metrics = text_metrics(hypotheses, references, keywords)
    assert metrics["exact_match"] == 4 / 6
    assert metrics["keyword_hit_rate"] == 3 / 6
    assert metrics["pairs"] == 6
    assert metrics["null_reasons"] == {}


@pytest.mark.parametrize("keyword", ["", "  ", "?!"])
def test_empty_keyword_is_refused(keyword):
    with pytest.raises(ValueError, match="keyword 1"):
        text_statistics(["a", "b"], ["a", "b"], ["a", keyword])


@pytest.mark.parametrize(
    ("hypotheses", "references", "keywords"),
    [(["a", "b"], ["a"], None), (["a"], ["a", "b"], None), (["a"], ["a"], ["a", "b"])],
)
def test_mismatched_lengths_are_refused(hypotheses, references, keywords):
    with pytest.raises(ValueError):
        text_metrics(hypotheses, references, keywords)


def floats_in(value) -> list[float]:
    if isinstance(value, dict):
        return [number for item in value.values() for number in floats_in(item)]
    return [value] if isinstance(value, float) else []


def test_zero_pairs_gives_none_with_reasons_and_no_nan():
    metrics = text_metrics([], [], keywords=[])
    keys = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "exact_match", "keyword_hit_rate")
    assert all(metrics[key] is None for key in keys)
    assert metrics["null_reasons"] == dict.fromkeys(keys, "no pairs")
    assert metrics["pairs"] == 0
    without_keywords = text_metrics([], [])
    assert without_keywords["null_reasons"]["keyword_hit_rate"] == "no keywords given"
    statistics = text_statistics([], [])
    assert statistics["bleu_matches"].shape == statistics["bleu_totals"].shape == (0, 4)


def test_no_nan_on_degenerate_pairs():
    metrics = text_metrics(["", "...", "x"], ["", "a", "..."], ["x", "a", "x"])
    assert not any(math.isnan(number) for number in floats_in(metrics))
    # no hypothesis token matches: every BLEU is 0; no pair has tokens on both sides: ROUGE-L 0
    assert [metrics[key] for key in ("bleu_1", "bleu_4", "rouge_l", "exact_match", "keyword_hit_rate")] == [
        0.0, 0.0, 0.0, 1 / 3, 1 / 3
    ]  # fmt: skip
    assert np.isfinite(text_statistics(["", "x"], ["", ""])["rouge_l_f"]).all()
