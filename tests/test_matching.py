"""Hungarian target assignment (losses/matching.py) against brute force over permutations."""

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from losses import assign_targets
from losses.matching import assign_targets_reference

EMPTY = 0


def _brute_force_best(p, labels, scheme):
    """Lowest total cost sum_i -p_i(y_rho(i)) over all placements of the labels, by enumeration."""
    N, n = p.shape[0], len(labels)
    steps = range(N) if scheme == "all" else range(n)
    best = float("inf")
    for placement in itertools.permutations(steps, n):  # label j goes to step placement[j]
        best = min(best, -sum(p[placement[j], labels[j]].item() for j in range(n)))
    return 0.0 if n == 0 else best


def _check_row(p, assigned_row, labels, scheme, N):
    n = len(labels)
    real_steps = [i for i in range(N) if assigned_row[i] != EMPTY]
    # every gold label is used once, as a multiset, and the rest is the empty label
    assert sorted(assigned_row[i].item() for i in real_steps) == sorted(labels)
    assert len(real_steps) == n
    if scheme == "first_n":
        assert all(i < n for i in real_steps)
    total = -sum(p[i, assigned_row[i]].item() for i in real_steps)
    assert total == pytest.approx(_brute_force_best(p, labels, scheme), abs=1e-6)


def _random_batch(seed, B, N, V, n_max):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(torch.randn(B, N, V, generator=g, dtype=torch.float64) * 3, dim=-1)
    targets = torch.stack([torch.randperm(V - 4, generator=g)[:n_max] + 4 for _ in range(B)])
    counts = torch.randint(0, min(N, n_max) + 1, (B,), generator=g)
    mask = torch.arange(n_max)[None] < counts[:, None]
    return probs, targets, mask


@pytest.mark.parametrize("scheme", ["all", "first_n"])
def test_optimal_against_brute_force(scheme):
    for seed in range(5):
        probs, targets, mask = _random_batch(seed, B=6, N=6, V=12, n_max=6)
        out = assign_targets(probs, targets, mask, scheme)
        assert out.dtype == torch.long and out.shape == (6, 6)
        for b in range(6):
            _check_row(probs[b], out[b], targets[b][mask[b]].tolist(), scheme, 6)


@settings(max_examples=40, deadline=None)
@given(
    N=st.integers(1, 6), n_max=st.integers(1, 7), V=st.integers(8, 15),
    scheme=st.sampled_from(["all", "first_n"]), seed=st.integers(0, 10_000), shuffle_mask=st.booleans(),
)
def test_property_optimal_any_mask(N, n_max, V, scheme, seed, shuffle_mask):
    g = torch.Generator().manual_seed(seed)
    B = 3
    probs = torch.softmax(torch.randn(B, N, V, generator=g, dtype=torch.float64), dim=-1)
    targets = torch.randint(4, V, (B, n_max), generator=g)  # duplicates allowed
    counts = torch.randint(0, min(N, n_max) + 1, (B,), generator=g)
    mask = torch.arange(n_max)[None] < counts[:, None]
    if shuffle_mask:  # real labels need not be left-aligned
        mask = mask[:, torch.randperm(n_max, generator=g)]
    out = assign_targets(probs, targets, mask, scheme)
    for b in range(B):
        _check_row(probs[b], out[b], targets[b][mask[b]].tolist(), scheme, N)


@pytest.mark.parametrize("scheme", ["all", "first_n"])
def test_ties_still_optimal(scheme):
    probs = torch.full((2, 5, 9), 1 / 9, dtype=torch.float64)  # every placement ties
    probs[1, :, 5] = 0.3
    probs[1, 2, 5] = 0.5  # a tie among the other steps
    targets = torch.tensor([[4, 5, 6, 0], [5, 6, 7, 8]])
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    out = assign_targets(probs, targets, mask, scheme)
    for b in range(2):
        _check_row(probs[b], out[b], targets[b][mask[b]].tolist(), scheme, 5)


def test_single_label_goes_to_most_likely_step():
    probs = torch.softmax(torch.randn(1, 5, 10), -1)
    probs[0, 3, 7] = 5.0  # a score, not necessarily a probability
    out = assign_targets(probs, torch.tensor([[7]]), torch.tensor([[True]]), "all")
    assert out.tolist() == [[0, 0, 0, 7, 0]]
    out = assign_targets(probs, torch.tensor([[7]]), torch.tensor([[True]]), "first_n")
    assert out.tolist() == [[7, 0, 0, 0, 0]]


@pytest.mark.parametrize("scheme", ["all", "first_n"])
def test_n_equals_N_uses_every_step(scheme):
    probs, targets, _ = _random_batch(3, B=4, N=5, V=20, n_max=5)
    mask = torch.ones(4, 5, dtype=torch.bool)
    out = assign_targets(probs, targets, mask, scheme)
    assert (out != EMPTY).all()
    for b in range(4):
        _check_row(probs[b], out[b], targets[b].tolist(), scheme, 5)


def test_rows_without_labels_and_empty_id():
    probs = torch.softmax(torch.randn(3, 4, 10), -1)
    targets = torch.tensor([[5, 6], [0, 0], [7, 0]])
    mask = torch.tensor([[True, True], [False, False], [True, False]])
    out = assign_targets(probs, targets, mask, "all", empty_id=3)
    assert (out[1] == 3).all()
    assert sorted(out[0].tolist()) == [3, 3, 5, 6]
    assert sorted(out[2].tolist()) == [3, 3, 3, 7]
    none = assign_targets(probs, targets[:, :0], mask[:, :0], "first_n")
    assert (none == EMPTY).all() and none.shape == (3, 4)


def test_bf16_probs_and_matches_reference():
    probs, targets, mask = _random_batch(4, B=8, N=7, V=30, n_max=7)
    for scheme in ("all", "first_n"):
        fast = assign_targets(probs, targets, mask, scheme)
        ref = assign_targets_reference(probs, targets, mask, scheme)
        assert torch.equal(fast, ref)  # no ties with continuous random scores
        # bf16 probabilities: an optimal matching of the bf16 values (rounding may create ties, so
        # the total matched score is compared, not the indices)
        half = assign_targets(probs.bfloat16(), targets, mask, scheme)
        assert half.shape == (8, 7) and half.dtype == torch.long
        rounded = probs.bfloat16().double()  # (B, N, V), the values the matching saw
        best = assign_targets_reference(rounded, targets, mask, scheme)
        for b in range(8):
            labels = targets[b][mask[b]].tolist()
            assert sorted(x for x in half[b].tolist() if x != EMPTY) == sorted(labels)

            def score(row):
                return sum(rounded[b, i, row[i]].item() for i in range(7) if row[i] != EMPTY)

            assert score(half[b].tolist()) == pytest.approx(score(best[b].tolist()), abs=1e-12)


def test_too_many_labels_and_bad_arguments_raise():
    probs = torch.softmax(torch.randn(2, 3, 10), -1)
    targets = torch.tensor([[4, 5, 6, 7], [4, 0, 0, 0]])
    mask = torch.tensor([[True, True, True, True], [True, False, False, False]])
    with pytest.raises(ValueError, match="target_mask row 0 has 4 real labels"):
        assign_targets(probs, targets, mask, "all")
    with pytest.raises(ValueError, match="scheme"):
        assign_targets(probs, targets, mask, "some")
    with pytest.raises(ValueError, match="target_mask must have"):
        assign_targets(probs, targets, mask[:, :2], "all")
    with pytest.raises(ValueError, match="probs"):
        assign_targets(probs[0], targets, mask, "all")


def test_no_grad_and_device():
    logits = torch.randn(2, 4, 10, requires_grad=True)
    out = assign_targets(logits.softmax(-1), torch.tensor([[4, 5], [6, 0]]), torch.tensor([[True, True], [True, False]]))
    assert not out.requires_grad and out.device == logits.device
