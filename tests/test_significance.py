"""Paired bootstrap and seed summaries of ``evaluation.significance``.

References: hand-computed counts, ``evaluate``'s micro-F1, a slow loop bootstrap
on the same random draws, and a paired approximate randomisation (permutation)
test written here from its definition; for Welch's test over seeds, SciPy's
``ttest_ind(equal_var=False)`` and a closed form (one degree of freedom: the
Cauchy distribution).
"""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation import (
    BootstrapResult,
    document_counts,
    evaluate,
    micro_f1_from_counts,
    paired_bootstrap,
    seed_summary,
    welch_seeds,
)

# The hand fixture of test_evaluation_sets.py (L = 6, D = 5).
GOLD = [{0, 1}, {1, 4}, set(), {0, 1}, set()]
PRED = [{0, 2}, set(), {3}, [1, 0], ()]
COUNTS = np.array([[1, 1, 1], [0, 0, 2], [0, 1, 0], [2, 0, 0], [0, 0, 0]])  # TP, FP, FN per document
R = 1000  # the smallest allowed number of resamples, enough for the checks below


def _f1(tp, fp, fn):
    return 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0


def _noisy(gold, keep, n_fp, n_labels, rng):
    """Each gold label kept with probability ``keep``, plus Poisson(n_fp) random labels."""
    out = []
    for g in gold:
        s = {x for x in g if rng.random() < keep}
        out.append(s | set(rng.integers(0, n_labels, size=rng.poisson(n_fp)).tolist()))
    return out


def _data(seed, keep_a, keep_b, n_docs=300, n_labels=40):
    rng = np.random.default_rng(seed)
    gold = [set(rng.choice(n_labels, size=rng.integers(1, 6), replace=False).tolist()) for _ in range(n_docs)]
    pred_a, pred_b = _noisy(gold, keep_a, 0.5, n_labels, rng), _noisy(gold, keep_b, 0.5, n_labels, rng)
    return gold, pred_a, pred_b


def _counts(rng, n_seeds, n_docs, gold_sizes):
    """Random consistent counts (S, D, 3): TP <= |gold|, FN = |gold| - TP."""
    tp = rng.integers(0, gold_sizes + 1, size=(n_seeds, n_docs))  # (S, D)
    fp = rng.integers(0, 4, size=(n_seeds, n_docs))  # (S, D)
    return np.stack([tp, fp, gold_sizes - tp], axis=-1)  # (S, D, 3)


# --- counts and micro-F1 -------------------------------------------------------------------


def test_document_counts_hand_computed():
    c = document_counts(PRED, GOLD)
    assert c.dtype == np.int64 and c.shape == (5, 3)
    np.testing.assert_array_equal(c, COUNTS)
    # totals tp=3, fp=2, fn=3 -> 2*3 / (6 + 2 + 3)
    assert micro_f1_from_counts(c) == 6 / 11 == evaluate(PRED, GOLD, 6)["micro_f1"]


def test_document_counts_input_forms_agree():
    forms = [
        ([list(p) * 2 for p in PRED], [sorted(g, reverse=True) for g in GOLD]),  # repeats, order
        ([np.array(sorted(p), dtype=np.int32) for p in PRED], [iter(g) for g in GOLD]),
        ((p for p in PRED), (g for g in GOLD)),  # generators, trailing empty documents kept
        (sp.csr_matrix(([1.0] * 5, ([0, 0, 2, 3, 3], [0, 2, 3, 1, 0])), shape=(5, 9)), GOLD),
        ([{p + 1000 for p in s} for s in PRED], GOLD),  # large ids: all wrong
    ]
    for pred, gold in forms[:-1]:
        np.testing.assert_array_equal(document_counts(pred, gold), COUNTS)
    wrong = document_counts(*forms[-1])
    np.testing.assert_array_equal(wrong, np.stack([[0] * 5, COUNTS[:, 0] + COUNTS[:, 1], COUNTS[:, 0] + COUNTS[:, 2]], 1))
    np.testing.assert_array_equal(document_counts([set()], [set()]), [[0, 0, 0]])


def test_micro_f1_equals_evaluate_on_random_data():
    rng = np.random.default_rng(0)
    for n_labels in (3, 20, 500):
        gold = [set(rng.integers(0, n_labels, size=rng.integers(0, 6)).tolist()) for _ in range(80)]
        pred = [set(rng.integers(0, n_labels, size=rng.integers(0, 6)).tolist()) for _ in range(80)]
        assert micro_f1_from_counts(document_counts(pred, gold)) == evaluate(pred, gold, n_labels)["micro_f1"]


def test_micro_f1_is_vectorised_over_leading_axes():
    rng = np.random.default_rng(1)
    c = rng.integers(0, 5, size=(2, 3, 40, 3))  # (2, 3, D, 3)
    f = micro_f1_from_counts(c)
    assert f.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            t = c[i, j].sum(axis=0)
            assert f[i, j] == _f1(*t)
    assert micro_f1_from_counts(np.zeros((4, 3), dtype=int)) == 0.0  # zero denominator
    assert micro_f1_from_counts(COUNTS.astype(float)) == 6 / 11  # integer-valued floats accepted


# --- the bootstrap on known answers ---------------------------------------------------------


def test_identical_predictions_give_zero_delta_and_p_one():
    gold, pred, _ = _data(3, 0.7, 0.7)
    c = document_counts(pred, gold)
    res = paired_bootstrap(c, c, n_resamples=R, seed=5)
    assert isinstance(res, BootstrapResult)
    assert res.delta == 0.0 and res.p_value == 1.0
    assert res.ci_low == res.ci_high == 0.0 and (res.replicates == 0.0).all()
    assert (res.n_resamples, res.n_documents) == (R, 300) and res.f1_a == res.f1_b
    # the same model over several seeds against itself
    assert paired_bootstrap(np.stack([c, c]), c, n_resamples=R).p_value == 1.0


def test_perfect_against_all_wrong_is_maximally_significant():
    rng = np.random.default_rng(2)
    gold = [set(rng.choice(30, size=rng.integers(1, 4), replace=False).tolist()) for _ in range(200)]
    wrong = [{g + 30 for g in s} for s in gold]
    res = paired_bootstrap(document_counts(gold, gold), document_counts(wrong, gold), n_resamples=R)
    assert res.delta == 1.0 and (res.f1_a, res.f1_b) == (1.0, 0.0)
    assert res.p_value == 1 / (R + 1)  # the minimum: no resample is as extreme under the shifted null
    assert res.ci_low == res.ci_high == 1.0  # excludes 0


def test_one_differing_document_out_of_many_is_not_significant():
    gold, pred, _ = _data(4, 0.8, 0.8, n_docs=1000)
    a = document_counts(pred, gold)
    i = int(np.argmax(a[:, 0] > 0))  # the first document with a hit
    pred_b = list(pred)
    pred_b[i] = pred[i] - {min(pred[i] & gold[i])}  # B misses one gold label there
    b = document_counts(pred_b, gold)
    expected = a.copy()
    expected[i] += [-1, 0, 1]  # one TP becomes one FN, nothing else changes
    np.testing.assert_array_equal(b, expected)
    res = paired_bootstrap(a, b, n_resamples=R)
    assert 0 < abs(res.delta) < 1e-3
    # doc 0 is left out of about (1 - 1/D)^D = 37% of the resamples, each then exactly as
    # extreme as the observed difference under the shifted null
    assert res.p_value > 0.3
    assert res.ci_low <= 0.0 <= res.ci_high


# --- against independent implementations ----------------------------------------------------


def _permutation_p(ca, cb, n_perm, seed):
    """Paired approximate randomisation: swap A and B per document with probability 1/2."""
    rng = np.random.default_rng(seed)

    def f1(c):
        return _f1(*c.sum(axis=0))

    observed = f1(ca) - f1(cb)
    n_extreme = 0
    for _ in range(n_perm):
        swap = rng.random(len(ca)) < 0.5  # (D,)
        pa = np.where(swap[:, None], cb, ca)
        pb = np.where(swap[:, None], ca, cb)
        n_extreme += abs(f1(pa) - f1(pb)) >= abs(observed)
    return (1 + n_extreme) / (1 + n_perm)


@pytest.mark.parametrize(
    "data_seed, keep_b, significant",
    [(0, 0.8, False), (1, 0.8, False), (2, 0.8, False), (3, 0.8, False), (0, 0.6, True), (1, 0.6, True)],
)
def test_agrees_with_paired_permutation_test(data_seed, keep_b, significant):
    # A keeps each gold label w.p. 0.8; B w.p. keep_b (0.8: no effect, 0.6: a clear one)
    gold, pred_a, pred_b = _data(data_seed, 0.8, keep_b)
    a, b = document_counts(pred_a, gold), document_counts(pred_b, gold)
    p_boot = paired_bootstrap(a, b, n_resamples=2000, seed=7).p_value
    p_perm = _permutation_p(a, b, 2000, seed=8)
    assert (p_boot < 0.05) == (p_perm < 0.05) == significant
    # Monte Carlo s.e. of each p is at most sqrt(0.25 / 2000) = 0.011; the two tests
    # approximate the same null distribution, so 0.05 leaves room for both errors
    assert abs(p_boot - p_perm) < 0.05


def test_replicates_equal_a_slow_loop_bootstrap_on_the_same_draws():
    rng = np.random.default_rng(9)
    gold_sizes = rng.integers(0, 5, size=50)
    a, b = _counts(rng, 2, 50, gold_sizes), _counts(rng, 3, 50, gold_sizes)  # (2, D, 3), (3, D, 3)
    res = paired_bootstrap(a, b, n_resamples=R, seed=11, chunk=7)  # chunks that do not divide R

    draws = np.random.default_rng(11)
    slow = []
    for _ in range(R):
        idx = draws.integers(0, 50, size=50)  # documents drawn with replacement
        f_a = sorted(_f1(*(int(x) for x in a[s][idx].sum(axis=0))) for s in range(2))
        f_b = sorted(_f1(*(int(x) for x in b[s][idx].sum(axis=0))) for s in range(3))
        slow.append(sum(f_a) / 2 - sum(f_b) / 3)
    np.testing.assert_array_equal(res.replicates, slow)
    assert res.replicates.mean() == np.mean(slow)
    lo, hi = np.quantile(slow, [0.025, 0.975])
    assert (res.ci_low, res.ci_high) == pytest.approx((lo, hi), abs=1e-15)  # q = (1 - 0.95) / 2 rounds
    delta = np.mean([_f1(*a[s].sum(0)) for s in range(2)]) - np.mean([_f1(*b[s].sum(0)) for s in range(3)])
    assert res.delta == pytest.approx(delta, abs=1e-15)
    n_extreme = sum(abs(d - res.delta) >= abs(res.delta) for d in slow)
    assert res.p_value == (1 + n_extreme) / (1 + R)


# --- invariances ----------------------------------------------------------------------------


def test_seeded_reproducibility_and_chunk_independence():
    rng = np.random.default_rng(12)
    gold_sizes = rng.integers(1, 5, size=120)
    a, b = _counts(rng, 1, 120, gold_sizes)[0], _counts(rng, 1, 120, gold_sizes)[0]
    first = paired_bootstrap(a, b, n_resamples=R, seed=3)
    again = paired_bootstrap(a, b, n_resamples=R, seed=3, chunk=1000)
    other = paired_bootstrap(a, b, n_resamples=R, seed=4)
    assert first == again and np.array_equal(first.replicates, again.replicates)
    assert not np.array_equal(first.replicates, other.replicates)
    # one seed given as (1, D, 3) is the same as (D, 3)
    stacked = paired_bootstrap(a[None], b[None], n_resamples=R, seed=3)
    assert stacked == first and np.array_equal(stacked.replicates, first.replicates)


def test_order_of_seeds_does_not_matter():
    rng = np.random.default_rng(13)
    gold_sizes = rng.integers(0, 6, size=80)
    a, b = _counts(rng, 3, 80, gold_sizes), _counts(rng, 2, 80, gold_sizes)
    base = paired_bootstrap(a, b, n_resamples=R, seed=1)
    perm = paired_bootstrap(a[[2, 0, 1]], b[[1, 0]], n_resamples=R, seed=1)
    assert perm == base and np.array_equal(perm.replicates, base.replicates)
    assert base.f1_a == pytest.approx(micro_f1_from_counts(a).mean(), abs=1e-15)


@settings(max_examples=25, deadline=None)
@given(
    data_seed=st.integers(0, 2**32 - 1),
    n_docs=st.integers(1, 30),
    s_a=st.integers(1, 3),
    s_b=st.integers(1, 3),
    seed=st.integers(0, 100),
)
def test_swapping_models_negates_delta_and_keeps_p(data_seed, n_docs, s_a, s_b, seed):
    rng = np.random.default_rng(data_seed)
    gold_sizes = rng.integers(0, 4, size=n_docs)
    a, b = _counts(rng, s_a, n_docs, gold_sizes), _counts(rng, s_b, n_docs, gold_sizes)
    ab = paired_bootstrap(a, b, n_resamples=R, seed=seed)
    ba = paired_bootstrap(b, a, n_resamples=R, seed=seed)
    assert ba.delta == -ab.delta and ba.p_value == ab.p_value
    np.testing.assert_array_equal(ba.replicates, -ab.replicates)
    assert ba.ci_low == pytest.approx(-ab.ci_high, abs=1e-12)
    assert ba.ci_high == pytest.approx(-ab.ci_low, abs=1e-12)
    assert 1 / (R + 1) <= ab.p_value <= 1.0 and ab.ci_low <= ab.ci_high


# --- seed summaries -------------------------------------------------------------------------


def test_seed_summary():
    mean, std = seed_summary([0.5, 0.6, 0.7])
    assert mean == pytest.approx(0.6) and std == pytest.approx(0.1)  # sqrt((0.01 + 0 + 0.01) / 2)
    assert seed_summary(np.array([0.3, 0.5])) == pytest.approx((0.4, math.sqrt(0.02)))
    assert seed_summary(x for x in (2.0, 2.0)) == (2.0, 0.0)
    one_mean, one_std = seed_summary([0.42])  # a single seed: the spread is undefined, not 0
    assert one_mean == 0.42 and math.isnan(one_std)


# --- Welch's test over seeds ------------------------------------------------------------------


def test_welch_hand_computed_with_one_degree_of_freedom():
    # a = (1, 3): mean 2, s^2 = 2, v_a = 1; b = (0, 0, 0): v_b = 0. t = 2 / 1, nu = 1 / (1 / 1) = 1,
    # and T_1 is the Cauchy distribution: P(|T| >= 2) = 1 - 2 atan(2) / pi
    r = welch_seeds([1.0, 3.0], [0.0, 0.0, 0.0])
    assert (r.delta, r.t, r.df, r.n_a, r.n_b) == (2.0, 2.0, 1.0, 2, 3)
    assert r.p_value == pytest.approx(1 - 2 * math.atan(2) / math.pi, rel=1e-12)


@pytest.mark.parametrize("data_seed", range(5))
def test_welch_agrees_with_scipy(data_seed):
    from scipy.stats import ttest_ind

    rng = np.random.default_rng(data_seed)
    a = rng.normal(0.65, rng.uniform(0.001, 0.01), size=rng.integers(2, 6))
    b = rng.normal(0.652, rng.uniform(0.001, 0.01), size=rng.integers(2, 6))
    ref = ttest_ind(a, b, equal_var=False)
    r = welch_seeds(a, b)
    assert r.delta == pytest.approx(a.mean() - b.mean(), abs=1e-15)
    assert (r.t, r.df, r.p_value) == pytest.approx((ref.statistic, ref.df, ref.pvalue), rel=1e-10)


def test_welch_identical_and_degenerate_samples():
    same = welch_seeds([0.6, 0.62, 0.64], [0.64, 0.6, 0.62])
    assert same.delta == pytest.approx(0.0, abs=1e-15) and same.p_value == pytest.approx(1.0)
    # no spread on either side: p is the limit, 1 for equal means and 0 otherwise
    assert welch_seeds([0.5, 0.5], [0.5, 0.5]).p_value == 1.0
    flat = welch_seeds([0.6, 0.6], [0.5, 0.5, 0.5])
    assert flat.p_value == 0.0 and math.isnan(flat.t) and flat.delta == pytest.approx(0.1)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=2, max_size=6), st.lists(st.floats(0, 1), min_size=2, max_size=6),
       st.randoms(use_true_random=False))
def test_welch_ignores_seed_order_and_swapping_negates(a, b, random):
    r = welch_seeds(a, b)
    pa, pb = random.sample(a, len(a)), random.sample(b, len(b))
    shuffled = welch_seeds(pa, pb)
    assert shuffled.p_value == pytest.approx(r.p_value, abs=1e-9)
    assert shuffled.delta == pytest.approx(r.delta, abs=1e-12)
    swapped = welch_seeds(b, a)
    assert swapped.delta == pytest.approx(-r.delta, abs=1e-12) and swapped.p_value == pytest.approx(r.p_value, abs=1e-9)
    assert 0.0 <= r.p_value <= 1.0


# --- bad input ------------------------------------------------------------------------------

GOOD = np.ones((4, 3), dtype=int)
OTHER_GOLD = GOOD + [[0, 0, 0], [0, 0, 0], [0, 0, 1], [0, 0, 0]]  # document 2 has another gold size


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: document_counts([{0}, {1}], [{0}]), r"predicted has 2 documents, gold has 1"),
        (lambda: document_counts([{0}, {-2}], [{0}, {1}]), r"predicted: document 1 has a negative label id -2"),
        (lambda: document_counts([{0}], [{0.5}]), r"gold: document 0 has a non-integer label id 0.5"),
        (lambda: micro_f1_from_counts(np.ones(3)), r"counts must have shape \(\.\.\., D, 3\)"),
        (lambda: micro_f1_from_counts(np.ones((4, 2))), r"counts must have shape"),
        (lambda: paired_bootstrap(np.ones((4, 4)), GOOD), r"counts_a must have shape \(D, 3\) or \(S, D, 3\)"),
        (lambda: paired_bootstrap(GOOD, np.ones((1, 1, 4, 3))), r"counts_b must have shape"),
        (lambda: paired_bootstrap(GOOD, np.ones((0, 3))), r"counts_b must have shape .* D >= 1"),
        (lambda: paired_bootstrap(-GOOD, GOOD), r"counts_a has negative counts"),
        (lambda: paired_bootstrap(GOOD, GOOD * 0.5), r"counts_b must hold integer counts"),
        (lambda: paired_bootstrap(GOOD, np.full((4, 3), np.nan)), r"counts_b must hold integer counts"),
        (lambda: paired_bootstrap(GOOD.astype(bool), GOOD), r"counts_a must hold integer counts"),
        (lambda: paired_bootstrap(GOOD, np.ones((5, 3))), r"counts_a has 4 documents, counts_b has 5"),
        (lambda: paired_bootstrap(GOOD, OTHER_GOLD), r"disagree on TP \+ FN .* document 2"),
        (lambda: paired_bootstrap(GOOD, GOOD, n_resamples=999), r"n_resamples must be >= 1000"),
        (lambda: paired_bootstrap(GOOD, GOOD, chunk=0), r"chunk must be >= 1"),
        (lambda: paired_bootstrap(GOOD, GOOD, confidence=1.0), r"confidence must be in \(0, 1\)"),
        (lambda: seed_summary([]), r"values is empty"),
        (lambda: seed_summary([0.5, float("nan")]), r"values must be finite"),
        (lambda: welch_seeds([0.5], [0.5, 0.6]), r"values_a: Welch's test needs at least 2 seeds, got 1"),
        (lambda: welch_seeds([0.5, 0.6], []), r"values_b: Welch's test needs at least 2 seeds, got 0"),
        (lambda: welch_seeds([0.5, 0.6], [0.5, math.inf]), r"values_b must be finite"),
    ],
)
def test_bad_input_is_rejected_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
