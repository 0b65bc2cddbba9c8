"""Set diagnostics for sequence-to-set models.

A seq2set decoder (OTSeq2Set, Sec. 3; Seq2Seq / MLC2Seq / SGM baselines) decides
*how many* labels to emit and may emit a label twice; these numbers show where
it goes wrong, next to the metrics:

- label counts: mean predicted vs gold set size, and how often they match;
- duplicate rate of the raw decoder outputs (before set conversion);
- F1 by label-frequency bucket (head / torso / tail from training counts).
"""

from __future__ import annotations

import numpy as np

from .sets import SetCounts, safe_div

__all__ = ["count_diagnostics", "duplicate_rates", "frequency_buckets", "bucket_scores", "BUCKETS"]

BUCKETS = ("head", "torso", "tail")


def count_diagnostics(c: SetCounts) -> dict[str, float]:
    r"""Predicted vs gold set sizes.

    .. math::

        \overline{|\hat Y|} = \frac{1}{D}\sum_i |\hat Y_i|, \quad
        \overline{|Y|} = \frac{1}{D}\sum_i |Y_i|, \quad
        \mathrm{count\_match} = \frac{1}{D}\sum_i \mathbb{1}[|\hat Y_i| = |Y_i|]

    plus ``count_under_rate`` (fraction with ``|Ŷ_i| < |Y_i|``) and
    ``count_over_rate`` (``|Ŷ_i| > |Y_i|``); the three rates sum to 1.
    Sizes are of the de-duplicated sets.
    """
    p, g = c.pred_doc, c.gold_doc  # (D,)
    return {
        "mean_predicted_labels": float(p.mean()),
        "mean_gold_labels": float(g.mean()),
        "count_match_rate": float((p == g).mean()),
        "count_under_rate": float((p < g).mean()),
        "count_over_rate": float((p > g).mean()),
    }


def duplicate_rates(emitted: np.ndarray, distinct: np.ndarray) -> dict[str, float]:
    r"""How often raw decoder outputs repeat a label within a document.

    .. math::

        \mathrm{duplicate\_rate} = \frac{\sum_i (n_i - u_i)}{\sum_i n_i}, \qquad
        \mathrm{duplicate\_doc\_rate} = \frac{1}{D} \sum_i \mathbb{1}[n_i > u_i]

    with ``n_i`` the number of labels emitted for document i (repeats counted)
    and ``u_i`` the number of distinct ones; ``duplicate_rate`` is the fraction
    of emitted labels that are wasted repeats (0 when nothing is emitted).

    Parameters
    ----------
    emitted, distinct : ndarray of int, shape (D,)
    """
    return {
        "duplicate_rate": float(safe_div((emitted - distinct).sum(), emitted.sum())),
        "duplicate_doc_rate": float((emitted > distinct).mean()) if emitted.size else 0.0,
    }


def frequency_buckets(train_label_counts: np.ndarray, n_labels: int) -> np.ndarray:
    r"""Assign each label to head (0), torso (1) or tail (2) by training frequency.

    Buckets split the training **label mass** (occurrences) into thirds. With
    ``N_j`` the training count of label j and ``T = Σ_j N_j``, the mass of the
    labels strictly more frequent than j is

    .. math::

        m_j = \frac{1}{T} \sum_{l : N_l > N_j} N_l ,

    and label j is *head* if ``m_j < 1/3``, *torso* if ``1/3 <= m_j < 2/3``,
    *tail* otherwise. So the head is the most frequent labels that together
    hold (about) the first third of all training label occurrences, the tail
    holds the rare labels of the last third, and labels with ``N_j = 0``
    (never seen in training, e.g. test-only labels) are always tail. The
    assignment depends only on the counts, so tied labels share a bucket, and
    the most frequent label is always head.

    Parameters
    ----------
    train_label_counts : array-like of int, shape (L',), L' <= n_labels
        Training frequency per label id; ids ``>= L'`` count 0.
    n_labels : int

    Returns
    -------
    ndarray of int8, shape (n_labels,)
    """
    counts = np.zeros(n_labels, dtype=np.float64)
    given = np.asarray(train_label_counts, dtype=np.float64).reshape(-1)
    if given.size > n_labels:
        raise ValueError(f"train_label_counts has {given.size} entries > n_labels={n_labels}")
    if (given < 0).any():
        raise ValueError("train_label_counts must be non-negative")
    counts[: given.size] = given
    total = counts.sum()
    if total == 0:
        return np.full(n_labels, 2, dtype=np.int8)
    values, inverse = np.unique(counts, return_inverse=True)  # ascending distinct counts
    mass_per_value = np.bincount(inverse, weights=counts)  # (U,)
    above = mass_per_value[::-1].cumsum()[::-1] - mass_per_value  # mass strictly above each value
    m = above[inverse] / total  # (L,)
    buckets = np.where(m < 1 / 3, 0, np.where(m < 2 / 3, 1, 2)).astype(np.int8)
    buckets[counts == 0] = 2
    return buckets


def bucket_scores(c: SetCounts, buckets: np.ndarray) -> dict[str, float]:
    r"""Micro- and macro-F1 restricted to the labels of each frequency bucket.

    For bucket ``B`` (a set of labels):

    .. math::

        F1_{B} = \frac{2 \sum_{j \in B} TP_j}{\sum_{j \in B} (2 TP_j + FP_j + FN_j)},
        \qquad
        \mathrm{macro\_}F1_{B} = \frac{1}{|B|} \sum_{j \in B} F1_j

    (0 for an empty denominator / empty bucket). Keys ``f1_head``,
    ``macro_f1_head``, ``n_labels_head`` and the same for torso and tail.
    """
    out: dict[str, float] = {}
    tp, npred, ngold = c.tp_label, c.pred_label, c.gold_label
    per_label_f1 = safe_div(2 * tp, npred + ngold)  # (L,)
    for b, name in enumerate(BUCKETS):
        sel = buckets == b  # (L,)
        out[f"f1_{name}"] = float(safe_div(2 * tp[sel].sum(), npred[sel].sum() + ngold[sel].sum()))
        out[f"macro_f1_{name}"] = float(per_label_f1[sel].mean()) if sel.any() else 0.0
        out[f"n_labels_{name}"] = float(sel.sum())
    return out
