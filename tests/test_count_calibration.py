"""benchmarks/count_calibration.py: its micro scores equal evaluation's, and on a trained run its
``decoded`` row is the run's own test result and a dev-chosen threshold never lowers dev micro-F1."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import evaluate


@pytest.fixture(scope="module")
def calib(load_script):
    return load_script("benchmarks/count_calibration.py")


def test_micro_equals_evaluation_with_unseen_gold_labels(calib):
    rng = np.random.default_rng(0)
    L, N = 9, 40  # the model's labels; gold ids 9 and 10 were never seen in training
    pred = [set(rng.choice(L, rng.integers(0, 5), replace=False).tolist()) for _ in range(N)]
    gold = [set(rng.choice(L + 2, rng.integers(1, 5), replace=False).tolist()) for _ in range(N)]
    P = np.zeros((N, L), bool)
    G = np.zeros((N, L), bool)
    for i, (p, g) in enumerate(zip(pred, gold)):
        P[i, list(p)] = True
        G[i, [x for x in g if x < L]] = True
    ours = calib.micro(P, G, sum(len(g) for g in gold))
    ref = evaluate(pred, gold, L + 2)
    for k in ("micro_precision", "micro_recall", "micro_f1", "mean_predicted_labels"):
        assert ours[k] == pytest.approx(ref[k], abs=1e-12), k


def test_on_a_trained_run(calib, tmp_path, load_script):
    train = load_script("examples/train_otseq2set.py")
    out = tmp_path / "run"
    argv = ["--data", "synthetic", "--fast", "--epochs", "2", "--max-train-docs", "300", "--max-valid-docs", "60",
            "--out", str(out)]
    assert train.main(argv) == 0
    result = calib.calibrate(out, "unused")  # also asserts: decoded test micro-F1 == metrics.json
    decoded_dev = result["decoded"]["dev_micro_f1"]
    assert result["decoded, score ≥ τ"]["dev_micro_f1"] >= decoded_dev  # τ = 0 is among the candidates
    assert 0 < result["score ≥ τ"]["test"]["micro_f1"] <= 1
