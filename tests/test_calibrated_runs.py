"""A trained run stores its calibrated set size; predict.py uses it; its tau is count_calibration's grid rule."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from evaluation import evaluate
from evaluation.calibration import PROBABILITY_GRID
from xmtc.train import checkpoint
from xmtc.data import loading
from xmtc import registry
from xmtc.config import RunConfig

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


def test_tau_equals_the_grid_search_of_count_calibration(run):
    """The rule of benchmarks/count_calibration.py written out: dense scores, every tau, the first maximum."""
    state = checkpoint.load(run / "best.pt")
    cfg = RunConfig.from_dict(state["config"])
    data = loading.load_data(cfg.data, seed=cfg.train.seed)
    model = registry.model_from_checkpoint(state).eval()
    L = model.config.n_labels
    scores, decoded = np.zeros((len(data.valid), L), np.float32), [None] * len(data.valid)
    with torch.no_grad():
        for batch in loading.make_loader(data, "valid", cfg.train, label_order=model.label_order):
            pred = model.predict(batch)
            scores[batch.index.numpy()] = pred.scores.float().numpy()
            for i, labels in zip(batch.index.tolist(), pred.labels):
                decoded[i] = set(labels)
    gold = data.valid.label_sets()
    n = len(data.label_names)
    dev = {float(t): evaluate([set(np.flatnonzero(r >= t).tolist()) for r in scores], gold, n)["micro_f1"]
           for t in PROBABILITY_GRID}
    tau = max(dev, key=dev.get)
    decoded_f1 = evaluate(decoded, gold, n)["micro_f1"]
    cal = json.loads((run / "metrics.json").read_text())["calibrated"]
    if decoded_f1 > dev[tau]:
        assert cal["tau"] is None
    else:
        assert cal["tau"] == tau and cal["valid"]["micro_f1"] == pytest.approx(dev[tau], abs=1e-12)


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
