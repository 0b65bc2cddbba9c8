"""Significance of a micro-F1 difference: the paired bootstrap over test documents.

The results tables put OTSeq2Set beside the sequence models (SGM, BM, ...) on
micro-F1, the headline metric of OTSeq2Set (EMNLP 2022, Sec. 4.2), as a mean ±
std over training seeds. Two sources of uncertainty are kept apart:

- *training randomness*: the spread over seeds, :func:`seed_summary`;
- *the finite test sample*: would the difference survive another draw of test
  documents? :func:`paired_bootstrap` (Efron & Tibshirani 1993, ch. 16;
  Koehn 2004; Berg-Kirkpatrick et al. 2012).
- *training randomness as a test*: would the difference survive retraining
  with other seeds? :func:`welch_seeds`, Welch's t-test over the per-seed
  scores (Reimers & Gurevych 2017).

A claim that one model beats another needs both: the bootstrap holds the
trained models fixed, so with a few seeds whose spread exceeds the test-sample
noise it can call a difference significant that another set of seeds would
reverse.

Micro-F1 is a ratio of sums over documents, not a mean of per-document scores,
so a paired t-test over documents does not apply. Its sufficient statistics
are each document's ``(TP, FP, FN)`` (:func:`document_counts`); resampling
documents keeps each document's three counts together, and resampling the
same documents for both models keeps the comparison paired.

Shape letters: S seeds, D test documents, R bootstrap resamples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import scipy.sparse as sp

from ._sparse import _flatten, sorted_unique
from .sets import member

__all__ = ["document_counts", "micro_f1_from_counts", "paired_bootstrap", "BootstrapResult", "seed_summary",
           "welch_seeds", "SeedTestResult"]

#: Resampled differences within this of the observed extreme count as extreme (rounding ties).
TIE_TOL = 1e-12


def _entries(labels: Any, name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Row ids, label ids (int64, shape (nnz,)) and the number of documents of label sets."""
    if sp.issparse(labels):
        coo = sp.coo_matrix(labels)
        keep = coo.data != 0
        return coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64), coo.shape[0]
    if isinstance(labels, (str, bytes)):
        raise TypeError(f"{name}: expected a sequence of label-id sets, got a string")
    rows, cols, n_docs = _flatten(labels, name)
    if cols.size and cols.min() < 0:
        pos = int(np.argmax(cols < 0))
        raise ValueError(f"{name}: document {int(rows[pos])} has a negative label id {int(cols[pos])}")
    return rows, cols, n_docs


def document_counts(predicted: Any, gold: Any) -> np.ndarray:
    r"""Per-document true positives, false positives and false negatives.

    .. math::

        TP_i = |\hat Y_i \cap Y_i|, \quad FP_i = |\hat Y_i \setminus Y_i|, \quad
        FN_i = |Y_i \setminus \hat Y_i|

    Parameters
    ----------
    predicted, gold : sequence of iterables of int, or scipy sparse matrix (D, L)
        Label-id sets of the same D documents, as accepted by
        :func:`evaluation.evaluate`: repeats collapse, order is irrelevant, ids
        are non-negative integers (no ``n_labels`` is needed here).

    Returns
    -------
    ndarray of int64, shape (D, 3)
        Columns ``TP, FP, FN``; ``sum(axis=0)`` gives the micro counts, so
        :func:`micro_f1_from_counts` of it equals ``evaluate(...)["micro_f1"]``.

    Raises
    ------
    ValueError
        On a different number of predicted and gold documents, or a negative
        or non-integer id (naming the argument and document).
    """
    p_rows, p_cols, n_docs = _entries(predicted, "predicted")
    g_rows, g_cols, n_gold = _entries(gold, "gold")
    if n_docs != n_gold:
        raise ValueError(f"predicted has {n_docs} documents, gold has {n_gold}")
    width = np.int64(max(p_cols.max(initial=0), g_cols.max(initial=0)) + 1)  # > every id
    p_keys = sorted_unique(p_rows * width + p_cols)  # (nnz_p,) one key per distinct (doc, label)
    g_keys = sorted_unique(g_rows * width + g_cols)  # (nnz_g,)
    hit = member(p_keys, g_keys)  # (nnz_p,)
    n_pred = np.bincount(p_keys // width, minlength=n_docs)  # (D,)
    n_true = np.bincount(g_keys // width, minlength=n_docs)  # (D,)
    tp = np.bincount(p_keys[hit] // width, minlength=n_docs)  # (D,)
    return np.stack([tp, n_pred - tp, n_true - tp], axis=1).astype(np.int64)  # (D, 3)


def _check_counts(counts: Any, name: str, max_ndim: int | None = None) -> np.ndarray:
    """``counts`` as int64, shape (..., D, 3) with D >= 1 (at most ``max_ndim`` axes), integral, >= 0."""
    arr = np.asarray(counts)
    if arr.ndim < 2 or (max_ndim and arr.ndim > max_ndim) or arr.shape[-1] != 3 or arr.shape[-2] == 0:
        want = "(D, 3) or (S, D, 3)" if max_ndim == 3 else "(..., D, 3)"
        raise ValueError(f"{name} must have shape {want} with D >= 1, got {arr.shape}")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{name} must hold integer counts, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.integer) and not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
        raise ValueError(f"{name} must hold integer counts (found a non-integer or non-finite value)")
    if (arr < 0).any():
        raise ValueError(f"{name} has negative counts")
    return arr.astype(np.int64)


def _f1_from_totals(totals: np.ndarray) -> np.ndarray:
    """Micro-F1 of summed ``(TP, FP, FN)`` totals, shape (..., 3) -> (...), 0 on a zero denominator."""
    num = 2.0 * totals[..., 0]
    den = num + totals[..., 1] + totals[..., 2]
    out = np.zeros(den.shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


def micro_f1_from_counts(counts: Any) -> np.ndarray:
    r"""Micro-F1 over the document axis of per-document counts.

    .. math::

        F1_{micro} = \frac{2 \sum_i TP_i}{\sum_i (2 TP_i + FP_i + FN_i)}

    (0 when the denominator is 0), the same value as :func:`evaluation.evaluate`.

    Parameters
    ----------
    counts : array-like of int, shape (..., D, 3)
        ``TP, FP, FN`` per document (:func:`document_counts`), any leading axes
        (e.g. seeds).

    Returns
    -------
    ndarray of float64, shape (...)
        A 0-d array for ``(D, 3)`` input.
    """
    c = _check_counts(counts, "counts")
    return _f1_from_totals(c.sum(axis=-2))  # (..., 3) -> (...)


@dataclass(frozen=True)
class BootstrapResult:
    """Outcome of :func:`paired_bootstrap`.

    Attributes
    ----------
    delta : float
        Observed difference of seed-mean micro-F1, A minus B.
    ci_low, ci_high : float
        Percentile confidence interval of ``delta`` (95% by default).
    p_value : float
        Two-sided p-value of H0: no difference, in ``[1 / (R + 1), 1]``.
    n_resamples, n_documents : int
        R and D.
    f1_a, f1_b : float
        Seed-mean micro-F1 of each model on the full test set.
    replicates : ndarray of float64, shape (R,)
        The resampled differences δ*, in draw order.
    """

    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    n_resamples: int
    n_documents: int
    f1_a: float
    f1_b: float
    replicates: np.ndarray = field(repr=False, compare=False)


def paired_bootstrap(
    counts_a: Any,
    counts_b: Any,
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
    chunk: int = 256,
    confidence: float = 0.95,
) -> BootstrapResult:
    r"""Paired bootstrap test of a micro-F1 difference over resampled test documents.

    With ``C^a_s`` the ``(D, 3)`` counts of seed ``s`` of model A (``S_a`` seeds),
    likewise ``C^b_t`` (``S_b`` seeds; seeds of A and B need not correspond),
    and per-document multiplicities ``w`` (all ones for the observed test set),

    .. math::

        F1_w(C) = \frac{2 \sum_i w_i TP_i}{\sum_i w_i (2 TP_i + FP_i + FN_i)}, \quad
        \delta_w = \frac{1}{S_a} \sum_s F1_w(C^a_s) - \frac{1}{S_b} \sum_t F1_w(C^b_t).

    Each resample ``r`` draws D documents with replacement,
    ``w_r \sim \mathrm{Multinomial}(D, \mathbf{1}/D)``, the **same** ``w_r``
    for every seed of both models (this is what pairs the test), and
    ``\delta^*_r = \delta_{w_r}``. Then

    .. math::

        p = \frac{1 + \#\{r : |\delta^*_r - \delta| \ge |\delta|\}}{1 + R}, \qquad
        CI = [q_{\alpha/2}(\delta^*), q_{1-\alpha/2}(\delta^*)].

    Why this test: micro-F1 is a ratio of sums over documents, not a mean over
    documents, so a t-test over documents does not apply; resampling whole
    documents keeps each document's ``TP, FP, FN`` together, and resampling
    them jointly for A and B keeps their correlation (the paired design). It
    measures the uncertainty due to the finite test sample; the spread over
    seeds (:func:`seed_summary`) measures training randomness. Report both.

    p-value convention: ``δ* − δ`` approximates the sampling distribution of
    the difference around its true value, so under H0 (true difference 0) it
    stands for the null distribution of δ — the *shifted null* of Koehn 2004
    and Berg-Kirkpatrick et al. 2012 (whose one-sided form is ``δ* > 2δ``),
    here two-sided. The ``+1`` in numerator and denominator counts the observed
    sample as one draw (Davison & Hinkley 1997, §4.2; Phipson & Smyth 2010):
    a finite Monte Carlo sample never justifies ``p = 0``, the smallest
    reportable value is ``1 / (R + 1)``, and the test's size stays at most α.
    Identical predictions give every ``δ* = δ = 0``, hence ``p = 1`` exactly.
    Differences within :data:`TIE_TOL` of the boundary count as extreme (ties
    up to rounding, the conservative side).

    Parameters
    ----------
    counts_a, counts_b : array-like of int, shape (D, 3) or (S, D, 3)
        Per-document ``TP, FP, FN`` (:func:`document_counts`) of each seed of
        each model on the same D test documents in the same order (checked:
        ``TP + FN``, the gold set size, must agree across all of them).
    n_resamples : int
        R >= 1000.
    seed : int
        Seeds ``numpy.random.default_rng``. Resample ``r`` is the ``r``-th call
        ``rng.integers(0, D, size=D)``, so the result does not depend on ``chunk``.
    chunk : int
        Resamples per block; bounds memory to a ``(chunk, D)`` float64 block.
    confidence : float
        Level of the percentile interval, in (0, 1).

    Returns
    -------
    BootstrapResult
    """
    a = _check_counts(counts_a, "counts_a", 3)
    b = _check_counts(counts_b, "counts_b", 3)
    a, b = a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])  # (S_a, D, 3), (S_b, D, 3)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"counts_a has {a.shape[1]} documents, counts_b has {b.shape[1]}")
    gold = np.concatenate([a[..., 0] + a[..., 2], b[..., 0] + b[..., 2]])  # (S_a + S_b, D)
    differs = (gold != gold[:1]).any(axis=0)  # (D,)
    if differs.any():
        doc = int(np.argmax(differs))
        raise ValueError(
            f"counts_a and counts_b disagree on TP + FN (the gold size) of document {doc}: "
            "they must count the same documents in the same order"
        )
    if int(n_resamples) < 1000:
        raise ValueError(f"n_resamples must be >= 1000, got {n_resamples}")
    if int(chunk) < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    n_res, n_docs, s_a = int(n_resamples), a.shape[1], a.shape[0]

    def seed_mean_delta(totals: np.ndarray) -> np.ndarray:
        """δ from totals (..., S_a + S_b, 3); seeds sorted so the mean ignores their order."""
        f1 = _f1_from_totals(totals)  # (..., S_a + S_b)
        return np.sort(f1[..., :s_a], axis=-1).mean(-1) - np.sort(f1[..., s_a:], axis=-1).mean(-1)

    both = np.concatenate([a, b]).transpose(1, 0, 2).reshape(n_docs, -1).astype(np.float64)  # (D, (S_a+S_b)*3)
    observed = both.sum(axis=0).reshape(-1, 3)  # (S_a + S_b, 3)
    delta = float(seed_mean_delta(observed))
    f1_obs = _f1_from_totals(observed)  # (S_a + S_b,)

    rng = np.random.default_rng(seed)
    reps = np.empty(n_res)  # (R,)
    for start in range(0, n_res, int(chunk)):
        c = min(int(chunk), n_res - start)
        w = np.empty((c, n_docs))  # (c, D) multiplicity of each document in each resample
        for r in range(c):
            w[r] = np.bincount(rng.integers(0, n_docs, size=n_docs), minlength=n_docs)
        # integer-valued float64 sums below 2**53 are exact, whatever the summation order
        totals = (w @ both).reshape(c, -1, 3)  # (c, S_a + S_b, 3)
        reps[start : start + c] = seed_mean_delta(totals)

    extreme = np.abs(reps - delta) >= abs(delta) - TIE_TOL  # (R,)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    return BootstrapResult(
        delta=delta,
        ci_low=float(lo),
        ci_high=float(hi),
        p_value=float((1 + extreme.sum()) / (1 + n_res)),
        n_resamples=n_res,
        n_documents=n_docs,
        f1_a=float(np.sort(f1_obs[:s_a]).mean()),
        f1_b=float(np.sort(f1_obs[s_a:]).mean()),
        replicates=reps,
    )


def seed_summary(values: Iterable[float]) -> tuple[float, float]:
    r"""Mean and sample standard deviation of a metric over training seeds.

    .. math::

        \bar x = \frac{1}{S} \sum_s x_s, \qquad
        s = \sqrt{\frac{1}{S - 1} \sum_s (x_s - \bar x)^2}

    Parameters
    ----------
    values : iterable of float, S >= 1 values (e.g. micro-F1 per seed)

    Returns
    -------
    mean, std : float
        ``std`` is ``nan`` for one value: one seed says nothing about the
        spread over seeds, and ``0.0`` would print as a false "± 0.00".

    Raises
    ------
    ValueError
        On no values, or a value that is not finite.
    """
    x = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64).reshape(-1)  # (S,)
    if x.size == 0:
        raise ValueError("values is empty: need at least one seed")
    if not np.isfinite(x).all():
        raise ValueError(f"values must be finite, got {x.tolist()}")
    std = float(np.std(x, ddof=1)) if x.size > 1 else float("nan")
    return float(np.mean(x)), std


@dataclass(frozen=True)
class SeedTestResult:
    """Outcome of :func:`welch_seeds`.

    Attributes
    ----------
    delta : float
        Difference of the seed means, A minus B.
    t, df : float
        Welch's statistic and its degrees of freedom (``nan`` where both spreads are 0).
    p_value : float
        Two-sided p-value of H0: equal expected scores, in ``[0, 1]``.
    n_a, n_b : int
        Seeds of each model.
    """

    delta: float
    t: float
    df: float
    p_value: float
    n_a: int
    n_b: int


def welch_seeds(values_a: Iterable[float], values_b: Iterable[float]) -> SeedTestResult:
    r"""Welch's t-test of a difference of seed means: does it survive retraining?

    With per-seed scores ``x_1..x_{n_a}`` of model A and ``y_1..y_{n_b}`` of
    model B (e.g. test micro-F1 of each training seed), sample variances
    ``s_a^2, s_b^2`` (:func:`seed_summary`) and ``v_a = s_a^2 / n_a``,
    ``v_b = s_b^2 / n_b``:

    .. math::

        t = \frac{\bar x - \bar y}{\sqrt{v_a + v_b}}, \qquad
        \nu = \frac{(v_a + v_b)^2}{v_a^2 / (n_a - 1) + v_b^2 / (n_b - 1)}, \qquad
        p = 2\, P(T_\nu \ge |t|).

    Why this test: a seed is one draw of the training randomness (initial
    weights, batch order, dropout), so the per-seed scores of a model are an
    independent sample of its score distribution, and two models' seeds are
    unpaired (seed ``k`` of A shares nothing with seed ``k`` of B). Welch's
    form does not assume equal spreads, which set and sequence models do not
    have (Reimers & Gurevych 2017 recommend it for exactly this comparison).
    With 3 seeds per model it has little power: a small p is evidence, a large
    one mostly says that more seeds are needed.

    Degenerate case: where both sample variances are 0 (e.g. identical seeds;
    spreads within rounding, :data:`TIE_TOL` relative to the scores, count as
    0) ``t`` and ``ν`` are undefined; ``p`` is then 1 for equal means and 0
    otherwise, the limit of the test as the spreads shrink.

    Parameters
    ----------
    values_a, values_b : iterable of float
        Per-seed scores of each model, at least 2 each, finite.

    Returns
    -------
    SeedTestResult

    Raises
    ------
    ValueError
        On fewer than 2 values in either argument (naming it), or a value that is not finite.
    """
    from scipy.stats import t as student_t

    x, y = (np.asarray(list(v), dtype=np.float64).reshape(-1) for v in (values_a, values_b))  # (n_a,), (n_b,)
    for name, v in (("values_a", x), ("values_b", y)):
        if v.size < 2:
            raise ValueError(f"{name}: Welch's test needs at least 2 seeds, got {v.size}")
        if not np.isfinite(v).all():
            raise ValueError(f"{name} must be finite, got {v.tolist()}")
    delta = float(x.mean() - y.mean())
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    tol = TIE_TOL * max(1.0, float(np.abs(x).max()), float(np.abs(y).max()))  # rounding of the means
    if math.sqrt(va + vb) <= tol:
        return SeedTestResult(delta, math.nan, math.nan, 1.0 if abs(delta) <= tol else 0.0, x.size, y.size)
    t = delta / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    return SeedTestResult(delta, float(t), float(df), float(min(1.0, 2.0 * student_t.sf(abs(t), df))), x.size, y.size)
