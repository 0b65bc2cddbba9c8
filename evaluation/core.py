"""One entry point, :func:`evaluate`: set, ranking and diagnostic metrics in a flat dict.

The paper (OTSeq2Set, EMNLP 2022, Sec. 4.2 / Table 3) reports micro-F1 and
macro-F1; the ranking metrics (P@k, nDCG@k, PSP@k) and the seq2set diagnostics
are added so results compare with the extreme-classification literature and
show *why* a set predictor wins or loses.

Data flow, never dense in documents x labels::

    predicted, gold --to_csr--> CSR (D, L) --set_counts--> per-label / per-doc counts
    scores --ranked_labels--> ranked ids (D, k) --rank_hits--> hits (D, k)
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable, Sequence

import numpy as np

from ._sparse import duplicate_counts, ranked_labels, to_csr
from .diagnostics import bucket_scores, count_diagnostics, duplicate_rates, frequency_buckets
from .ranking import best_ranking, inverse_propensity, ndcg_at_k, precision_at_k, psp_at_k, rank_hits
from .sets import (
    example_scores,
    hamming_loss,
    macro_scores,
    micro_scores,
    set_counts,
    subset_accuracy,
    weighted_scores,
)

__all__ = ["evaluate", "SET_KEYS"]

#: The stable set-metric keys (docs/contracts.md), always present.
SET_KEYS = (
    "micro_precision", "micro_recall", "micro_f1",
    "macro_precision", "macro_recall", "macro_f1",
    "weighted_precision", "weighted_recall", "weighted_f1",
    "example_precision", "example_recall", "example_f1",
    "subset_accuracy", "hamming_loss",
)


def evaluate(
    predicted: Any,
    gold: Any,
    n_labels: int,
    *,
    scores: Any = None,
    ks: Iterable[int] = (1, 3, 5),
    train_label_counts: Any = None,
    n_train_docs: int | None = None,
    propensity_a: float = 0.55,
    propensity_b: float = 1.5,
    raw_predictions: Sequence[Iterable[int]] | None = None,
) -> dict[str, float]:
    r"""Evaluate predicted label sets (and optionally scores) against gold sets.

    Parameters
    ----------
    predicted : sequence of iterables of int, or scipy sparse matrix (D, L)
        Predicted label-id set per document. Repeats collapse (set semantics);
        order inside a set does not matter. In a sparse matrix a label is
        predicted where a nonzero value is stored.
    gold : same forms as ``predicted``, D documents
        Gold label sets. May contain labels the model cannot predict (e.g.
        test-only labels); they count as misses.
    n_labels : int
        Size L of the label universe; every id must be in ``range(L)``.
        Macro averages and the Hamming loss are over all L labels.
    scores : optional, one of
        - dense ``(D, L)`` array (numpy, torch, anything with ``.numpy()``):
          fine for small L; the only case where a dense array exists, and it
          is the caller's;
        - scipy sparse ``(D, L)``: only stored entries are ranked;
        - ``(top_ids, top_scores)``, two ``(D, k')`` arrays: the top-k' labels
          per document with their scores (any order inside a row; ``-1`` ids
          are padding) — the form to use at 670K labels, O(D k') memory;
        - ``(top_ids, None)``: ``top_ids`` already in rank order.
        Labels are ranked by score descending, ties to the lower id; ranks a
        document has no candidate for count as misses. When given, the keys
        ``p@k`` and ``ndcg@k`` (and ``psp@k`` with propensities) are added.
    ks : iterable of int
        Cut-offs for the ranking metrics.
    train_label_counts : array-like of int, shape (L',), L' <= L, optional
        Training frequency of each label id (ids ``>= L'`` count 0). Adds F1 by
        frequency bucket (``f1_head``/``torso``/``tail``, ``macro_f1_*``,
        ``n_labels_*``; see :func:`evaluation.diagnostics.frequency_buckets`)
        and, with ``scores`` and ``n_train_docs``, ``psp@k``.
    n_train_docs : int, optional
        Number of training documents N in the propensity model; ``psp@k`` is
        skipped (with a warning) without it.
    propensity_a, propensity_b : float
        A and B of the propensity model (:func:`evaluation.ranking.inverse_propensity`).
    raw_predictions : sequence of sequences of int, optional
        The raw decoder outputs before set conversion (repeats kept); adds
        ``duplicate_rate`` and ``duplicate_doc_rate``.

    Returns
    -------
    dict[str, float]
        Flat. Always: :data:`SET_KEYS`, ``mean_predicted_labels``,
        ``mean_gold_labels``, ``count_match_rate``, ``count_under_rate``,
        ``count_over_rate``. Optional keys as described above.

    Notes
    -----
    Set metrics equal scikit-learn's on the binarised ``(D, L)`` matrices with
    ``labels=range(L)`` and ``zero_division=0`` (``average`` micro / macro /
    weighted / samples; ``accuracy_score``; ``hamming_loss``): with ``TP_j,
    FP_j, FN_j`` per label and each ratio 0 on a zero denominator,

    .. math::

        F1_{micro} = \frac{2\sum_j TP_j}{\sum_j (2TP_j + FP_j + FN_j)}, \quad
        F1_{macro} = \frac{1}{L}\sum_j \frac{2TP_j}{2TP_j + FP_j + FN_j}, \quad
        F1_{ex} = \frac{1}{D}\sum_i \frac{2|\hat Y_i \cap Y_i|}{|\hat Y_i| + |Y_i|}

    (full definitions in :mod:`evaluation.sets`). A document with empty gold
    *and* empty prediction scores 0 in example P/R/F1 but 1 in subset accuracy.

    Raises
    ------
    ValueError
        On an id outside ``range(n_labels)`` (naming the document and id), a
        different number of predicted and gold documents, or no documents.
    """
    n_labels = int(n_labels)
    if n_labels <= 0:
        raise ValueError(f"n_labels must be positive, got {n_labels}")
    pred_m = to_csr(predicted, n_labels, "predicted")  # (D, L)
    gold_m = to_csr(gold, n_labels, "gold")  # (D, L)
    if pred_m.shape[0] != gold_m.shape[0]:
        raise ValueError(f"predicted has {pred_m.shape[0]} documents, gold has {gold_m.shape[0]}")
    n_docs = gold_m.shape[0]
    if n_docs == 0:
        raise ValueError("no documents to evaluate")

    c = set_counts(pred_m, gold_m)
    out: dict[str, float] = {}
    for prefix, fn in (("micro", micro_scores), ("macro", macro_scores), ("weighted", weighted_scores), ("example", example_scores)):
        p, r, f = fn(c)
        out[f"{prefix}_precision"], out[f"{prefix}_recall"], out[f"{prefix}_f1"] = p, r, f
    out["subset_accuracy"] = subset_accuracy(c)
    out["hamming_loss"] = hamming_loss(c)

    ks = sorted({int(k) for k in ks})
    if any(k <= 0 for k in ks):
        raise ValueError(f"ks must be positive, got {ks}")
    inv_prop = None
    if train_label_counts is not None:
        counts = np.asarray(train_label_counts).reshape(-1)
        if n_train_docs is not None:
            full = np.zeros(n_labels)
            full[: counts.size] = counts
            inv_prop = inverse_propensity(full, n_train_docs, propensity_a, propensity_b)  # (L,)
        elif scores is not None:
            warnings.warn("psp@k needs n_train_docs as well as train_label_counts; skipped", stacklevel=2)
    if scores is not None and ks:
        ranked = ranked_labels(scores, n_docs, n_labels, ks[-1])  # (D, k_max)
        hits = rank_hits(ranked, gold_m)  # (D, k_max)
        for k in ks:
            out[f"p@{k}"] = precision_at_k(hits, k)
        for k in ks:
            out[f"ndcg@{k}"] = ndcg_at_k(hits, c.gold_doc, k)
        if inv_prop is not None:
            best = best_ranking(gold_m, inv_prop, ks[-1])  # (D, k_max)
            for k in ks:
                out[f"psp@{k}"] = psp_at_k(ranked, hits, best, inv_prop, k)

    out.update(count_diagnostics(c))
    if raw_predictions is not None:
        emitted, distinct = duplicate_counts(raw_predictions)
        if emitted.shape[0] != n_docs:
            raise ValueError(f"raw_predictions has {emitted.shape[0]} documents, expected {n_docs}")
        out.update(duplicate_rates(emitted, distinct))
    if train_label_counts is not None:
        out.update(bucket_scores(c, frequency_buckets(train_label_counts, n_labels)))
    return out
