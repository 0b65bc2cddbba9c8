"""benchmarks/count_calibration.py reads what the runs store: on a trained run its ``decoded`` row is the
run's own result and its ``score ≥ τ`` row the run's ``calibrated`` entry; a run trained before the entry
existed is calibrated with the library (the same figures, nothing written); linear runs read the same way;
bad run directories are one line and exit code 2."""

from __future__ import annotations

import json
import shutil

import pytest

SYNTH = ["--data", "synthetic", "--fast", "--epochs", "2", "--max-train-docs", "300", "--max-valid-docs", "60",
         "--seed", "4"]
KEYS = ("micro_precision", "micro_recall", "micro_f1", "mean_predicted_labels")


@pytest.fixture(scope="module")
def calib(load_script):
    return load_script("benchmarks/count_calibration.py")


@pytest.fixture(scope="module")
def run(tmp_path_factory, load_script):
    out = tmp_path_factory.mktemp("count") / "run"
    assert load_script("examples/train_otseq2set.py").main([*SYNTH, "--out", str(out)]) == 0
    return out


def _metrics(run):
    return json.loads((run / "metrics.json").read_text())


def test_rows_are_the_stored_results(calib, run):
    rows = calib.run_rows(run)
    m = _metrics(run)
    assert rows["source"] == "metrics.json"
    assert rows["decoded"]["test"] == {k: m["test"][k] for k in KEYS}
    assert rows["decoded"]["dev_micro_f1"] == m["best"]["micro_f1"]
    cal = rows["score ≥ τ"]
    assert cal["tau"] == m["calibrated"]["tau"] and cal["test"] == {k: m["calibrated"]["test"][k] for k in KEYS}
    # the dev-chosen threshold never lowers dev micro-F1 against the decoded sets
    assert cal["dev_micro_f1"] >= rows["decoded"]["dev_micro_f1"]


def test_a_run_without_the_entry_is_recomputed_with_the_library(calib, run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(run, old)
    m = _metrics(old)
    del m["calibrated"]
    (old / "metrics.json").write_text(json.dumps(m))
    text = (old / "metrics.json").read_text()
    rows, stored = calib.run_rows(old), calib.run_rows(run)
    assert rows["source"] == "recomputed" and (old / "metrics.json").read_text() == text  # nothing written
    assert rows["score ≥ τ"] == stored["score ≥ τ"] and rows["decoded"] == stored["decoded"]


def test_main_table_json_and_a_linear_run(calib, run, tmp_path, load_script, capsys):
    linear = tmp_path / "linear"
    assert load_script("examples/train_linear.py").main(
        ["--data", "synthetic", "--max-train-docs", "300", "--out", str(linear)]) == 0
    capsys.readouterr()
    out = tmp_path / "rows.json"
    assert calib.main([str(run), str(linear), "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "score ≥ τ" in table and "linear" in table
    saved = json.loads(out.read_text())
    lin = _metrics(linear)
    assert saved[str(linear)]["decoded"]["dev_micro_f1"] == lin["valid"]["micro_f1"]  # linear: valid, no epochs
    assert saved[str(linear)]["score ≥ τ"]["tau"] == lin["calibrated"]["tau"]
    assert saved[str(run)]["score ≥ τ"]["test"]["micro_f1"] == _metrics(run)["calibrated"]["test"]["micro_f1"]


def test_bad_run_directories_one_line(calib, run, tmp_path, capsys):
    def fails(argv, message):
        assert calib.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("count_calibration.py: error: ") and message in err, err

    fails([str(tmp_path / "missing")], "run directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    fails([str(empty)], "no metrics.json at")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run, unfinished)
    m = _metrics(unfinished)
    del m["test"]
    (unfinished / "metrics.json").write_text(json.dumps(m))
    fails([str(unfinished)], "has no 'test' entry")
    no_weights = tmp_path / "no_weights"
    shutil.copytree(run, no_weights)
    m = _metrics(no_weights)
    del m["calibrated"]
    (no_weights / "metrics.json").write_text(json.dumps(m))
    (no_weights / "best.pt").unlink()
    fails([str(no_weights)], "holds no best.pt to calibrate")
