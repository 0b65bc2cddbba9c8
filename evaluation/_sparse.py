"""Input conversion: label sets and scores to sparse / top-k form.

Everything the metrics consume is built here, and nothing here ever allocates a
dense documents x labels array (except when the caller already passed one as
``scores``):

- label sets (any iterables of ints, or a scipy sparse matrix) become a binary
  CSR matrix ``(D, L)`` with sorted, unique column indices;
- scores (dense ``(D, L)``, sparse ``(D, L)``, or a top-k pair
  ``(top_ids (D, k), top_scores (D, k))``) become a ranked id matrix
  ``(D, k)`` with ``-1`` where a document has fewer than ``k`` scored labels.

Shape letters: D documents, L labels (``n_labels``), k ranks.
"""

from __future__ import annotations

from itertools import chain
from typing import Any, Iterable, Sequence

import numpy as np
import scipy.sparse as sp

__all__ = ["to_csr", "ranked_labels", "to_numpy", "duplicate_counts"]

#: Dense scores are ranked in row blocks of about this many cells (bounds memory).
DENSE_BLOCK_CELLS = 1 << 22


def to_numpy(x: Any) -> np.ndarray:
    """Duck-typed conversion of a numpy array / torch tensor / sequence to numpy.

    torch is never imported: anything with ``.detach()`` / ``.cpu()`` /
    ``.numpy()`` is converted through those methods.
    """
    if hasattr(x, "detach"):
        x = x.detach()
    if hasattr(x, "cpu"):
        x = x.cpu()
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    return np.asarray(x)


def _as_items(seq: Iterable[Iterable[int]]) -> list:
    """Materialise each document's labels into something with ``len()``."""
    out = []
    for labels in seq:
        if isinstance(labels, (set, frozenset, list, tuple, range)):
            out.append(labels)
        elif isinstance(labels, np.ndarray) or hasattr(labels, "detach"):
            out.append(to_numpy(labels).reshape(-1))
        else:
            out.append(list(labels))
    return out


def _flatten(seq: Iterable[Iterable[int]], name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Row ids and label ids of every (document, label) entry, repeats kept.

    Returns
    -------
    rows, cols : ndarray of int64, shape (nnz,)
    n_docs : int
    """
    items = _as_items(seq)
    lengths = np.fromiter((len(x) for x in items), dtype=np.int64, count=len(items))  # (D,)
    total = int(lengths.sum())
    if items and all(isinstance(x, np.ndarray) for x in items):
        flat = np.concatenate(items).astype(np.float64) if total else np.zeros(0)  # (nnz,)
    else:
        # float64 first so that non-integral ids are rejected instead of truncated
        flat = np.fromiter(chain.from_iterable(items), dtype=np.float64, count=total)  # (nnz,)
    ints = flat.astype(np.int64)
    bad = ~np.isfinite(flat) | (ints != flat)
    if bad.any():
        pos = int(np.argmax(bad))
        doc = int(np.searchsorted(np.cumsum(lengths), pos, side="right"))
        raise ValueError(f"{name}: document {doc} has a non-integer label id {float(flat[pos])!r}")
    rows = np.repeat(np.arange(len(items), dtype=np.int64), lengths)  # (nnz,)
    return rows, ints, len(items)


def sorted_unique(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an int array (sort + neighbour test, skips the sort if sorted)."""
    if keys.size and not (keys[1:] >= keys[:-1]).all():
        keys = np.sort(keys)
    if keys.size == 0:
        return keys
    keep = np.empty(keys.size, dtype=bool)
    keep[0] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


def _check_range(rows: np.ndarray, cols: np.ndarray, n_labels: int, name: str) -> None:
    bad = (cols < 0) | (cols >= n_labels)
    if bad.any():
        pos = int(np.argmax(bad))
        raise ValueError(
            f"{name}: document {int(rows[pos])} has label id {int(cols[pos])}, "
            f"outside range(n_labels={n_labels})"
        )


def to_csr(labels: Any, n_labels: int, name: str = "labels") -> sp.csr_matrix:
    """Binary CSR ``(D, n_labels)`` of label sets, sorted unique indices.

    Parameters
    ----------
    labels : sequence of iterables of int, or scipy sparse matrix (D, L')
        Label-id sets; repeats inside a document collapse (set semantics). For a
        sparse matrix, a label is present where a *nonzero* value is stored;
        ``L' <= n_labels`` is padded, wider matrices are accepted as long as
        no nonzero lies in a column ``>= n_labels``.
    n_labels : int
        Size of the label universe; every id must be in ``range(n_labels)``.
    name : str
        Used in error messages ("predicted", "gold", ...).

    Returns
    -------
    scipy.sparse.csr_matrix, shape (D, n_labels), dtype int8, values 1.

    Raises
    ------
    ValueError
        On an id outside ``range(n_labels)``, naming the document and the id.
    """
    if sp.issparse(labels):
        coo = sp.coo_matrix(labels)
        keep = coo.data != 0
        rows = coo.row[keep].astype(np.int64)
        cols = coo.col[keep].astype(np.int64)
        n_docs = coo.shape[0]
    else:
        if isinstance(labels, (str, bytes)):
            raise TypeError(f"{name}: expected a sequence of label-id sets, got a string")
        rows, cols, n_docs = _flatten(labels, name)
    _check_range(rows, cols, n_labels, name)
    # dedupe and sort through one int64 key per entry (D * L < 2**63)
    keys = sorted_unique(rows * np.int64(n_labels) + cols)  # (nnz,)
    r, c = np.divmod(keys, np.int64(n_labels))
    indptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=n_docs), out=indptr[1:])
    data = np.ones(keys.size, dtype=np.int8)
    return sp.csr_matrix((data, c, indptr), shape=(n_docs, n_labels))


def duplicate_counts(raw: Sequence[Iterable[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-document emitted and distinct label counts of raw (repeating) outputs.

    Returns
    -------
    emitted, distinct : ndarray of int64, shape (D,)
    """
    rows, cols, n_docs = _flatten(raw, "raw_predictions")
    emitted = np.bincount(rows, minlength=n_docs)  # (D,)
    if cols.size == 0:
        return emitted, np.zeros(n_docs, dtype=np.int64)
    cols = cols - cols.min()  # ids may be any integers here
    offset = np.int64(cols.max() + 1)
    keys = sorted_unique(rows * offset + cols)  # one key per distinct (doc, id)
    distinct = np.bincount(keys // offset, minlength=n_docs)  # (D,)
    return emitted, distinct


def _sort_within_rows(rows: np.ndarray, ids: np.ndarray, vals: np.ndarray, n_docs: int, k: int) -> np.ndarray:
    """Rank (row, id, score) triples: score descending, ties to the lower id.

    Returns the ranked ids ``(D, k)``, ``-1`` where a row has fewer than k.
    """
    order = np.lexsort((ids, -vals, rows))  # row, then score desc, then id asc
    rows, ids = rows[order], ids[order]
    counts = np.bincount(rows, minlength=n_docs)  # (D,)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))  # (D,)
    rank = np.arange(rows.size) - starts[rows]  # position inside the row
    keep = rank < k
    out = np.full((n_docs, k), -1, dtype=np.int64)  # (D, k)
    out[rows[keep], rank[keep]] = ids[keep]
    return out


def ranked_labels(scores: Any, n_docs: int, n_labels: int, k: int) -> np.ndarray:
    """Top-k label ids per document from any supported score representation.

    Parameters
    ----------
    scores : one of
        - dense array-like ``(D, L)`` (numpy, torch, ...) of per-label scores;
        - scipy sparse matrix ``(D, L)``: only *stored* entries are candidates
          (an unstored label is never ranked, even if all stored scores are
          negative);
        - tuple ``(top_ids, top_scores)`` of arrays ``(D, k')``: candidate ids
          with their scores (any order; ``-1`` ids are padding), or
          ``(top_ids, None)`` when ``top_ids`` is already in rank order.
          A label repeated in a row counts once, at its best rank; repeated
          stored entries of a sparse matrix add up (scipy's convention).
    n_docs, n_labels : int
    k : int
        Number of ranks to return.

    Returns
    -------
    ndarray of int64, shape (D, k)
        Label ids by decreasing score, ties broken towards the lower label id;
        ``-1`` marks ranks a document has no candidate for (counted as misses).
    """
    if isinstance(scores, tuple):
        if len(scores) != 2:
            raise ValueError("top-k scores must be a pair (top_ids, top_scores)")
        ids = to_numpy(scores[0]).astype(np.int64)
        if ids.ndim != 2 or ids.shape[0] != n_docs:
            raise ValueError(f"top_ids must have shape (n_docs={n_docs}, k), got {ids.shape}")
        rows = np.repeat(np.arange(n_docs, dtype=np.int64), ids.shape[1])  # (D*k',)
        flat = ids.reshape(-1)
        real = flat >= 0
        _check_range(rows[real], flat[real], n_labels, "scores")
        if scores[1] is None:  # already ranked: keep column order
            out = np.full((n_docs, k), -1, dtype=np.int64)
            kk = min(k, ids.shape[1])
            out[:, :kk] = _drop_repeats(np.where(ids < 0, -1, ids))[:, :kk]
            return out
        vals = to_numpy(scores[1]).astype(np.float64)
        if vals.shape != ids.shape:
            raise ValueError(f"top_scores shape {vals.shape} != top_ids shape {ids.shape}")
        _check_nan(vals)
        pad = ids < 0  # (D, k')
        vals = np.where(pad, -np.inf, vals)
        big = np.iinfo(np.int64).max  # padding sorts after every real id, even at score -inf
        order = np.lexsort((np.where(pad, big, ids), -vals), axis=-1)  # (D, k') score desc, id asc
        ranked = np.where(pad, -1, ids)
        ranked = np.take_along_axis(ranked, order, axis=1)  # (D, k')
        ranked = _drop_repeats(ranked)
        out = np.full((n_docs, k), -1, dtype=np.int64)
        kk = min(k, ids.shape[1])
        out[:, :kk] = ranked[:, :kk]
        return out
    if sp.issparse(scores):
        csr = sp.csr_matrix(scores, copy=True)
        csr.sum_duplicates()  # scipy's convention: repeated (row, col) entries add up
        coo = csr.tocoo()
        if coo.shape[0] != n_docs:
            raise ValueError(f"scores has {coo.shape[0]} rows, expected {n_docs}")
        rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
        _check_range(rows, cols, n_labels, "scores")
        vals = coo.data.astype(np.float64)
        _check_nan(vals)
        return _sort_within_rows(rows, cols, vals, n_docs, k)
    dense = to_numpy(scores)
    if dense.ndim != 2 or dense.shape[0] != n_docs or dense.shape[1] > n_labels:
        raise ValueError(f"dense scores must have shape (n_docs={n_docs}, n_labels={n_labels}), got {dense.shape}")
    if not np.issubdtype(dense.dtype, np.floating):
        dense = dense.astype(np.float64)
    out = np.full((n_docs, k), -1, dtype=np.int64)  # (D, k)
    kk = min(k, dense.shape[1])
    if kk == 0 or n_docs == 0:
        return out
    step = max(1, DENSE_BLOCK_CELLS // dense.shape[1])  # row blocks bound the temporaries
    for start in range(0, n_docs, step):
        block = dense[start : start + step]  # (b, L)
        _check_nan(block)
        out[start : start + step, :kk] = _dense_top_k(block, kk)
    return out


def _dense_top_k(block: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k ids of each row of a dense block, ties to the lower id; (b, k).

    Linear in the block size (``np.partition``, no full sort).
    """
    b, n_cols = block.shape
    thresh = np.partition(block, n_cols - k, axis=1)[:, n_cols - k]  # (b,) k-th largest
    above = block > thresh[:, None]  # (b, L)
    equal = block == thresh[:, None]  # (b, L)
    need = k - above.sum(axis=1)  # (b,) how many tied entries to take
    take = above | equal
    tied = np.nonzero(equal.sum(axis=1) > need)[0]  # rows where ties straddle rank k
    if tied.size:  # keep the lowest ids among the tied entries
        eq = equal[tied]
        take[tied] = above[tied] | (eq & (np.cumsum(eq, axis=1, dtype=np.int32) <= need[tied, None]))
    rows, cols = np.nonzero(take)  # exactly k per row, row-major
    return _sort_within_rows(rows, cols, block[rows, cols].astype(np.float64), b, k)


def _drop_repeats(ranked: np.ndarray) -> np.ndarray:
    """Keep the first occurrence of each id per row, shifting later ranks up.

    ``ranked (D, k')`` in rank order with ``-1`` padding; a repeated id counts
    once, at its best rank (so P@k can never count a label twice).
    """
    d, kp = ranked.shape
    if kp < 2:
        return ranked
    pos = np.broadcast_to(np.arange(kp), ranked.shape)
    by_id = np.lexsort((pos, ranked), axis=-1)  # (D, k') id asc, then rank asc
    sorted_ids = np.take_along_axis(ranked, by_id, axis=1)
    rep_sorted = np.zeros(ranked.shape, dtype=bool)
    rep_sorted[:, 1:] = (sorted_ids[:, 1:] == sorted_ids[:, :-1]) & (sorted_ids[:, 1:] >= 0)
    if not rep_sorted.any():
        return ranked
    rep = np.zeros(ranked.shape, dtype=bool)
    np.put_along_axis(rep, by_id, rep_sorted, axis=1)  # back to rank positions
    ranked = np.where(rep, -1, ranked)
    drop = ranked < 0
    return np.take_along_axis(ranked, np.argsort(drop, axis=1, kind="stable"), axis=1)  # pads last


def _check_nan(vals: np.ndarray) -> None:
    if np.isnan(vals).any():
        raise ValueError("scores contain NaN")
