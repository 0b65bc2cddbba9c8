"""Ranking metrics from per-label scores: P@k, nDCG@k, PSP@k.

These are the standard extreme-classification metrics (Jain et al., KDD 2016;
the definitions of the Extreme Classification Repository / pyxclib). They rank
labels by score, so they need ``scores``; the set metrics do not.

Conventions (stated once, used everywhere here):

- Ranking: by score descending, ties broken towards the **lower label id**.
- A document with fewer than k scored candidates (top-k input with k' < k, a
  sparse row with few entries, or L < k) gets misses at the missing ranks;
  P@k still divides by k.
- A document with an empty gold set scores 0 in P@k and nDCG@k and counts in
  the mean over all D documents.

Input is the ranked id matrix ``ranked (D, k)`` from
``evaluation._sparse.ranked_labels`` (``-1`` = no candidate) and the gold CSR.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._sparse import _sort_within_rows
from .sets import entry_keys, member, safe_div

__all__ = ["rank_hits", "precision_at_k", "ndcg_at_k", "inverse_propensity", "best_ranking", "psp_at_k"]


def rank_hits(ranked: np.ndarray, gold: sp.csr_matrix) -> np.ndarray:
    """``hits[i, r] = ranked[i, r] ∈ G_i``, shape (D, k), bool (``-1`` is a miss)."""
    n_docs, k = ranked.shape
    rows = np.repeat(np.arange(n_docs, dtype=np.int64), k)  # (D*k,)
    ids = ranked.reshape(-1)  # (D*k,)
    keys = rows * np.int64(gold.shape[1]) + ids
    hits = member(keys, entry_keys(gold)) & (ids >= 0)
    return hits.reshape(n_docs, k)  # (D, k)


def precision_at_k(hits: np.ndarray, k: int) -> float:
    r"""Precision at k.

    .. math::

        P@k = \frac{1}{D} \sum_{i=1}^{D} \frac{1}{k} \sum_{r=1}^{k}
              \mathbb{1}[\pi_i(r) \in Y_i]

    where ``π_i(r)`` is the label ranked r-th for document i.

    Parameters
    ----------
    hits : ndarray of bool, shape (D, k_max), k_max >= k
    """
    return float(hits[:, :k].sum(axis=1).mean() / k) if hits.shape[0] else 0.0


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))  # (k,) 1/log2(r+1), r = 1..k


def ndcg_at_k(hits: np.ndarray, gold_sizes: np.ndarray, k: int) -> float:
    r"""Normalised discounted cumulative gain at k (binary relevance).

    .. math::

        DCG@k_i = \sum_{r=1}^{k} \frac{\mathbb{1}[\pi_i(r) \in Y_i]}{\log_2(r + 1)},
        \quad
        IDCG@k_i = \sum_{r=1}^{\min(k, |Y_i|)} \frac{1}{\log_2(r + 1)},
        \quad
        nDCG@k = \frac{1}{D} \sum_i \frac{DCG@k_i}{IDCG@k_i}

    with the ratio 0 for a document with empty gold (``IDCG = 0``).

    Parameters
    ----------
    hits : ndarray of bool, shape (D, k_max), k_max >= k
    gold_sizes : ndarray of int, shape (D,)
        ``|Y_i|``.
    """
    if hits.shape[0] == 0:
        return 0.0
    disc = _discounts(k)  # (k,)
    dcg = hits[:, :k] @ disc  # (D,)
    ideal = np.concatenate(([0.0], np.cumsum(disc)))  # (k+1,) IDCG by min(k, |Y|)
    idcg = ideal[np.minimum(gold_sizes, k)]  # (D,)
    return float(safe_div(dcg, idcg).mean())


def inverse_propensity(train_label_counts: np.ndarray, n_train_docs: int, a: float = 0.55, b: float = 1.5) -> np.ndarray:
    r"""Inverse label propensities of Jain et al. (2016).

    .. math::

        \frac{1}{p_j} = 1 + C \, (N_j + B)^{-A}, \qquad C = (\ln N - 1)(B + 1)^{A}

    with ``N_j`` the training frequency of label j and ``N`` the number of
    training documents. Usual (A, B): 0.55, 1.5 (default); Amazon 0.6, 2.6;
    Wikipedia 0.5, 0.4.

    Parameters
    ----------
    train_label_counts : array-like, shape (L,)
    n_train_docs : int

    Returns
    -------
    ndarray of float64, shape (L,)
    """
    counts = np.asarray(train_label_counts, dtype=np.float64)
    c = (np.log(n_train_docs) - 1.0) * (b + 1.0) ** a
    return 1.0 + c * np.power(counts + b, -a)


def best_ranking(gold: sp.csr_matrix, inv_prop: np.ndarray, k: int) -> np.ndarray:
    """Each document's gold labels by decreasing ``1/p_j`` (ties to the lower id), shape (D, k), ``-1`` padded."""
    rows = np.repeat(np.arange(gold.shape[0], dtype=np.int64), np.diff(gold.indptr))  # (nnz,)
    cols = gold.indices.astype(np.int64)
    return _sort_within_rows(rows, cols, inv_prop[cols], gold.shape[0], k)  # (D, k)


def psp_at_k(ranked: np.ndarray, hits: np.ndarray, best: np.ndarray, inv_prop: np.ndarray, k: int) -> float:
    r"""Propensity-scored precision at k, normalised by its best attainable value.

    .. math::

        PSP@k = \frac{\sum_i \sum_{r=1}^{k} \mathbb{1}[\pi_i(r) \in Y_i] / p_{\pi_i(r)}}
                     {\sum_i \sum_{r=1}^{k} \mathbb{1}[\sigma_i(r) \in Y_i] / p_{\sigma_i(r)}}

    where ``σ_i`` ranks document i's gold labels by decreasing ``1/p_j`` (the
    best ranking possible, :func:`best_ranking`). This is the pyxclib
    ``psprecision`` definition (a ratio of dataset sums; the two ``1/(Dk)``
    factors cancel); 0 when the denominator is 0.

    Parameters
    ----------
    ranked : ndarray of int64, shape (D, k_max)
    hits : ndarray of bool, shape (D, k_max)
    best : ndarray of int64, shape (D, k_best), k_best >= k, from :func:`best_ranking`
    inv_prop : ndarray, shape (L,)
    """
    ids = np.where(ranked[:, :k] >= 0, ranked[:, :k], 0)  # (D, k)
    num = (hits[:, :k] * inv_prop[ids]).sum()
    best = best[:, :k]  # (D, k)
    den = np.where(best >= 0, inv_prop[np.maximum(best, 0)], 0.0).sum()
    return float(safe_div(num, den))
