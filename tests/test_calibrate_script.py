"""examples/calibrate.py: backfills metrics.json's ``calibrated`` of a finished neural run from its best.pt.

On a --fast synthetic run that stored its own entry when it trained: with the entry removed, the script
writes back the very same entry, keeps every other key of metrics.json, leaves an entry it finds alone
(``--overwrite`` recomputes it, ``--dry-run`` writes nothing), and predict.py --calibrated then works.
Bad inputs (no run, a linear run, an unfinished run) are one line and exit code 2, before any run is
computed or written.
"""

from __future__ import annotations

import json
import shutil

import pytest

SYNTH = ["--data", "synthetic", "--fast", "--epochs", "2", "--max-train-docs", "300", "--max-valid-docs", "80",
         "--max-test-docs", "120", "--seed", "5"]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, load_script):
    """A finished run that stored its calibrated entry when it trained."""
    out = tmp_path_factory.mktemp("calscript") / "fresh"
    assert load_script("examples/train_otseq2set.py").main([*SYNTH, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("examples/calibrate.py")


def _without_entry(fresh, dest):
    """A copy of the run as it was before calibration existed: metrics.json without ``calibrated``."""
    shutil.copytree(fresh, dest)
    m = json.loads((dest / "metrics.json").read_text())
    del m["calibrated"]
    (dest / "metrics.json").write_text(json.dumps(m, indent=2))
    return dest


def _metrics(run):
    return json.loads((run / "metrics.json").read_text())


def test_backfill_equals_the_entry_a_fresh_run_stores(fresh, script, tmp_path, capsys):
    old = _without_entry(fresh, tmp_path / "old")
    before = _metrics(old)
    assert script.main([str(old), "--threads", "1", "--device", "cpu"]) == 0
    assert "written" in capsys.readouterr().out
    after = _metrics(old)
    assert after["calibrated"] == _metrics(fresh)["calibrated"]  # the same tau and figures, exactly
    assert {k: v for k, v in after.items() if k != "calibrated"} == before  # every other key kept
    assert not list(old.glob(".*.tmp")) and not list(old.glob("*.tmp"))


def test_entry_kept_unless_overwrite_and_dry_run_writes_nothing(fresh, script, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(fresh, run)
    m = _metrics(run)
    m["calibrated"]["tau"] = 0.123  # a marker: recomputing would replace it
    (run / "metrics.json").write_text(json.dumps(m))
    text = (run / "metrics.json").read_text()
    assert script.main([str(run)]) == 0 and "kept" in capsys.readouterr().out
    assert (run / "metrics.json").read_text() == text
    assert script.main([str(run), "--overwrite", "--dry-run"]) == 0 and "--dry-run" in capsys.readouterr().out
    assert (run / "metrics.json").read_text() == text
    assert script.main([str(run), "--overwrite"]) == 0
    capsys.readouterr()
    assert _metrics(run)["calibrated"] == _metrics(fresh)["calibrated"]


def test_predict_calibrated_works_after_the_backfill(fresh, script, tmp_path, load_script, capsys):
    old = _without_entry(fresh, tmp_path / "old")
    predict = load_script("examples/predict.py")
    assert predict.main([str(old), "token words", "--calibrated"]) == 2
    assert "examples/calibrate.py" in capsys.readouterr().err
    assert script.main([str(old)]) == 0
    assert predict.main([str(old), "token words", "--calibrated", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["text"] == "token words"


def test_bad_run_directories_one_line_and_nothing_written(fresh, script, tmp_path, capsys, load_script):
    def fails(argv, message):
        assert script.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("calibrate.py: error: ") and message in err, err

    good = _without_entry(fresh, tmp_path / "good")
    text = (good / "metrics.json").read_text()
    fails([str(good), str(tmp_path / "missing")], "run directory")
    assert (good / "metrics.json").read_text() == text  # every run is checked before any is computed
    empty = tmp_path / "empty"
    empty.mkdir()
    fails([str(empty)], "holds no best.pt to calibrate (is it a run directory")
    linear = tmp_path / "linear"
    assert load_script("examples/train_linear.py").main(
        ["--data", "synthetic", "--max-train-docs", "200", "--out", str(linear)]) == 0
    capsys.readouterr()
    fails([str(linear)], "a linear run stores its calibrated entry when it trains")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(fresh, unfinished)
    m = _metrics(unfinished)
    del m["test"], m["calibrated"]
    (unfinished / "metrics.json").write_text(json.dumps(m))
    fails([str(unfinished)], "has no 'test' entry: the run has not finished")
    (unfinished / "metrics.json").write_text("{not json")
    fails([str(unfinished)], "is not valid JSON")
    (unfinished / "metrics.json").unlink()
    fails([str(unfinished)], "no metrics.json at")
    fails([], "the following arguments are required: RUN_DIR")
