"""Every example script reports a user mistake in one line on stderr with exit code 2, never a traceback.

Mistakes tried: a missing data directory or file, an unknown dataset name, an
unreadable or damaged file (a truncated archive, a directory where a file is
expected, a GloVe file that is not one, a truncated ``config.json`` or
``metrics.json``), a missing run or results directory. The cases that matter
most (``dataset_stats.py`` without ``--data-dir``, the issue's example) run as
subprocesses, exactly as a user runs them; the others in-process through the
scripts' ``main(argv)``. Data-free: every input is made in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xmtc.config import settings
from xmtc.config import ConfigError

REPO = Path(__file__).resolve().parents[1]


def check_one_line(err: str, prog: str) -> str:
    """``err`` is exactly one line, ``PROG: error: ...``, with no traceback; returns it."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: "), err
    return lines[0]


def run_script(script: str, args: list[str], cwd: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("XMTC_DATA", "XMTC_CACHE")}
    env["XMTC_CACHE"] = str(tmp_path / "cache")
    return subprocess.run([sys.executable, str(REPO / "examples" / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch) -> Path:
    """A working directory without ./data, no $XMTC_DATA, the cache in tmp_path."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("XMTC_DATA", raising=False)
    monkeypatch.setenv("XMTC_CACHE", str(tmp_path / "cache"))
    return cwd


@pytest.fixture
def call(capsys):
    """``call(module, argv, prog)`` -> the error line, after checking exit code 2 and a single stderr line."""
    def run(module, argv, prog):
        capsys.readouterr()
        assert module.main(argv) == 2
        return check_one_line(capsys.readouterr().err, prog)

    return run


# --------------------------------------------------------------------------- dataset_stats.py (subprocess)
def test_dataset_stats_without_data_dir(tmp_path):
    """The issue's example: no --data-dir, no $XMTC_DATA, no ./data."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    res = run_script("dataset_stats.py", ["--data", "reuters", "eurlex57k"], cwd, tmp_path)
    assert res.returncode == 2
    line = check_one_line(res.stderr, "dataset_stats.py")
    assert "reuters21578.tar.gz" in line and "found neither" in line
    assert res.stdout.strip() == ""
    assert not (cwd / "data").exists() and sorted(os.listdir(cwd)) == []


@pytest.mark.slow  # the quick tier: test_dataset_stats_without_data_dir, test_data_bad_input.py's archives
def test_dataset_stats_bad_name_and_truncated_archive(tmp_path):
    res = run_script("dataset_stats.py", ["--data", "nosuch"], tmp_path, tmp_path)
    assert res.returncode == 2
    assert "invalid choice: 'nosuch'" in check_one_line(res.stderr, "dataset_stats.py")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "reuters21578.tar.gz").write_bytes(b"\x1f\x8b\x08\x00 truncated")
    res = run_script("dataset_stats.py", ["--data", "reuters", "--data-dir", str(bad)], tmp_path, tmp_path)
    assert res.returncode == 2
    assert "not a readable .tar.gz archive" in check_one_line(res.stderr, "dataset_stats.py")


# --------------------------------------------------------------------------- dataset_stats.py (in-process)
def test_dataset_stats_unreadable_files(write_axml, load_script, call, tmp_path, empty_cwd):
    stats = load_script("examples/dataset_stats.py")
    folder = write_axml(tmp_path / "d")
    (folder / "train_texts.txt").unlink()
    (folder / "train_texts.txt").mkdir()  # a directory where a file is expected (unreadable even for root)
    line = call(stats, ["--data", "amazon670k", "--data-dir", str(tmp_path / "d")], "dataset_stats.py")
    assert "train_texts.txt" in line
    line = call(stats, ["--data", "amazon670k", "--data-dir", str(tmp_path / "missing")], "dataset_stats.py")
    assert "missing" in line
    (tmp_path / "glove.txt.gz").write_bytes(b"not gzip")
    line = call(stats, ["--data", "synthetic", "--glove", str(tmp_path / "glove.txt.gz")], "dataset_stats.py")
    assert "glove.txt.gz" in line


def test_dataset_stats_notes_the_cache_once(write_axml, load_script, capsys, tmp_path, empty_cwd):
    stats = load_script("examples/dataset_stats.py")
    write_axml(tmp_path / "d")
    assert stats.main(["--data", "amazon670k", "--data-dir", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert out.count("prepared-data cache written to") == 1 and str(tmp_path / "cache") in out
    assert stats.main(["--data", "amazon670k", "--data-dir", str(tmp_path / "d")]) == 0
    assert "prepared-data cache written" not in capsys.readouterr().out  # read from the cache


# --------------------------------------------------------------------------- plots.py
def test_plots_dataset_errors(load_script, call, tmp_path, empty_cwd):
    plots = load_script("examples/plots.py")
    assert "invalid choice: 'nosuch'" in call(plots, ["dataset", "nosuch"], "plots.py dataset")
    line = call(plots, ["dataset", "amazon670k", "--data-dir", str(tmp_path / "missing")], "plots.py")
    assert "missing" in line
    assert "metrics.json" in call(plots, ["run", str(tmp_path / "no-run")], "plots.py")


# --------------------------------------------------------------------------- benchmark.py
def test_benchmark_missing_data_dir_fails_before_anything(load_script, capsys, call, empty_cwd):
    bench = load_script("examples/benchmark.py")
    line = call(bench, ["--data", "reuters", "--fast", "--models", "Seq2Seq"], "benchmark.py")
    assert "data directory data does not exist" in line
    assert not (empty_cwd / "runs").exists()
    assert "invalid choice" in call(bench, ["--data", "nosuch"], "benchmark.py")


# --------------------------------------------------------------------------- results_table.py
def test_results_table_errors(load_script, call, tmp_path, empty_cwd):
    table = load_script("examples/results_table.py")
    assert "invalid choice: 'nosuch'" in call(table, ["nosuch"], "results_table.py")
    line = call(table, ["reuters", "--results", str(tmp_path / "missing")], "results_table.py")
    assert "results directory" in line and "not found" in line
    run = tmp_path / "results" / "reuters" / "otseq2set" / "seed0"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "metrics.json").write_text('{"epochs": [\n  {"epoch": 1,\n')  # truncated
    line = call(table, ["reuters", "--results", str(tmp_path / "results")], "results_table.py")
    assert "metrics.json is not valid JSON" in line and "line 3 column 1" in line
    shutil.rmtree(tmp_path / "results" / "reuters" / "otseq2set")  # no runs: a table of references only
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    line = call(table, ["reuters", "--results", str(tmp_path / "results"), "--write", str(readme)],
                "results_table.py")
    assert str(readme) in line and "block" in line
    assert readme.read_text() == "no markers here\n"
    line = call(table, ["reuters", "--results", str(tmp_path / "results"), "--write", str(tmp_path / "nope.md")],
                "results_table.py")
    assert "nope.md" in line


# --------------------------------------------------------------------------- config.json: the JSON error's position
def test_truncated_config_keeps_line_and_column(tmp_path):
    cfg = {"model": "otseq2set", "preset": "synthetic", "data": {"name": "synthetic"}, "train": {"epochs": 1}}
    text = json.dumps(cfg, indent=2)
    path = tmp_path / "config.json"
    path.write_text(text[: text.index('"train"')])  # ends after "data": {...},
    with pytest.raises(ConfigError) as info:
        settings.read_config(tmp_path)
    try:
        json.loads(path.read_text())
    except json.JSONDecodeError as e:
        where = f"line {e.lineno} column {e.colno} (char {e.pos})"
    assert where in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ConfigError, match="is not a JSON config .*position 0"):
        settings.read_config(path)


def test_train_and_predict_user_errors(load_script, call, tmp_path, empty_cwd):
    train = load_script("examples/train_otseq2set.py")
    line = call(train, ["--data", "reuters", "--fast", "--data-dir", str(tmp_path / "missing")], "train_otseq2set.py")
    assert "does not exist" in line
    (tmp_path / "config.json").write_text('{"data": {"name": "synthetic",\n')
    line = call(train, ["--config", str(tmp_path / "config.json")], "train_otseq2set.py")
    assert "line 2 column 1" in line
    predict = load_script("examples/predict.py")
    assert "not found" in call(predict, [str(tmp_path / "no-run"), "some text"], "predict.py")
    evaluate = load_script("examples/evaluate.py")
    assert "not found" in call(evaluate, [str(tmp_path / "no-run")], "evaluate.py")
