"""Benchmark: full ``evaluation.evaluate`` at Amazon-670K size.

Random data with the shape of the Amazon-670K test split: 153,025 documents,
670,091 labels, about 5 gold and 5 predicted labels per document (Poisson,
at least 1, label ids skewed towards frequent ones), top-5 scores as a ``(top_ids, top_scores)`` pair, training label
counts (for PSP@k and frequency buckets) and raw predictions with repeats.

Times ``evaluate`` on list-of-sets input and on CSR input, and measures the
peak memory it allocates with ``tracemalloc`` (numpy registers its buffers
there), and reports the whole process's peak RSS (``ru_maxrss``). Target: < 10 s, < 2 GB.

Run::

    python benchmarks/evaluation_670k.py [--docs 153025] [--labels 670091]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evaluation import evaluate  # noqa: E402


def make_data(n_docs: int, n_labels: int, mean_labels: float, seed: int = 0):
    rng = np.random.default_rng(seed)

    def sets(overlap_from=None):
        sizes = np.maximum(rng.poisson(mean_labels, n_docs), 1)
        # skewed label frequencies (density ~ 1/sqrt(id)), few accidental repeats
        ids = (n_labels * rng.random(sizes.sum()) ** 2).astype(np.int64)
        if overlap_from is not None:  # make ~half of the predictions correct
            flat = np.concatenate([np.fromiter(s, np.int64) for s in overlap_from])
            starts = np.repeat(np.cumsum([0] + [len(s) for s in overlap_from[:-1]]), sizes)
            lens = np.repeat([len(s) for s in overlap_from], sizes)
            take = rng.random(sizes.sum()) < 0.5
            ids = np.where(take, flat[starts + rng.integers(0, 1 << 30, sizes.sum()) % lens], ids)
        bounds = np.cumsum(sizes)[:-1]
        return [set(x.tolist()) for x in np.split(ids, bounds)], np.split(ids, bounds)

    gold, _ = sets()
    predicted, raw = sets(gold)
    top_ids = np.full((n_docs, 5), -1, dtype=np.int64)
    for i, s in enumerate(predicted):
        row = sorted(s)[:5]
        top_ids[i, : len(row)] = row
    fill = top_ids < 0
    top_ids[fill] = rng.integers(0, n_labels, fill.sum())
    top_scores = rng.random((n_docs, 5)).astype(np.float32)
    train_counts = np.bincount((n_labels * rng.random(n_docs * 15) ** 2).astype(np.int64), minlength=n_labels)
    raw = [np.concatenate([r, r[:1]]) if i % 10 == 0 else r for i, r in enumerate(raw)]  # some repeats
    return predicted, gold, (top_ids, top_scores), train_counts, raw


def to_csr(label_sets, n_labels):
    lens = [len(s) for s in label_sets]
    indptr = np.concatenate([[0], np.cumsum(lens)])
    idx = np.fromiter((i for s in label_sets for i in s), np.int64, indptr[-1])
    return sp.csr_matrix((np.ones(idx.size, np.int8), idx, indptr), shape=(len(label_sets), n_labels))


def measure(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, dt, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=153_025)
    ap.add_argument("--labels", type=int, default=670_091)
    ap.add_argument("--mean-labels", type=float, default=5.0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    predicted, gold, scores, train_counts, raw = make_data(args.docs, args.labels, args.mean_labels)
    pred_csr, gold_csr = to_csr(predicted, args.labels), to_csr(gold, args.labels)
    print(f"data: {args.docs:,} docs x {args.labels:,} labels, "
          f"{pred_csr.nnz / args.docs:.2f} predicted / {gold_csr.nnz / args.docs:.2f} gold per doc "
          f"(built in {time.perf_counter() - t0:.1f} s)")
    opts = dict(scores=scores, train_label_counts=train_counts, n_train_docs=490_449, raw_predictions=raw)
    # time is taken without tracemalloc (which slows allocation-heavy code), memory with it
    for name, p, g in (("list-of-sets", predicted, gold), ("CSR", pred_csr, gold_csr)):
        t = time.perf_counter()
        metrics = evaluate(p, g, args.labels, **opts)
        dt = time.perf_counter() - t
        _, _, peak = measure(lambda: evaluate(p, g, args.labels, **opts))
        print(f"{name:>13}: {dt:6.2f} s, peak allocated by evaluate (tracemalloc) {peak / 2**20:7.1f} MiB")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"process peak RSS (interpreter + data + evaluate): {rss / 2**20:.1f} MiB")
    print({k: round(v, 4) for k, v in metrics.items() if k in ("micro_f1", "macro_f1", "p@1", "ndcg@5", "psp@5", "duplicate_rate", "f1_tail")})


if __name__ == "__main__":
    main()
