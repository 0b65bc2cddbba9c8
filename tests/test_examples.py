"""End-to-end tests through the example scripts' own entry points (``main(argv)``).

Every run is small (synthetic data or a Reuters subset, a small network, one
or two epochs) and takes seconds. Checked: the run directory holds the
promised files; metrics are finite and better than chance; an interrupted run
resumed with ``--resume`` (after an epoch or in the middle of one) runs only
the remaining epochs, uses the saved optimizer and RNG states and ends exactly
where an uninterrupted run ends; bad arguments give one line on stderr and
exit code 2, not a traceback.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluation import evaluate
from xmtc.train import checkpoint
from xmtc import inference
from xmtc.reporting.progress import RichProgress

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

# tiny settings shared by the runs below (on top of the --fast preset)
SYNTH = ["--data", "synthetic", "--fast", "--epochs", "2", "--max-train-docs", "300", "--max-valid-docs", "60",
         "--max-test-docs", "120", "--seed", "3"]


@pytest.fixture(scope="module")
def scripts(load_script):
    names = ("train_otseq2set", "train_seq2seq", "train_mlc2seq", "train_sgm", "benchmark", "predict")
    return {n: load_script(f"examples/{n}.py") for n in names}


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def chance_micro_f1(gold: list[set[int]], n_labels: int, mean_labels: float, seed: int = 0) -> float:
    """Micro-F1 of random label sets (uniform labels, the average set size)."""
    rng = np.random.default_rng(seed)
    k = max(1, round(mean_labels))
    pred = [set(rng.choice(n_labels, size=k, replace=False).tolist()) for _ in gold]
    return evaluate(pred, gold, n_labels)["micro_f1"]


def gold_of(run_dir: Path) -> list[list[str]]:
    rows = (run_dir / "predictions.tsv").read_text().splitlines()[1:]
    return [r.split("\t") for r in rows]


def check_run_dir(run_dir: Path, n_epochs: int) -> dict:
    for name in ("config.json", "metrics.json", "predictions.tsv", "checkpoint.pt", "best.pt"):
        assert (run_dir / name).is_file(), name
    assert not list(run_dir.glob("*.tmp")), "a temporary file was left behind"
    config = json.loads((run_dir / "config.json").read_text())
    assert {"model", "data", "net", "train", "model_config", "parameters"} <= set(config)
    metrics = read_metrics(run_dir)
    assert len(metrics["epochs"]) == n_epochs
    for rec in metrics["epochs"]:
        assert {"loss"} <= set(rec["train"]) and "micro_f1" in rec["valid"]
        assert all(math.isfinite(v) for v in rec["train"].values())
    test = metrics["test"]
    for key in ("micro_precision", "micro_recall", "micro_f1", "macro_precision", "macro_recall", "macro_f1",
                "weighted_f1", "example_precision", "example_recall", "example_f1", "subset_accuracy",
                "hamming_loss", "p@1", "ndcg@5"):
        assert key in test and math.isfinite(test[key]), key
    assert metrics["parameters"] > 0 and metrics["train_time_s"] > 0
    header, *rows = (run_dir / "predictions.tsv").read_text().splitlines()
    assert header.split("\t") == ["doc_id", "gold", "predicted"]
    assert all(len(r.split("\t")) == 3 for r in rows)
    return metrics


# --------------------------------------------------------------------------- runs
def test_otseq2set_synthetic_run_dir_and_learning(scripts, tmp_path):
    out = tmp_path / "run"
    assert scripts["train_otseq2set"].main(SYNTH + ["--epochs", "3", "--out", str(out)]) == 0
    metrics = check_run_dir(out, 3)
    rows = gold_of(out)
    assert len(rows) == 120
    # better than chance: random label sets of the average size
    cfg = json.loads((out / "config.json").read_text())
    n_labels = cfg["dataset"]["n_labels"]
    names = {}
    gold = [{names.setdefault(x, len(names)) for x in r[1].split("|")} for r in rows]
    chance = chance_micro_f1(gold, max(n_labels, len(names)), cfg["dataset"]["mean_labels"])
    assert metrics["test"]["micro_f1"] > chance + 0.1
    # predictions.tsv agrees with the test metrics (names -> sets -> micro-F1)
    pred = [{names.setdefault(x, len(names)) for x in r[2].split("|") if x} for r in rows]
    again = evaluate(pred, gold, len(names))["micro_f1"]
    # ids beyond the test's labels only add false positives / misses identically
    assert again == pytest.approx(metrics["test"]["micro_f1"], abs=1e-9)
    # the best checkpoint is the best validation epoch
    best = max(metrics["epochs"], key=lambda r: r["valid"]["micro_f1"])
    assert metrics["best"]["epoch"] == best["epoch"]


@pytest.mark.parametrize("name", ["train_seq2seq", "train_mlc2seq", "train_sgm"])
def test_baseline_scripts_synthetic(scripts, tmp_path, name):
    out = tmp_path / name
    assert scripts[name].main(SYNTH + ["--epochs", "1", "--out", str(out)]) == 0
    check_run_dir(out, 1)
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == name.removeprefix("train_")


@pytest.mark.slow  # the quick tier trains on synthetic data; Reuters is read in test_data_real.py
def test_reuters_subset(scripts, tmp_path, data_dir):
    out = tmp_path / "reuters"
    argv = ["--data", "reuters", "--data-dir", str(data_dir), "--fast", "--epochs", "2", "--max-train-docs", "800",
            "--max-valid-docs", "100", "--max-test-docs", "300", "--out", str(out)]
    assert scripts["train_otseq2set"].main(argv) == 0
    metrics = check_run_dir(out, 2)
    rows = gold_of(out)
    names: dict[str, int] = {}
    gold = [{names.setdefault(x, len(names)) for x in r[1].split("|")} for r in rows]
    chance = chance_micro_f1(gold, 90, 1.23)
    assert metrics["test"]["micro_f1"] > chance + 0.2  # the model learnt something real
    assert metrics["test"]["p@1"] > 0.3


# --------------------------------------------------------------------------- resume
# One uninterrupted 2-epoch run and one run stopped after epoch 1 are shared by the resume tests;
# each test resumes its own copy. What the engine reports is recorded by wrapping RichProgress,
# the callbacks object the script hands to the engine.
RESUME_ARGV = SYNTH + ["--epochs", "2", "--progress", "bars"]  # the scripts draw RichProgress only with bars
_HOOKS = ("on_fit_start", "on_epoch_start", "on_batch", "on_epoch_end")
_TIMINGS = {"time_s", "docs_per_s", "valid_time_s"}


def run_recorded(script, argv, stop=None):
    """Run ``script.main(argv)``; return its exit code and the engine's reports as ``(hook, args)``.

    ``stop(hook, args)`` returning True raises KeyboardInterrupt there (Ctrl-C at that moment).
    """
    events = []
    with pytest.MonkeyPatch.context() as mp:
        for name in _HOOKS:
            def hook(self, *args, _name=name, _original=getattr(RichProgress, name)):
                _original(self, *args)
                events.append((_name, args))
                if stop is not None and stop(_name, args):
                    raise KeyboardInterrupt

            mp.setattr(RichProgress, name, hook)
        code = script.main(argv)
    return code, events


def epochs_started(events) -> list[int]:
    return [args[0] for name, args in events if name == "on_epoch_start"]


def batches_run(events) -> list[tuple[int, int]]:
    return [(args[0], args[1]) for name, args in events if name == "on_batch"]


def without_timings(record: dict) -> dict:
    return {k: (without_timings(v) if isinstance(v, dict) else v) for k, v in record.items() if k not in _TIMINGS}


def final_weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]


def assert_same_run(a: Path, b: Path) -> None:
    """Bit-identical results: test metrics, every epoch's record but its timings, weights, predictions."""
    ma, mb = read_metrics(a), read_metrics(b)
    assert ma["test"] == mb["test"]
    assert [without_timings(r) for r in ma["epochs"]] == [without_timings(r) for r in mb["epochs"]]
    assert ma["best"] == mb["best"]
    for name in ("checkpoint.pt", "best.pt"):
        sa = torch.load(a / name, weights_only=True)["model"]
        sb = torch.load(b / name, weights_only=True)["model"]
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), (name, k)
    assert (a / "predictions.tsv").read_text() == (b / "predictions.tsv").read_text()


@pytest.fixture(scope="module")
def straight_run(scripts, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    code, events = run_recorded(scripts["train_otseq2set"], RESUME_ARGV + ["--out", str(out)])
    assert code == 0 and epochs_started(events) == [1, 2]
    return out, events


@pytest.fixture(scope="module")
def stopped_after_epoch_1(scripts, tmp_path_factory):
    """A run interrupted right after epoch 1 was checkpointed (kept pristine: tests copy it)."""
    out = tmp_path_factory.mktemp("stopped") / "run"
    code, _ = run_recorded(scripts["train_otseq2set"], RESUME_ARGV + ["--out", str(out)],
                           stop=lambda name, args: name == "on_epoch_end" and args[0]["epoch"] == 1)
    assert code == 130
    assert not (out / "predictions.tsv").exists()
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 1
    return out


def resume_copy(scripts, stopped: Path, tmp_path: Path, corrupt=None):
    """Copy a stopped run, optionally edit its checkpoint.pt state, resume it; return (dir, events)."""
    out = tmp_path / "resumed"
    shutil.copytree(stopped, out)
    if corrupt is not None:
        state = checkpoint.load(out / "checkpoint.pt")
        corrupt(state)
        checkpoint.save(state, out / "checkpoint.pt")
    code, events = run_recorded(scripts["train_otseq2set"], RESUME_ARGV + ["--out", str(out), "--resume"])
    assert code == 0
    return out, events


def test_resume_reaches_the_uninterrupted_result(scripts, tmp_path, straight_run, stopped_after_epoch_1):
    straight, straight_events = straight_run
    resumed, events = resume_copy(scripts, stopped_after_epoch_1, tmp_path)
    assert_same_run(straight, resumed)
    # and it got there by running only epoch 2: every batch of it, once (a resume that retrains
    # from epoch 0 reaches the same seeded result, so the result alone does not prove a resume)
    fit_start = [args for name, args in events if name == "on_fit_start"]
    assert [args[0] for args in fit_start] == [1]  # start_epoch: 1 epoch already completed
    assert epochs_started(events) == [2]
    assert batches_run(events) == [b for b in batches_run(straight_events) if b[0] == 2]
    assert [r["epoch"] for r in read_metrics(resumed)["epochs"]] == [1, 2]


@pytest.mark.slow  # the quick tier: test_resume_reaches_the_uninterrupted_result, test_resume_midepoch.py
def test_resume_uses_the_saved_optimizer_state(scripts, tmp_path, straight_run, stopped_after_epoch_1):
    def zero_adam_moments(state):
        moments = [t for s in state["optimizer"]["state"].values() for k, t in s.items()
                   if k in ("exp_avg", "exp_avg_sq")]
        assert moments  # Adam has state after epoch 1
        for t in moments:
            t.zero_()

    resumed, events = resume_copy(scripts, stopped_after_epoch_1, tmp_path, corrupt=zero_adam_moments)
    assert epochs_started(events) == [2]
    # the same weights, data and RNG with other Adam moments: epoch 2 ends elsewhere
    a, b = final_weights(straight_run[0]), final_weights(resumed)
    assert any(not torch.equal(a[k], b[k]) for k in a)
    # epoch 1 came from the checkpoint untouched
    assert read_metrics(resumed)["epochs"][0] == read_metrics(stopped_after_epoch_1)["epochs"][0]


@pytest.mark.slow  # as above
def test_resume_uses_the_saved_rng_state(scripts, tmp_path, straight_run, stopped_after_epoch_1):
    def other_torch_rng(state):
        state["rng"]["torch"] = torch.Generator().manual_seed(12345).get_state()

    resumed, events = resume_copy(scripts, stopped_after_epoch_1, tmp_path, corrupt=other_torch_rng)
    assert epochs_started(events) == [2]
    # the same weights, optimizer and batches with other dropout masks (dropout 0.2): another epoch 2
    a, b = final_weights(straight_run[0]), final_weights(resumed)
    assert any(not torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow  # the quick tier: test_resume_midepoch.py (in the engine and in a real process)
def test_interrupted_mid_epoch_continues_from_the_last_completed_epoch(scripts, tmp_path, straight_run):
    straight, straight_events = straight_run
    out = tmp_path / "run"
    train = scripts["train_otseq2set"]
    # Ctrl-C after the third optimiser step of epoch 2: those steps are lost, epoch 1 is not
    code, events = run_recorded(train, RESUME_ARGV + ["--out", str(out)],
                                stop=lambda name, args: name == "on_batch" and args[:2] == (2, 3))
    assert code == 130
    assert batches_run(events)[-1] == (2, 3)
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert [r["epoch"] for r in read_metrics(out)["epochs"]] == [1]
    code, events = run_recorded(train, RESUME_ARGV + ["--out", str(out), "--resume"])
    assert code == 0
    assert epochs_started(events) == [2]
    epoch_2 = [b for b in batches_run(straight_events) if b[0] == 2]
    assert len(epoch_2) > 3 and batches_run(events) == epoch_2  # epoch 2 again from its first batch
    assert_same_run(straight, out)


def test_predict_entry_point_and_function(scripts, tmp_path, capsys):
    out = tmp_path / "run"
    assert scripts["train_otseq2set"].main(SYNTH + ["--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    run = inference.load_run(out, device="cpu")
    rows = gold_of(out)
    # a training document's own text gets the labels the run directory predicted for it
    from xmtc.data.datasets import load

    ds = load("synthetic", n_docs=600, n_labels=20)
    texts = [ds.test.text(i) for i in range(5)]
    labelled = inference.predict_texts(run, texts)
    for row, labels in zip(rows[:5], labelled):
        assert sorted(n for n, _ in labels) == sorted(x for x in row[2].split("|") if x)
        assert all(0.0 <= s <= 1.0 for _, s in labels)
    top = inference.predict_texts(run, texts[:2], top_k=3)
    assert [len(t) for t in top] == [3, 3]
    assert scripts["predict"].main([str(out), texts[0], "--top-k", "2"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and printed[0].count("(") == 2


def test_benchmark_writes_table(scripts, tmp_path, capsys):
    out = tmp_path / "bench"
    argv = SYNTH + ["--epochs", "1", "--models", "Seq2Seq,BM,BM+OT+LC", "--out", str(out)]
    assert scripts["benchmark"].main(argv) == 0
    text = capsys.readouterr().out
    assert "micro-F1" in text and "BM+OT+LC" in text
    results = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in results["rows"]] == ["Seq2Seq", "BM", "BM+OT+LC"]
    md = (out / "results.md").read_text()
    assert md.count("\n| ") == 4  # header + 3 rows
    for r in results["rows"]:
        assert math.isfinite(r["micro_f1"]) and r["parameters"] > 0 and r["train_time_s"] > 0
    bm = json.loads((out / "BM" / "config.json").read_text())
    assert bm["net"]["ot_weight"] == 0 and bm["net"]["use_lightconv"] is False
    full = json.loads((out / "BM+OT+LC" / "config.json").read_text())
    assert full["net"]["ot_weight"] == 8.0 and full["model_config"]["use_lightconv"] is True


# --------------------------------------------------------------------------- bad arguments
def _one_line_error(capsys, code, expected_code=2) -> str:
    err = capsys.readouterr().err.strip()
    assert code == expected_code
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def test_unknown_dataset(scripts, capsys, tmp_path):
    err = _one_line_error(capsys, scripts["train_otseq2set"].main(["--data", "imagenet", "--out", str(tmp_path)]))
    assert "invalid choice" in err and "imagenet" in err


def test_bad_option_value(scripts, capsys, tmp_path):
    err = _one_line_error(capsys, scripts["train_otseq2set"].main(["--data", "synthetic", "--epochs", "0"]))
    assert "--epochs" in err


def test_missing_data_directory(scripts, capsys, tmp_path):
    code = scripts["train_otseq2set"].main(["--data", "reuters", "--data-dir", str(tmp_path / "nope"),
                                            "--out", str(tmp_path / "r")])
    assert "does not exist" in _one_line_error(capsys, code)


def test_data_directory_without_the_dataset(scripts, capsys, tmp_path):
    # the user's own example, without the Eurlex-4K files in place
    code = scripts["train_otseq2set"].main(["--data", "eurlex", "--data-dir", str(tmp_path),
                                            "--out", str(tmp_path / "r")])
    err = _one_line_error(capsys, code)
    assert "eurlex" in err and "train_texts.txt" in err


@pytest.mark.parametrize("content", [None, b"hello world\n", b"\x89PNG\r\n\x1a\n\x00\x00binary"])
def test_unreadable_embeddings(scripts, capsys, tmp_path, content):
    path = tmp_path / "glove.txt"
    if content is not None:
        path.write_bytes(content)
    code = scripts["train_otseq2set"].main(SYNTH + ["--embeddings", str(path), "--out", str(tmp_path / "r")])
    err = _one_line_error(capsys, code)
    assert "glove.txt" in err


def test_checkpoint_of_another_model(scripts, capsys, tmp_path):
    out = tmp_path / "run"
    assert scripts["train_otseq2set"].main(SYNTH + ["--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    code = scripts["train_seq2seq"].main(SYNTH + ["--epochs", "1", "--out", str(out), "--resume"])
    err = _one_line_error(capsys, code)
    assert "'otseq2set'" in err and "'seq2seq'" in err
    # starting afresh over an existing run is refused too, without --overwrite
    code = scripts["train_otseq2set"].main(SYNTH + ["--epochs", "1", "--out", str(out)])
    assert "--overwrite" in _one_line_error(capsys, code)
    # resuming with other settings
    code = scripts["train_otseq2set"].main(SYNTH + ["--epochs", "1", "--out", str(out), "--resume", "--lr", "0.1"])
    err = _one_line_error(capsys, code)
    assert "other settings (train.lr: 0.005 -> 0.1)" in err and f"--config {out} --resume" in err
    # ... and the command the message gives continues it
    assert scripts["train_otseq2set"].main(["--config", str(out), "--resume"]) == 0


def test_predict_with_a_bad_checkpoint(scripts, capsys, tmp_path):
    (tmp_path / "best.pt").write_bytes(b"not a checkpoint")
    err = _one_line_error(capsys, scripts["predict"].main([str(tmp_path), "some text"]))
    assert "cannot read checkpoint" in err


@pytest.mark.slow  # the quick tier: test_missing_data_directory (in-process), test_script_errors.py (a process)
def test_a_real_process_reports_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES / "train_otseq2set.py"), "--data", "reuters", "--data-dir",
                           str(tmp_path / "missing")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "does not exist" in proc.stderr
