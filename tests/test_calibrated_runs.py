"""A trained run stores its calibrated set size; predict.py uses it; its tau is the rule the former
benchmarks/count_calibration.py computed (dense scores, every threshold, the first maximum)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from evaluation.calibration import PROBABILITY_GRID
from xmtc import registry
from xmtc.config.settings import compose
from xmtc.data import loading
from xmtc.train import checkpoint

SYNTH = ["--data", "synthetic", "--fast", "--epochs", "2", "--max-train-docs", "300", "--max-valid-docs", "80",
         "--max-test-docs", "120", "--seed", "3"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, load_script):
    out = tmp_path_factory.mktemp("cal") / "run"
    assert load_script("examples/train_otseq2set.py").main([*SYNTH, "--out", str(out)]) == 0
    return out


def test_metrics_json_holds_tau_and_both_splits_with_the_test_keys(run):
    m = json.loads((run / "metrics.json").read_text())
    cal = m["calibrated"]
    assert cal["rule"] == "score >= tau"
    assert set(cal["valid"]) == set(m["test"]) == set(cal["test"])
    assert cal["tau"] is None or cal["tau"] in PROBABILITY_GRID.tolist()
    # ranking metrics are the model's own, unchanged by the threshold
    assert cal["test"]["p@1"] == m["test"]["p@1"] and cal["test"]["ndcg@5"] == m["test"]["ndcg@5"]
    # tau never lowers dev micro-F1 against the decoded sets
    best = next(e for e in m["epochs"] if e["epoch"] == m["best"]["epoch"])
    assert cal["valid"]["micro_f1"] >= best["valid"]["micro_f1"] - 1e-12


#: The thresholds benchmarks/count_calibration.py searched before it became a reader of the stored entry.
OLD_TAUS = np.round(np.arange(0.0, 0.951, 0.025), 3)


def old_count_calibration_tau(run_dir) -> tuple[float, float]:
    """The ``score ≥ τ`` rule of the former benchmarks/count_calibration.py, written out: dense ``(D, L)``
    scores of best.pt on dev, micro-F1 ``2PR / (P + R)`` at every τ of :data:`OLD_TAUS` (gold labels beyond
    the model's counted as misses), the first maximum. Returns ``(tau, dev micro-F1)``."""
    state = checkpoint.load(run_dir / "best.pt")
    cfg = compose(saved=state["config"])
    data = loading.load_data(cfg.data, seed=cfg.train.seed)
    model = registry.model_from_checkpoint(state).eval()
    L = model.config.n_labels
    scores = np.zeros((len(data.valid), L), np.float32)
    with torch.no_grad():
        for batch in loading.make_loader(data, "valid", cfg.train):
            scores[batch.index.numpy()] = model.predict(batch).scores.float().numpy()
    gold = np.zeros((len(data.valid), L), dtype=bool)
    for i, labels in enumerate(data.valid.label_sets()):
        gold[i, [g for g in labels if g < L]] = True
    n_gold = sum(len(s) for s in data.valid.label_sets())

    def micro_f1(pred):
        tp, n_pred = int((pred & gold).sum()), int(pred.sum())
        p, r = tp / max(n_pred, 1), tp / max(n_gold, 1)
        return 2 * p * r / max(p + r, 1e-12)

    dev = {float(t): micro_f1(scores >= t) for t in OLD_TAUS}
    tau = max(dev, key=dev.get)
    return tau, dev[tau]


def test_tau_equals_the_old_count_calibration_rule(run):
    """The stored tau is the old script's, except where the decoded sets beat every threshold on dev
    (then the run keeps them, tau = None, and the old rule's dev micro-F1 is below the decoded one)."""
    tau, dev_f1 = old_count_calibration_tau(run)
    m = json.loads((run / "metrics.json").read_text())
    cal = m["calibrated"]
    if cal["tau"] is None:
        assert dev_f1 < m["best"]["micro_f1"]
    else:
        assert cal["tau"] == tau and cal["valid"]["micro_f1"] == pytest.approx(dev_f1, abs=1e-12)


def test_predict_calibrated_options_anywhere_and_empty_text(run, load_script, capsys):
    predict = load_script("examples/predict.py")
    assert predict.main([str(run), "token words here", "--calibrated", "--json"]) == 0
    line = json.loads(capsys.readouterr().out.splitlines()[0])
    tau = json.loads((run / "metrics.json").read_text())["calibrated"]["tau"]
    if tau is not None:
        assert all(x["score"] >= round(tau, 4) - 1e-4 for x in line["labels"])
    assert predict.main([str(run), "token words", "--top-k", "3"]) == 0  # an option after the text
    assert len(capsys.readouterr().out.strip().split(", ")) == 3
    assert predict.main([str(run), "   "]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "text 1 is empty" in err
    assert predict.main([str(run), "x", "--top-k", "2", "--calibrated"]) == 2  # one rule at a time


def test_predict_calibrated_on_a_run_without_the_entry_is_one_line(run, tmp_path, load_script, capsys):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(run, old)
    m = json.loads((old / "metrics.json").read_text())
    del m["calibrated"]
    (old / "metrics.json").write_text(json.dumps(m))
    assert load_script("examples/predict.py").main([str(old), "words", "--calibrated"]) == 2
    assert "no 'calibrated' entry" in capsys.readouterr().err
