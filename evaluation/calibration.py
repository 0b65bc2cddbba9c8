r"""A calibrated set size: one score threshold τ, chosen on the dev split (beyond the paper).

A decoder decides two things per document: *which* labels (its scores rank
them; P@k and nDCG@k measure that) and *how many* (its emitted set; micro-P
against micro-R). OTSeq2Set decides the count by emitting ∅ at some of its N
steps, a sequence model by emitting EOS. This module re-decides the count of
any model with the rule every linear classifier uses: predict label ``l`` for
document ``d`` when its score reaches one global threshold,

.. math::

    \hat Y_d(\tau) = \{\, l : s_{dl} \ge \tau \,\},
    \qquad
    \tau^\star = \arg\max_{\tau \in T} \operatorname{micro-F_1}(\tau)
    = \arg\max_{\tau \in T} \frac{2\,\sum_d |\hat Y_d(\tau) \cap G_d|}
                                  {\sum_d |\hat Y_d(\tau)| + \sum_d |G_d|},

with ``τ*`` chosen on the dev split over a fixed grid ``T`` and then applied,
unchanged, to the test split. The grid is coarse on purpose (steps of 0.025 for
probabilities, :data:`PROBABILITY_GRID`): ``τ`` stays a readable number and a
dev split of a few hundred documents cannot overfit it. Ties go to the smaller
``τ``. If no ``τ`` of the grid reaches the dev micro-F1 of the model's own
decoded sets, the decoded sets are kept (``tau=None``), so calibration never
lowers dev micro-F1.

The score of a label is whatever the model ranks by: for the toolkit's
decoders, the label's largest probability over the decoding steps; for a linear
model, its margin (use :data:`MARGIN_GRID`). Gold labels the model cannot
predict (e.g. labels seen only in test) stay in ``Σ|G_d|`` and count as misses,
as in :func:`evaluation.evaluate`.

Scores may be a dense ``(D, L)`` array or a scipy sparse ``(D, L)`` matrix
holding only the entries at or above the smallest grid value (the form
:func:`xmtc` prediction collects: a few labels per document instead of ``L``).

:func:`calibrated_entry` is the whole rule as every run stores it (``metrics.json``'s
``calibrated``): ``τ`` chosen on the dev split, both splits' sets re-decided with it
and scored by :func:`evaluation.evaluate`. The neural runs call it through
:func:`xmtc.calibration.calibrate`, the linear baseline from ``examples/train_linear.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: Thresholds for probabilities: 0.025, 0.050, ..., 0.950.
PROBABILITY_GRID = np.round(np.arange(0.025, 0.951, 0.025), 3)
#: Thresholds for margins (linear classifiers; their own rule is ``score > 0``): -1.00, -0.95, ..., 1.00.
MARGIN_GRID = np.round(np.arange(-1.0, 1.0001, 0.05), 3)
#: The rule, as the ``calibrated`` entry of a run's ``metrics.json`` names it.
RULE = "score >= tau"


@dataclass(frozen=True)
class Threshold:
    """The dev-chosen threshold: ``tau`` (``None``: keep the decoded sets), the dev micro-F1 it
    reaches, and the dev micro-F1 of the decoded sets (``None`` where none were given)."""

    tau: float | None
    micro_f1: float
    decoded_micro_f1: float | None


def _entries(scores, floor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, cols, values)`` of the score entries ``>= floor`` of a dense or sparse ``(D, L)`` matrix."""
    if sp.issparse(scores):
        coo = sp.coo_matrix(scores)
        keep = coo.data >= floor
        return coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64), coo.data[keep]
    dense = np.asarray(scores)
    if dense.ndim != 2:
        raise ValueError(f"scores must be a (D, L) matrix, got shape {dense.shape}")
    rows, cols = np.nonzero(dense >= floor)
    return rows.astype(np.int64), cols.astype(np.int64), dense[rows, cols]


def _gold_lookup(gold: Sequence[Iterable[int]], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``(E,) bool``: whether label ``cols[e]`` is gold for document ``rows[e]``."""
    # one int64 code per (document, label) pair; membership by a sorted search
    width = int(max((max(g) for g in gold if len(g)), default=0)) + 1
    width = max(width, int(cols.max(initial=-1)) + 1, 1)
    codes = np.fromiter((d * width + int(l) for d, g in enumerate(gold) for l in g), dtype=np.int64)
    codes.sort()
    if len(codes) == 0:
        return np.zeros(len(rows), dtype=bool)
    query = rows * width + cols
    pos = np.searchsorted(codes, query)
    return (pos < len(codes)) & (codes[np.minimum(pos, len(codes) - 1)] == query)


def threshold_curve(scores, gold: Sequence[Iterable[int]], taus: Sequence[float] = PROBABILITY_GRID) -> dict:
    r"""Micro P/R/F1 of the rule ``score ≥ τ`` at every ``τ`` of a grid, in one pass over the scores.

    Parameters
    ----------
    scores : (D, L) dense array or scipy sparse matrix
        Each label's score per document; a sparse matrix may omit entries below ``min(taus)``.
    gold : sequence of D iterables of int
        Gold label ids per document (ids ``>= L`` allowed: they count as misses).
    taus : (K,) increasing thresholds

    Returns
    -------
    dict with ``tau (K,)``, ``tp (K,)``, ``n_pred (K,)``, ``n_gold`` (int), ``micro_precision``,
    ``micro_recall``, ``micro_f1`` (each ``(K,)``).
    """
    taus = np.asarray(taus, dtype=np.float64)
    if taus.ndim != 1 or len(taus) == 0 or np.any(np.diff(taus) <= 0):
        raise ValueError("taus must be a non-empty increasing 1-D grid")
    n_docs = scores.shape[0]
    if len(gold) != n_docs:
        raise ValueError(f"gold has {len(gold)} documents, scores {n_docs}")
    gold = [set(int(l) for l in g) for g in gold]
    rows, cols, values = _entries(scores, float(taus[0]))
    is_gold = _gold_lookup(gold, rows, cols)
    # k[e] = how many thresholds entry e reaches; it is predicted at tau_j for every j < k[e]
    k = np.searchsorted(taus, values.astype(np.float64), side="right")  # (E,)
    reach = np.bincount(k, minlength=len(taus) + 1)  # (K + 1,)
    reach_gold = np.bincount(k[is_gold], minlength=len(taus) + 1)
    n_pred = reach[::-1].cumsum()[::-1][1:]  # (K,): entries with k > j
    tp = reach_gold[::-1].cumsum()[::-1][1:]
    n_gold = sum(len(g) for g in gold)
    precision = tp / np.maximum(n_pred, 1)
    recall = tp / max(n_gold, 1)
    f1 = 2 * tp / np.maximum(n_pred + n_gold, 1)
    return {"tau": taus, "tp": tp, "n_pred": n_pred, "n_gold": n_gold, "micro_precision": precision,
            "micro_recall": recall, "micro_f1": f1}


def decoded_micro_f1(decoded: Sequence[Iterable[int]], gold: Sequence[Iterable[int]]) -> float:
    r"""Micro-F1 of label sets, :math:`2\sum|P_d \cap G_d| / (\sum|P_d| + \sum|G_d|)`."""
    from .significance import document_counts, micro_f1_from_counts

    return float(micro_f1_from_counts(document_counts(decoded, gold)))


def choose_threshold(scores, gold: Sequence[Iterable[int]], decoded: Sequence[Iterable[int]] | None = None,
                     taus: Sequence[float] = PROBABILITY_GRID) -> Threshold:
    """The grid's ``τ`` with the highest micro-F1 (ties: the smaller ``τ``); keeps the decoded sets
    (``tau=None``) where they score higher. Call it on the dev split. Arguments as :func:`threshold_curve`;
    ``decoded``: the model's own sets, D iterables of int."""
    curve = threshold_curve(scores, gold, taus)
    j = int(np.argmax(curve["micro_f1"]))  # first maximum: the smallest tau among ties
    best = float(curve["micro_f1"][j])
    base = decoded_micro_f1(decoded, gold) if decoded is not None else None
    if base is not None and base > best:
        return Threshold(None, base, base)
    return Threshold(float(curve["tau"][j]), best, base)


def apply_threshold(scores, tau: float) -> list[set[int]]:
    """``[{l : scores[d, l] >= tau} for d]`` for a dense or sparse ``(D, L)`` score matrix."""
    rows, cols, _ = _entries(scores, float(tau))
    out: list[set[int]] = [set() for _ in range(scores.shape[0])]
    for d, l in zip(rows.tolist(), cols.tolist()):
        out[d].add(l)
    return out


@dataclass(frozen=True)
class SplitScores:
    """What a model gave for one split, in the split's document order (D documents, L labels).

    decoded : D sets of label ids, the model's own rule (its decoded sets; ``score > 0`` for a linear model)
    scores : (D, L) dense array or scipy sparse matrix, each label's score (sparse: at least every
        entry ``>= min(taus)``)
    gold : D iterables of gold label ids (ids the model cannot predict count as misses)
    top_ids, top_scores : (D, k) arrays, the ``k`` best-scoring labels (``-1`` ids pad), for the ranking metrics
    """

    decoded: Sequence[Iterable[int]]
    scores: object
    gold: Sequence[Iterable[int]]
    top_ids: np.ndarray
    top_scores: np.ndarray


def calibrated_entry(valid: SplitScores, test: SplitScores, n_labels: int, *,
                     taus: Sequence[float] = PROBABILITY_GRID, **evaluate_kwargs) -> dict:
    """``metrics.json``'s ``calibrated`` entry: ``τ`` chosen on ``valid`` (:func:`choose_threshold`),
    then both splits' sets ``score ≥ τ`` (the decoded sets where ``τ`` is ``None``) scored by
    :func:`evaluation.evaluate` with the splits' top-``k`` as ranking scores.

    Returns ``{"rule": RULE, "tau": float | None, "valid": {...}, "test": {...}}``; ``valid`` and
    ``test`` hold the keys ``evaluate(..., **evaluate_kwargs)`` returns (``train_label_counts``,
    ``n_train_docs``, ... as for the decoded metrics, so both carry the same keys).
    """
    from .core import evaluate

    choice = choose_threshold(valid.scores, valid.gold, valid.decoded, taus)
    out: dict = {"rule": RULE, "tau": choice.tau}
    for name, split in (("valid", valid), ("test", test)):
        sets = split.decoded if choice.tau is None else apply_threshold(split.scores, choice.tau)
        out[name] = evaluate(sets, split.gold, n_labels, scores=(split.top_ids, split.top_scores),
                             **evaluate_kwargs)
    return out

__all__ = ["MARGIN_GRID", "PROBABILITY_GRID", "RULE", "SplitScores", "Threshold", "apply_threshold",
           "calibrated_entry", "choose_threshold", "decoded_micro_f1", "threshold_curve"]
