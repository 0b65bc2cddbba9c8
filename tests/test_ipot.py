"""IPOT (losses/ipot.py) against exact OT (POT's ot.emd2), its numpy reference, and padding."""

import math

import numpy as np
import ot
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from losses import ipot as ipot_from_package
from losses.ipot import ipot, ipot_reference, ipot_value


def _random_problems(seed, count, low=2, high=40):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        m, n = rng.integers(low, high, size=2)
        yield rng.random((m, n)) * 2.0  # costs in [0, 2], like cosine distances


def _cosine_problems(seed, count):
    """Realistic OTSeq2Set costs: expected embeddings of N=57 steps vs n gold embeddings."""
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((200, 50))
    for _ in range(count):
        n = rng.integers(1, 20)
        p = rng.random((57, 200))
        X = (p / p.sum(1, keepdims=True)) @ E
        Y = E[rng.integers(0, 200, n)]
        yield 1 - (X @ Y.T) / np.linalg.norm(X, axis=1)[:, None] / np.linalg.norm(Y, axis=1)[None]


def _gap(c, **kw):
    m, n = c.shape
    value = ipot_value(torch.tensor(c), ipot(torch.tensor(c), **kw)).item()
    exact = ot.emd2(np.full(m, 1 / m), np.full(n, 1 / n), c)
    return (value - exact) / exact


def test_package_exports_same_function():
    assert ipot_from_package is ipot


def test_converges_to_exact_ot_with_many_iterations():
    gaps = [_gap(c, n_iter=1000) for c in _random_problems(0, 30)]
    assert max(abs(g) for g in gaps) < 1e-3, gaps


def _non_uniform_problem(rng, low=2, high=20):
    m, n = rng.integers(low, high, size=2)
    c = rng.random((m, n)) * 2
    a, b = rng.random(m) + 0.1, rng.random(n) + 0.1
    return c, a / a.sum(), b / b.sum()


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_non_uniform_marginals_match_emd(beta):
    # IPOT converges to the exact optimum for every beta (beta only sets the speed), so this
    # checks the solver's fixed point; test_each_proximal_step_is_sinkhorn_at_beta pins beta itself.
    # Measured at 2000 iterations: relative gap <= 4e-5 for these problems at beta 0.5, 1 and 2.
    rng = np.random.default_rng(1)
    for _ in range(6):
        c, a, b = _non_uniform_problem(rng)
        P = ipot(torch.tensor(c), torch.tensor(a), torch.tensor(b), beta=beta, n_iter=2000)
        exact = ot.emd2(a, b, c)
        assert abs(ipot_value(torch.tensor(c), P).item() - exact) / exact < 2e-4
        assert np.abs(P.sum(0).numpy() - b).max() < 1e-12  # the last update fixes the columns
        assert np.abs(P.sum(1).numpy() - a).sum() < 1e-3  # the rows converge


@pytest.mark.parametrize("solver", ["ipot", "ipot_reference"])
@pytest.mark.parametrize("beta", [0.5, 2.0])
def test_each_proximal_step_is_sinkhorn_at_beta(solver, beta):
    r"""One outer step solved to convergence is Sinkhorn with regularisation beta on the kernel G * plan.

    Xie et al. (2020), the proximal point step: :math:`\Gamma^{(t+1)} = \arg\min_\Gamma \langle C, \Gamma\rangle + \beta
    KL(\Gamma \Vert \Gamma^{(t)})`, i.e. Sinkhorn with kernel :math:`e^{-C/\beta} \odot \Gamma^{(t)}
    = e^{-(C - \beta \log \Gamma^{(t)}) / \beta}`. POT's ``ot.sinkhorn(a, b, M, reg)`` uses the kernel
    :math:`e^{-M/reg}`: an independent implementation of each step, which pins how beta enters the
    kernel (``exp(-C * beta)`` agrees with ``exp(-C / beta)`` only at beta = 1).
    """
    rng = np.random.default_rng(11)
    for _ in range(3):
        c, a, b = _non_uniform_problem(rng, high=9)
        expected = np.ones_like(c)  # Gamma^(1) = 1 1^T
        for steps in (1, 2, 3):
            expected = ot.sinkhorn(a, b, c - beta * np.log(expected), reg=beta, numItermax=20000, stopThr=1e-15)
            if solver == "ipot":
                got = ipot(torch.tensor(c), torch.tensor(a), torch.tensor(b), beta=beta, n_iter=steps,
                           inner_iter=1000).numpy()
            else:
                got = ipot_reference(c, a, b, beta=beta, n_iter=steps, inner_iter=1000)
            np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_gap_at_paper_setting_within_literature_bound():
    # Xie et al. (2020) / the issue: tens of basis points to ~1% at 50 iterations, beta = 1.
    # Measured here: realistic cosine costs mean 0.74%, max 1.2%; uniform [0, 2] costs mean 1.8%, max 7.3%.
    cos_gaps = [_gap(c) for c in _cosine_problems(2, 40)]
    assert np.mean(cos_gaps) < 0.015 and max(cos_gaps) < 0.03, cos_gaps
    uni_gaps = [_gap(c) for c in _random_problems(3, 40)]
    assert np.mean(uni_gaps) < 0.03 and max(uni_gaps) < 0.10, uni_gaps
    # and more iterations close the gap
    c = next(_random_problems(4, 1))
    assert abs(_gap(c, n_iter=500)) < abs(_gap(c, n_iter=50))


def test_marginal_errors_small():
    for c in _random_problems(5, 20):
        m, n = c.shape
        P = ipot(torch.tensor(c)).numpy()
        assert np.abs(P.sum(0) - 1 / n).max() < 1e-12
        assert np.abs(P.sum(1) - 1 / m).sum() < 5e-3
        P = ipot(torch.tensor(c), n_iter=1000).numpy()
        assert np.abs(P.sum(1) - 1 / m).sum() < 1e-4
        assert (P >= 0).all()


@pytest.mark.parametrize("beta,n_iter,inner", [(1.0, 50, 1), (0.5, 30, 3), (0.2, 100, 1)])
def test_fast_matches_numpy_reference(beta, n_iter, inner):
    rng = np.random.default_rng(6)
    for c in _random_problems(7, 10):
        m, n = c.shape
        a, b = rng.random(m) + 0.1, rng.random(n) + 0.1
        a, b = a / a.sum(), b / b.sum()
        fast = ipot(torch.tensor(c), torch.tensor(a), torch.tensor(b), beta=beta, n_iter=n_iter, inner_iter=inner)
        ref = ipot_reference(c, a, b, beta=beta, n_iter=n_iter, inner_iter=inner)
        np.testing.assert_allclose(fast.numpy(), ref, rtol=1e-9, atol=1e-13)


def test_batched_padded_equals_per_problem_unpadded():
    problems = list(_random_problems(8, 6, low=1, high=12))
    B = len(problems)
    m_max = max(c.shape[0] for c in problems)
    n_max = max(c.shape[1] for c in problems)
    cost = torch.full((B, m_max, n_max), 123.0, dtype=torch.float64)  # junk in the padding
    a = torch.zeros(B, m_max, dtype=torch.float64)
    b = torch.zeros(B, n_max, dtype=torch.float64)
    for k, c in enumerate(problems):
        m, n = c.shape
        cost[k, :m, :n] = torch.tensor(c)
        a[k, :m], b[k, :n] = 1 / m, 1 / n
    plan = ipot(cost, a, b)
    values = ipot_value(cost, plan)
    for k, c in enumerate(problems):
        m, n = c.shape
        single = ipot(torch.tensor(c))
        torch.testing.assert_close(plan[k, :m, :n], single, rtol=0, atol=1e-12)
        assert (plan[k, m:] == 0).all() and (plan[k, :, n:] == 0).all()  # exactly zero mass
        assert abs(values[k].item() - ipot_value(torch.tensor(c), single).item()) < 1e-12


@settings(max_examples=30, deadline=None)
@given(
    m=st.integers(1, 8), n=st.integers(1, 8), pad_m=st.integers(0, 3), pad_n=st.integers(0, 3),
    seed=st.integers(0, 10_000),
)
def test_property_padding_changes_nothing(m, n, pad_m, pad_n, seed):
    g = torch.Generator().manual_seed(seed)
    c = torch.rand(m, n, generator=g, dtype=torch.float64) * 2
    big = torch.rand(m + pad_m, n + pad_n, generator=g, dtype=torch.float64) * 2
    big[:m, :n] = c
    a = torch.cat([torch.full((m,), 1 / m, dtype=torch.float64), torch.zeros(pad_m, dtype=torch.float64)])
    b = torch.cat([torch.full((n,), 1 / n, dtype=torch.float64), torch.zeros(pad_n, dtype=torch.float64)])
    P = ipot(big, a, b)
    torch.testing.assert_close(P[:m, :n], ipot(c), rtol=0, atol=1e-12)
    assert P[m:].abs().sum() == 0 and P[:, n:].abs().sum() == 0


def test_no_nan_for_empty_and_padding_only_problems():
    cost = torch.rand(3, 5, 4) * 2
    a = torch.full((3, 5), 0.2)
    b = torch.full((3, 4), 0.25)
    b[1] = 0  # n = 0: no real column
    a[2] = 0  # all-padding rows
    P = ipot(cost, a, b)
    assert torch.isfinite(P).all()
    assert (P[1] == 0).all() and (P[2] == 0).all()
    assert abs(P[0].sum().item() - 1) < 1e-5
    assert ipot(torch.rand(2, 5, 0)).shape == (2, 5, 0)  # n = 0 columns
    assert ipot(torch.rand(2, 0, 3)).shape == (2, 0, 3)
    assert torch.isfinite(ipot_value(cost, P)).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("beta", [0.05, 0.1])
def test_no_nan_small_beta(dtype, beta):
    g = torch.Generator().manual_seed(9)
    cost = torch.rand(16, 57, 30, generator=g, dtype=dtype) * 2
    cost[0] = 2.0
    cost[1, 3] = 2.0  # a row at the maximal cost
    cost[2, :, 5] = 2.0  # a column at the maximal cost
    cost[3] = 0.0
    cost[4, ::2] = 0.0
    cost[4, 1::2] = 2.0  # rows at the extremes of the range
    plan = ipot(cost, beta=beta, n_iter=200)
    assert plan.dtype == dtype
    assert torch.isfinite(plan).all()
    # the columns are fixed by the last update (by construction); the rows are what IPOT converges on:
    # measured L1 error <= 0.008 (of mass 1) at beta 0.05, <= 0.004 at beta 0.1, both dtypes
    torch.testing.assert_close(plan.sum(1), torch.full((16, 30), 1 / 30, dtype=dtype), rtol=1e-4, atol=1e-6)
    row_error = (plan.double().sum(2) - 1 / 57).abs().sum(1)  # (16,)
    assert row_error.max() < 0.02, row_error
    # measured: |value - exact| <= 4e-4 (float32, beta 0.05); a kernel exp(-C * beta) misses by 0.06
    value = ipot_value(cost, plan)
    exact = torch.tensor([ot.emd2(np.full(57, 1 / 57), np.full(30, 1 / 30), c.double().numpy()) for c in cost])
    assert (value.double() - exact).abs().max() < 2e-3


def test_half_precision_inputs_follow_dtype():
    # seeded: the bf16 rounding of the cost alone moves the plan past this tolerance for ~1 cost in 10
    # (measured over 300 seeds), so an unseeded cost made the test depend on the tests run before it
    cost = torch.rand(4, 6, 5, generator=torch.Generator().manual_seed(0)) * 2
    for dtype in (torch.float16, torch.bfloat16):
        plan = ipot(cost.to(dtype))
        assert plan.dtype == dtype and torch.isfinite(plan).all()
        torch.testing.assert_close(plan.float(), ipot(cost), rtol=2e-2, atol=2e-3)


def test_single_problem_shape_and_value():
    c = torch.rand(5, 3, dtype=torch.float64)
    P = ipot(c)
    assert P.shape == (5, 3)
    torch.testing.assert_close(P, ipot(c[None])[0])
    assert ipot_value(c, P).shape == ()


def test_bad_arguments_raise_named_errors():
    c = torch.rand(2, 3, 4)
    with pytest.raises(ValueError, match="cost"):
        ipot(torch.rand(3))
    with pytest.raises(ValueError, match="cost"):
        ipot(torch.ones(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="a must have shape"):
        ipot(c, a=torch.rand(2, 4))
    with pytest.raises(ValueError, match="b must have shape"):
        ipot(c, b=torch.rand(3, 4))
    with pytest.raises(ValueError, match="beta"):
        ipot(c, beta=0)
    with pytest.raises(ValueError, match="n_iter"):
        ipot(c, n_iter=0)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("n_iter", [1, 2, 3])
def test_paper_algorithm_on_a_tiny_case_by_hand(beta, n_iter):
    # Algorithm 1 by hand on C = [[0, 1], [1, 0]], mu = nu = (1/2, 1/2), L = 1 inner step. With
    # q = exp(-1/beta): G = [[1, q], [q, 1]]. If Gamma^(t) = k [[1, r], [r, 1]] then Q = k [[1, qr], [qr, 1]],
    # delta = (1/2) / (k/2 (1 + qr)) per row, Q^T delta = 1, sigma = 1/2, and
    # Gamma^(t+1) = 1/(2 (1 + qr)) [[1, qr], [qr, 1]]. From Gamma^(1) = 1 1^T, after T steps r = q^T:
    #   Gamma = 1/(2 (1 + q^T)) [[1, q^T], [q^T, 1]],   <C, Gamma> = q^T / (1 + q^T).
    c = np.array([[0.0, 1.0], [1.0, 0.0]])
    r = math.exp(-n_iter / beta)
    expected = np.array([[1.0, r], [r, 1.0]]) / (2 * (1 + r))
    np.testing.assert_allclose(ipot_reference(c, beta=beta, n_iter=n_iter), expected, rtol=1e-12, atol=0)
    fast = ipot(torch.tensor(c), beta=beta, n_iter=n_iter)
    np.testing.assert_allclose(fast.numpy(), expected, rtol=1e-12, atol=0)
    assert ipot_value(torch.tensor(c), fast).item() == pytest.approx(r / (1 + r), rel=1e-12)
