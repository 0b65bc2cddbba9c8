"""The calibrated set size (evaluation.calibration) against hand-computed cases and a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from evaluation import evaluate
from evaluation.calibration import (MARGIN_GRID, PROBABILITY_GRID, apply_threshold, choose_threshold,
                                    decoded_micro_f1, threshold_curve)


def brute_force(scores: np.ndarray, gold, taus):
    """The rule written out: for each tau, the sets {l : s >= tau}, scored by evaluation.evaluate."""
    n_labels = max(scores.shape[1], max((max(g) for g in gold if g), default=0) + 1)
    out = []
    for t in taus:
        pred = [set(np.flatnonzero(row >= t).tolist()) for row in scores]
        out.append(evaluate(pred, gold, n_labels)["micro_f1"])
    return np.array(out)


def test_hand_computed_case():
    scores = np.array([[0.9, 0.4, 0.1],
                       [0.3, 0.6, 0.05]])
    gold = [{0}, {1, 2}]
    curve = threshold_curve(scores, gold, taus=[0.2, 0.5, 0.95])
    # tau 0.2: predicted {0,1},{0,1}: tp 2 (0 in d0, 1 in d1), n_pred 4, n_gold 3 -> F1 4/7
    # tau 0.5: {0},{1}: tp 2, n_pred 2 -> F1 4/5;  tau 0.95: nothing -> 0
    assert curve["tp"].tolist() == [2, 2, 0]
    assert curve["n_pred"].tolist() == [4, 2, 0]
    assert curve["n_gold"] == 3
    np.testing.assert_allclose(curve["micro_f1"], [4 / 7, 4 / 5, 0.0])
    best = choose_threshold(scores, gold, taus=[0.2, 0.5, 0.95])
    assert best.tau == 0.5 and best.micro_f1 == pytest.approx(0.8) and best.decoded_micro_f1 is None
    assert apply_threshold(scores, 0.5) == [{0}, {1}]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_curve_equals_brute_force_dense_and_sparse(seed):
    rng = np.random.default_rng(seed)
    D, L = 40, 12
    scores = rng.random((D, L)) ** 3  # many small scores, a few large
    # gold may hold labels the model cannot predict (ids >= L): misses
    gold = [set(rng.choice(L + 3, size=rng.integers(0, 4), replace=False).tolist()) for _ in range(D)]
    want = brute_force(scores, gold, PROBABILITY_GRID)
    np.testing.assert_allclose(threshold_curve(scores, gold)["micro_f1"], want, atol=1e-12)
    # the sparse form keeps only the entries a threshold can reach
    kept = np.where(scores >= PROBABILITY_GRID[0], scores, 0.0)
    np.testing.assert_allclose(threshold_curve(sp.csr_matrix(kept), gold)["micro_f1"], want, atol=1e-12)


def test_choose_threshold_equals_grid_search_reference():
    """count_calibration.py's rule: every tau of the grid, the first maximum (smallest tau among ties)."""
    rng = np.random.default_rng(3)
    scores = rng.random((60, 9)) ** 2
    gold = [set(rng.choice(9, size=rng.integers(1, 4), replace=False).tolist()) for _ in range(60)]
    dev = {float(t): f for t, f in zip(PROBABILITY_GRID, brute_force(scores, gold, PROBABILITY_GRID))}
    want = max(dev, key=dev.get)
    got = choose_threshold(scores, gold)
    assert got.tau == want and got.micro_f1 == pytest.approx(dev[want])


def test_ties_go_to_the_smaller_tau():
    scores = np.array([[0.9, 0.0], [0.0, 0.8]])
    gold = [{0}, {1}]
    assert choose_threshold(scores, gold, taus=[0.1, 0.5, 0.7]).tau == 0.1


def test_never_lowers_dev_micro_f1_against_decoded_sets():
    # the scores rank the gold label last: no threshold does as well as the decoded (perfect) sets
    scores = np.array([[0.1, 0.9], [0.9, 0.1]])
    gold = [{0}, {1}]
    decoded = [{0}, {1}]
    got = choose_threshold(scores, gold, decoded)
    assert got.tau is None and got.micro_f1 == 1.0 == got.decoded_micro_f1
    # and where a threshold wins, it is taken, with the decoded score reported beside it
    worse = [{0, 1}, {0, 1}]
    got = choose_threshold(np.array([[0.9, 0.1], [0.1, 0.9]]), gold, worse)
    assert got.tau is not None and got.micro_f1 == 1.0 and got.decoded_micro_f1 == pytest.approx(2 / 3)


def test_margins_grid_and_empty_inputs():
    margins = np.array([[1.2, -0.3], [-2.0, 0.4]])
    gold = [{0, 1}, {1}]
    got = choose_threshold(margins, gold, taus=MARGIN_GRID)
    # every tau in [-1.0, -0.3] gives the gold sets exactly; ties go to the smallest
    assert got.tau == -1.0 and got.micro_f1 == 1.0
    assert apply_threshold(margins, -0.3) == gold and apply_threshold(margins, -0.25) == [{0}, {1}]
    assert threshold_curve(np.zeros((2, 3)), [set(), set()])["micro_f1"].max() == 0.0
    assert decoded_micro_f1([set()], [set()]) == 0.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="gold has 1 documents, scores 2"):
        threshold_curve(np.zeros((2, 2)), [{0}])
    with pytest.raises(ValueError, match="increasing"):
        threshold_curve(np.zeros((1, 2)), [{0}], taus=[0.5, 0.5])
