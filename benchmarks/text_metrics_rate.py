"""Text metric throughput against nltk's BLEU and rouge-score's ROUGE-L, all figures from one run.

Generates deterministic pseudo-sentences of 8-25 words drawn from a 2,000-word vocabulary with
Zipf weights (1 / rank, so that frequent words repeat within a sentence as articles do), in
which German words with umlauts and ß are common; each hypothesis is a noisy edit of its
reference (substituted, dropped, inserted and swapped words, a few exact copies, some cut
short), so that every BLEU order is nontrivial. Then times, best of --repeats rounds (the
contenders interleaved within a round, so that a busy spell of the machine hits all alike):

- mtlbench: text_statistics + text_headline_from_sums (tokenizing, BLEU-1..4, ROUGE-L, exact
  match) on the raw texts;
- nltk corpus_bleu with BLEU-2 weights on the pairs already tokenized by mtlbench's tokenizer
  (tokenizing is not in nltk's time), and once more with all four weight tuples;
- rouge-score RougeScorer(["rougeL"]) on the texts ASCII-folded (ä -> ae, ß -> ss, ...), so
  that its [a-z0-9] tokenizer sees the same words as mtlbench's and the values can be compared;
  its own tokenizing is in its time.

Target: mtlbench faster than nltk's BLEU-2 and than rouge-score's ROUGE-L, each. BLEU-1..4
must equal nltk's and ROUGE-L (on the folded texts) rouge-score's to 1e-12.

    python benchmarks/text_metrics_rate.py [--pairs 100000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
import warnings
from collections.abc import Callable

from nltk.translate.bleu_score import corpus_bleu
from rouge_score.rouge_scorer import RougeScorer

from mtlbench.metrics.text import text_headline_from_sums, text_metrics, text_statistics, tokenize

GERMAN_WORDS = (
    "stirnhöhle kieferhöhle schädelbasis gefäß blutgefäß größe größer mäßig außen übergang öffnung "
    "schleimhaut entzündung ödem läsion gewebe naht blutung koagulation präparation rückstand "
    "drüse gefäßstiel hämostase tumor resektion schnitt faßzange klemme spülung absaugung"
).split()
ENGLISH_WORDS = (
    "the a of and with on in is no clear visible left right upper lower grasper scissors clip "
    "hook needle suture tissue vessel mucosa bleeding retraction dissection cautery sinus wall"
).split()
SYLLABLES = "ka lo mi ne ru ta schä grö über öff mü ha be gel stirn höh ra fu ge lä ck tro".split()
# never the first syllable: ß does not begin a German word, and "ß".upper() would be "SS"
INNER_SYLLABLES = (*SYLLABLES, "ßen", "fäß", "ße")
BLEU_WEIGHTS = {
    "bleu_1": (1.0,),
    "bleu_2": (0.5, 0.5),
    "bleu_3": (1 / 3, 1 / 3, 1 / 3),
    "bleu_4": (0.25, 0.25, 0.25, 0.25),
}
MTLBENCH = "mtlbench BLEU-1..4 + ROUGE-L + exact match, raw text"
NLTK_BLEU_2 = "nltk corpus_bleu BLEU-2, pre-tokenized"
NLTK_BLEU_1_TO_4 = "nltk corpus_bleu BLEU-1..4 in one call, pre-tokenized"
ROUGE_SCORE = "rouge-score rougeL, ASCII-folded text"
FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})


def vocabulary(size: int, rng: random.Random) -> list[str]:
    words = dict.fromkeys(GERMAN_WORDS + ENGLISH_WORDS)
    while len(words) < size:
        words[rng.choice(SYLLABLES) + "".join(rng.choices(INNER_SYLLABLES, k=rng.randint(0, 2)))] = None
    shuffled = list(words)
    rng.shuffle(shuffled)  # the Zipf rank of a word then does not depend on its kind
    return shuffled


def noisy_copy(words: list[str], vocabulary_words: list[str], rng: random.Random) -> list[str]:
    if rng.random() < 0.05:
        return list(words)
    edited = []
    for word in words:
        draw = rng.random()
        if draw < 0.10:
            edited.append(rng.choice(vocabulary_words))
        elif draw < 0.15:
            continue
        elif draw < 0.20:
            edited += [word, rng.choice(vocabulary_words)]
        else:
            edited.append(word)
    if len(edited) > 2 and rng.random() < 0.1:
        swap = rng.randrange(len(edited) - 1)
        edited[swap], edited[swap + 1] = edited[swap + 1], edited[swap]
    if rng.random() < 0.1:
        edited = edited[: rng.randint(1, len(edited))]
    return edited


def sentence(words: list[str]) -> str:
    text = " ".join(words)
    return text[:1].upper() + text[1:] + "."


def make_pairs(pairs: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    vocabulary_words = vocabulary(2000, rng)
    zipf_weights = list(itertools.accumulate(1 / rank for rank in range(1, len(vocabulary_words) + 1)))
    hypotheses, references = [], []
    for _ in range(pairs):
        reference = rng.choices(vocabulary_words, cum_weights=zipf_weights, k=rng.randint(8, 25))
        references.append(sentence(reference))
        hypotheses.append(sentence(noisy_copy(reference, vocabulary_words, rng)))
    return hypotheses, references


def best_times(contenders: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple[float, object]]:
    """Each contender's best wall time over the rounds, and its result."""
    best = {name: (float("inf"), None) for name in contenders}
    for _ in range(repeats):
        for name, function in contenders.items():
            start = time.perf_counter()
            result = function()
            best[name] = (min(best[name][0], time.perf_counter() - start), result)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    hypotheses, references = make_pairs(args.pairs)
    hypothesis_tokens = [tokenize(text) for text in hypotheses]
    reference_tokens = [[tokenize(text)] for text in references]
    folded_hypotheses = [text.translate(FOLD) for text in hypotheses]
    folded_references = [text.translate(FOLD) for text in references]
    scorer = RougeScorer(["rougeL"], use_stemmer=False)

    def mtlbench_metrics():
        statistics = text_statistics(hypotheses, references)
        return text_headline_from_sums({key: values.sum(axis=0) for key, values in statistics.items()})

    def rouge_score_rouge_l():
        pairs = zip(folded_references, folded_hypotheses)
        return [scorer.score(reference, hypothesis)["rougeL"].fmeasure for reference, hypothesis in pairs]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nltk warns of an order without matches (only possible with few pairs)
        timed = best_times(
            {
                MTLBENCH: mtlbench_metrics,
                NLTK_BLEU_2: lambda: corpus_bleu(reference_tokens, hypothesis_tokens, weights=(0.5, 0.5)),
                NLTK_BLEU_1_TO_4: lambda: corpus_bleu(
                    reference_tokens, hypothesis_tokens, weights=list(BLEU_WEIGHTS.values())
                ),
                ROUGE_SCORE: rouge_score_rouge_l,
            },
            args.repeats,
        )
    tokens = sum(map(len, hypothesis_tokens)) + sum(len(tokens) for [tokens] in reference_tokens)
    repeating = sum(len(set(tokens)) < len(tokens) for tokens in hypothesis_tokens)
    print(
        f"{args.pairs} pairs, {tokens / args.pairs:.1f} tokens per pair (both sides), "
        f"{repeating / args.pairs:.0%} of hypotheses repeat a word; best of {args.repeats}"
    )
    for name, (elapsed, _) in timed.items():
        print(f"  {name:67s} {args.pairs / elapsed:8.0f} pairs/s  ({elapsed:.2f} s)")

    seconds = {name: elapsed for name, (elapsed, _) in timed.items()}
    for name, contender_seconds in (
        (NLTK_BLEU_2, seconds[NLTK_BLEU_2]),
        (NLTK_BLEU_1_TO_4, seconds[NLTK_BLEU_1_TO_4]),
        (ROUGE_SCORE, seconds[ROUGE_SCORE]),
        ("nltk BLEU-2 and rouge-score rougeL together", seconds[NLTK_BLEU_2] + seconds[ROUGE_SCORE]),
    ):
        ratio = contender_seconds / seconds[MTLBENCH]
        print(f"  speed-up over {name:53s} {ratio:5.2f}x  ({'met' if ratio >= 1 else 'NOT met'}: target >= 1)")

    ours = timed[MTLBENCH][1]
    rouge_scores = timed[ROUGE_SCORE][1]
    checks = [
        *((key, ours[key], value) for key, value in zip(BLEU_WEIGHTS, timed[NLTK_BLEU_1_TO_4][1], strict=True)),
        (
            "rouge_l (folded text)",
            text_metrics(folded_hypotheses, folded_references)["rouge_l"],
            sum(rouge_scores) / len(rouge_scores),
        ),
    ]
    for key, value, reference_value in checks:
        difference = abs(value - reference_value)
        verdict = "agrees" if difference <= 1e-12 else "DIFFERS"
        print(f"  {key:22s} mtlbench {value:.15f}  reference {reference_value:.15f}  |diff| {difference:.1e} {verdict}")
    print(f"  on the original text: rouge_l {ours['rouge_l']:.6f}, exact_match {ours['exact_match']:.4f}")


if __name__ == "__main__":
    main()
