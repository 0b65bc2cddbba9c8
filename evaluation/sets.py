"""Set metrics: micro / macro / weighted / example-based P, R, F1, subset accuracy, Hamming loss.

The paper (OTSeq2Set, EMNLP 2022, Sec. 4.2) reports micro-F1 as its headline
and macro-F1 beside it; the other metrics are the standard multi-label ones.

Every definition here is scikit-learn's on the binarised data
``Y, Ŷ ∈ {0, 1}^{D x L}`` with ``labels=range(n_labels)`` and
``zero_division=0``:

- ``micro_*``    = ``precision_recall_fscore_support(Y, Ŷ, average="micro")``
- ``macro_*``    = ``... average="macro"`` (mean over **all** L labels, a label
  that is neither in gold nor predicted scores 0 and still counts in the mean)
- ``weighted_*`` = ``... average="weighted"`` (weights = gold support)
- ``example_*``  = ``... average="samples"``
- ``subset_accuracy`` = ``accuracy_score(Y, Ŷ)``, ``hamming_loss`` = ``hamming_loss(Y, Ŷ)``.

Zero-division convention (sklearn ``zero_division=0``): any ratio whose
denominator is 0 is 0. In particular, for one document with empty prediction
its precision is 0; with empty gold its recall is 0; with both empty its
precision, recall **and F1 are all 0** (yet it counts as a subset-accuracy hit
and adds nothing to the Hamming loss).

F1 is computed from counts, ``F1 = 2 tp / (2 tp + fp + fn)`` (0 when the
denominator is 0), which equals ``2 P R / (P + R)`` whenever ``tp > 0`` and is
what scikit-learn computes.

Nothing here is dense: counts come from per-(document, label) keys of the two
CSR matrices and ``np.bincount`` over label and document ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = [
    "SetCounts",
    "set_counts",
    "micro_scores",
    "macro_scores",
    "weighted_scores",
    "example_scores",
    "subset_accuracy",
    "hamming_loss",
    "safe_div",
]


def safe_div(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    """``num / den`` elementwise, 0 where ``den == 0`` (sklearn ``zero_division=0``)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


@dataclass(frozen=True)
class SetCounts:
    """Sufficient statistics of every set metric.

    Attributes
    ----------
    tp_label, pred_label, gold_label : ndarray of int64, shape (L,)
        Per label: true positives, times predicted, times in gold (support).
    inter_doc, pred_doc, gold_doc : ndarray of int64, shape (D,)
        Per document: ``|P_i ∩ G_i|``, ``|P_i|``, ``|G_i|``.
    hit : ndarray of bool, shape (nnz_pred,)
        For each stored entry of the prediction CSR, whether it is in gold.
    """

    tp_label: np.ndarray
    pred_label: np.ndarray
    gold_label: np.ndarray
    inter_doc: np.ndarray
    pred_doc: np.ndarray
    gold_doc: np.ndarray
    hit: np.ndarray

    @property
    def n_docs(self) -> int:
        return int(self.pred_doc.shape[0])

    @property
    def n_labels(self) -> int:
        return int(self.tp_label.shape[0])


def entry_keys(m: sp.csr_matrix) -> np.ndarray:
    """Sorted int64 key ``doc * L + label`` of every stored entry, shape (nnz,)."""
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))  # (nnz,)
    return rows * np.int64(m.shape[1]) + m.indices.astype(np.int64)


def member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Boolean ``keys[i] in sorted_keys`` via binary search, shape like ``keys``."""
    if sorted_keys.size == 0:
        return np.zeros(keys.shape, dtype=bool)
    pos = np.searchsorted(sorted_keys, keys)
    pos = np.minimum(pos, sorted_keys.size - 1)
    return sorted_keys[pos] == keys


def set_counts(pred: sp.csr_matrix, gold: sp.csr_matrix) -> SetCounts:
    """Count tp / predicted / gold per label and per document.

    Parameters
    ----------
    pred, gold : scipy.sparse.csr_matrix, shape (D, L)
        Binary, sorted unique indices (as built by ``evaluation._sparse.to_csr``).
    """
    n_docs, n_labels = gold.shape
    pred_rows = np.repeat(np.arange(n_docs, dtype=np.int64), np.diff(pred.indptr))  # (nnz_p,)
    hit = member(entry_keys(pred), entry_keys(gold))  # (nnz_p,)
    return SetCounts(
        tp_label=np.bincount(pred.indices[hit], minlength=n_labels),
        pred_label=np.bincount(pred.indices, minlength=n_labels),
        gold_label=np.bincount(gold.indices, minlength=n_labels),
        inter_doc=np.bincount(pred_rows[hit], minlength=n_docs),
        pred_doc=np.diff(pred.indptr).astype(np.int64),
        gold_doc=np.diff(gold.indptr).astype(np.int64),
        hit=hit,
    )


def _prf(tp: np.ndarray, n_pred: np.ndarray, n_gold: np.ndarray):
    """Precision, recall, F1 from counts (elementwise, zero_division = 0)."""
    p = safe_div(tp, n_pred)
    r = safe_div(tp, n_gold)
    f = safe_div(2 * tp, n_pred + n_gold)  # 2tp / (2tp + fp + fn)
    return p, r, f


def micro_scores(c: SetCounts) -> tuple[float, float, float]:
    r"""Micro-averaged precision, recall and F1 (the paper's headline metric).

    .. math::

        P_{micro} = \frac{\sum_j TP_j}{\sum_j (TP_j + FP_j)}, \quad
        R_{micro} = \frac{\sum_j TP_j}{\sum_j (TP_j + FN_j)}, \quad
        F1_{micro} = \frac{2 \sum_j TP_j}{\sum_j (2 TP_j + FP_j + FN_j)}

    with sums over labels ``j``; each ratio is 0 when its denominator is 0.
    Equals sklearn ``precision_recall_fscore_support(..., average="micro",
    zero_division=0)``.
    """
    p, r, f = _prf(c.tp_label.sum(), c.pred_label.sum(), c.gold_label.sum())
    return float(p), float(r), float(f)


def macro_scores(c: SetCounts) -> tuple[float, float, float]:
    r"""Macro-averaged precision, recall and F1 over the whole label universe.

    .. math::

        P_j = \frac{TP_j}{TP_j + FP_j}, \quad R_j = \frac{TP_j}{TP_j + FN_j}, \quad
        F1_j = \frac{2 TP_j}{2 TP_j + FP_j + FN_j}, \qquad
        M_{macro} = \frac{1}{L} \sum_{j=0}^{L-1} M_j

    each ratio 0 when its denominator is 0, so a label never predicted has
    ``P_j = 0``, never in gold has ``R_j = 0``, and neither has all three 0 —
    it still counts in the ``1/L``. Note ``F1_macro`` is the mean of per-label
    F1, not the F1 of ``P_macro`` and ``R_macro``. Equals sklearn
    ``average="macro", zero_division=0, labels=range(L)``.
    """
    p, r, f = _prf(c.tp_label, c.pred_label, c.gold_label)  # (L,) each
    return float(p.mean()), float(r.mean()), float(f.mean())


def weighted_scores(c: SetCounts) -> tuple[float, float, float]:
    r"""Support-weighted precision, recall and F1.

    .. math::

        M_{weighted} = \frac{\sum_j |G^{(j)}| \, M_j}{\sum_j |G^{(j)}|}

    with ``|G^{(j)}|`` the number of documents whose gold set contains label j
    and ``M_j`` the per-label metric of :func:`macro_scores`; 0 when no document
    has any gold label. Equals sklearn ``average="weighted", zero_division=0``.
    """
    p, r, f = _prf(c.tp_label, c.pred_label, c.gold_label)  # (L,) each
    total = c.gold_label.sum()
    w = c.gold_label
    return tuple(float(safe_div((w * m).sum(), total)) for m in (p, r, f))  # type: ignore[return-value]


def example_scores(c: SetCounts) -> tuple[float, float, float]:
    r"""Example-based (per-document, then averaged) precision, recall and F1.

    .. math::

        P_{ex} = \frac{1}{D} \sum_i \frac{|\hat Y_i \cap Y_i|}{|\hat Y_i|}, \quad
        R_{ex} = \frac{1}{D} \sum_i \frac{|\hat Y_i \cap Y_i|}{|Y_i|}, \quad
        F1_{ex} = \frac{1}{D} \sum_i \frac{2 |\hat Y_i \cap Y_i|}{|\hat Y_i| + |Y_i|}

    each ratio 0 when its denominator is 0: an empty prediction has precision
    0, an empty gold set recall 0, and both empty give P = R = F1 = 0 for that
    document (it still counts in ``1/D``). Equals sklearn
    ``average="samples", zero_division=0``.
    """
    p, r, f = _prf(c.inter_doc, c.pred_doc, c.gold_doc)  # (D,) each
    return float(p.mean()), float(r.mean()), float(f.mean())


def subset_accuracy(c: SetCounts) -> float:
    r"""Fraction of documents whose predicted set equals the gold set exactly.

    .. math::

        \mathrm{SubsetAcc} = \frac{1}{D} \sum_i \mathbb{1}[\hat Y_i = Y_i]

    (``|Ŷ ∩ Y| = |Ŷ| = |Y|``; two empty sets are equal). Equals sklearn
    ``accuracy_score`` on the binarised matrices.
    """
    same = (c.inter_doc == c.pred_doc) & (c.inter_doc == c.gold_doc)  # (D,)
    return float(same.mean())


def hamming_loss(c: SetCounts) -> float:
    r"""Fraction of (document, label) cells that are wrong.

    .. math::

        \mathrm{Hamming} = \frac{1}{D L} \sum_i |\hat Y_i \,\triangle\, Y_i|
        = \frac{\sum_i (|\hat Y_i| + |Y_i| - 2 |\hat Y_i \cap Y_i|)}{D L}

    Equals sklearn ``hamming_loss`` on the ``(D, L)`` binarised matrices.
    """
    wrong = c.pred_doc.sum() + c.gold_doc.sum() - 2 * c.inter_doc.sum()
    return float(wrong / (c.n_docs * c.n_labels))
