"""examples/evaluate.py: a saved run's metrics, recomputed from its weights, equal metrics.json.

A tiny synthetic run (one epoch, 200 documents, ``--fast``: about a second) is
trained in-process; ``evaluate.py RUN --json`` must give ``metrics.json``'s
``test`` for every key (and ``--split valid`` the best epoch's validation
metrics), with ``best.pt`` or, without it, ``checkpoint.pt``, at any batch
size. A run on files (AttentionXML layout) whose data directory moved is
evaluated with ``--data-dir``. User mistakes give one line on stderr, exit 2.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

TRAIN = ["--fast", "--epochs", "1", "--seed", "3", "--progress", "lines"]


@pytest.fixture(scope="module")
def evaluate_script(load_script):
    return load_script("examples/evaluate.py")


@pytest.fixture(scope="module")
def run_dir(load_script, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evaluate") / "run"
    train = load_script("examples/train_otseq2set.py")
    assert train.main(["--data", "synthetic", *TRAIN, "--set", "data.options.n_docs=200", "--out", str(out)]) == 0
    return out


def metrics_json(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def evaluate_json(script, capsys, argv) -> dict:
    capsys.readouterr()
    assert script.main([*argv, "--json", "--progress", "lines"]) == 0
    return json.loads(capsys.readouterr().out)  # stdout holds only the JSON object


def assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key


def one_line_error(capsys, *, after_progress: bool = False) -> str:
    """The error line; alone on stderr, or (``after_progress``, a mistake found once the data is loaded)
    the last line after the progress lines."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert [line for line in lines if "error" in line] == lines[-1:], err
    assert len(lines) == 1 or after_progress, err
    assert lines[-1].startswith("evaluate.py: error: "), err
    return lines[-1]


def test_test_metrics_equal_metrics_json(evaluate_script, run_dir, capsys):
    want = metrics_json(run_dir)["test"]
    assert want["micro_f1"] > 0 and want["p@1"] > 0  # not a trivially equal all-zero run
    assert_same(evaluate_json(evaluate_script, capsys, [str(run_dir)]), want)


def test_valid_split_equals_the_best_epochs_valid_metrics(evaluate_script, run_dir, capsys):
    m = metrics_json(run_dir)
    (best,) = [r for r in m["epochs"] if r["epoch"] == m["best"]["epoch"]]
    assert_same(evaluate_json(evaluate_script, capsys, [str(run_dir), "--split", "valid"]), best["valid"])


def test_batch_size_and_checkpoint_fallback(evaluate_script, run_dir, capsys, tmp_path):
    want = metrics_json(run_dir)["test"]
    assert_same(evaluate_json(evaluate_script, capsys, [str(run_dir), "--batch-size", "7"]), want)
    copy = tmp_path / "no-best"
    shutil.copytree(run_dir, copy)
    (copy / "best.pt").unlink()  # one epoch: checkpoint.pt holds the same (best) weights
    assert_same(evaluate_json(evaluate_script, capsys, [str(copy)]), want)


def test_table_output(evaluate_script, run_dir, capsys):
    assert evaluate_script.main([str(run_dir), "--progress", "lines"]) == 0
    out, err = capsys.readouterr()
    assert "micro_f1" in out and f"{metrics_json(run_dir)['test']['micro_f1']:.4f}" in out
    assert "weights best.pt" in out
    assert "predict test" in err and "predict test" not in out  # progress on stderr only


def learnable_axml(seed: int = 0) -> dict[str, list[str]]:
    """The files of a small AttentionXML dataset (for ``write_axml``) whose words reveal the labels."""
    import random

    rng = random.Random(seed)
    files = {}
    for split, n in (("train", 60), ("test", 20)):
        texts, labels = [], []
        for _ in range(n):
            labs = sorted(rng.sample(range(8), rng.randint(1, 3)))
            toks = [f"w{lab * 7 + rng.randint(0, 6)}" for lab in labs for _ in range(4)]
            toks += [f"w{rng.randint(0, 59)}" for _ in range(5)]
            texts.append(" ".join(toks))
            labels.append(" ".join(map(str, labs)))
        files[f"{split}_texts"], files[f"{split}_labels"] = texts, labels
    return files


def test_moved_data_dir(write_axml, load_script, evaluate_script, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XMTC_CACHE", str(tmp_path / "cache"))
    write_axml(tmp_path / "data", **learnable_axml())
    run = tmp_path / "run"
    train = load_script("examples/train_otseq2set.py")
    assert train.main(["--data", "amazon670k", "--data-dir", str(tmp_path / "data"), *TRAIN, "--out", str(run)]) == 0
    want = metrics_json(run)["test"]
    (tmp_path / "data").rename(tmp_path / "moved")
    capsys.readouterr()
    assert evaluate_script.main([str(run)]) == 2
    assert "does not exist; give --data-dir" in one_line_error(capsys)
    got = evaluate_json(evaluate_script, capsys, [str(run), "--data-dir", str(tmp_path / "moved")])
    assert_same(got, want)
    # other data in the directory given: refused, not scored against the wrong labels
    write_axml(tmp_path / "other", **learnable_axml(seed=1))
    (tmp_path / "other" / "Amazon-670K" / "train_labels.txt").write_text("9\n" * 60)
    assert evaluate_script.main([str(run), "--data-dir", str(tmp_path / "other")]) == 2
    assert "is not what" in one_line_error(capsys, after_progress=True)


def test_user_errors_one_line_exit_2(evaluate_script, run_dir, tmp_path, capsys):
    assert evaluate_script.main([str(tmp_path / "missing")]) == 2
    assert one_line_error(capsys).endswith(f"run directory {tmp_path / 'missing'} not found")
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    shutil.copy(run_dir / "config.json", no_weights)
    shutil.copy(run_dir / "metrics.json", no_weights)
    assert evaluate_script.main([str(no_weights)]) == 2
    assert "holds no weights (best.pt or checkpoint.pt)" in one_line_error(capsys)
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    text = (run_dir / "config.json").read_text()
    (broken / "config.json").write_text(text[: len(text) // 2])  # truncated
    assert evaluate_script.main([str(broken)]) == 2
    assert "is not a JSON config" in (line := one_line_error(capsys)) and " line " in line and " column " in line
    assert evaluate_script.main([str(run_dir), "--split", "train"]) == 2
    assert "invalid choice" in one_line_error(capsys)
