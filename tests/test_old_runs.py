"""Runs written by older code still load: their ``config.json`` re-runs (``--config``), their checkpoints resume.

``tests/fixtures/run_666638d`` is a tiny OTSeq2Set run (synthetic data, width 4)
written by the code of commit 666638d, before ``xmtc`` was grouped into
subpackages and before mid-epoch checkpoints: it was stopped after epoch 1 of 3
(its ``checkpoint.pt`` is epoch 1's end). Today's code must accept its config,
continue it from epoch 2 with ``--resume`` and finish it. Every committed result
neural record's ``config.json`` (``results/``) must compose into today's config as well.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from xmtc.config import compose, read_config

REPO = Path(__file__).resolve().parents[1]
OLD_RUN = REPO / "tests" / "fixtures" / "run_666638d"


@pytest.mark.slow  # 4-6 s: two epochs and a test evaluation
def test_old_checkpoint_resumes_and_finishes(tmp_path, load_script):
    run = tmp_path / "old"
    shutil.copytree(OLD_RUN, run)
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 1
    train = load_script("examples/train_otseq2set.py")
    assert train.main(["--config", str(run), "--resume", "--progress", "lines"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["epochs"]] == [1, 2, 3]
    assert 0.0 <= metrics["test"]["micro_f1"] <= 1.0 and "calibrated" in metrics
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 3
    cfg = read_config(run)  # the rewritten config.json reads back, same settings as the old one
    old = read_config(OLD_RUN)
    assert cfg.net == old.net and cfg.train == old.train and cfg.data == old.data


def test_old_config_reruns_with_flags(tmp_path, load_script):
    train = load_script("examples/train_otseq2set.py")
    out = tmp_path / "again"
    assert train.main(["--config", str(OLD_RUN / "config.json"), "--out", str(out), "--epochs", "1",
                       "--set", "data.options.n_docs=200", "--progress", "lines"]) == 0
    cfg = read_config(out)
    assert cfg.train.epochs == 1 and cfg.data.options == {"n_docs": 200, "n_labels": 8} and cfg.net.hidden_size == 4


# the neural runs' records (the linear reference has a config of its own, examples/train_linear.py)
RECORDS = [p for p in sorted((REPO / "results").glob("*/*/**/config.json"))
           if json.loads(p.read_text()).get("model") != "linear"]


@pytest.mark.parametrize("path", RECORDS, ids=[str(p.relative_to(REPO / "results").parent) for p in RECORDS])
def test_committed_records_compose(path):
    saved = json.loads(path.read_text())
    cfg = compose(saved=saved, where=str(path))
    assert cfg.model == saved["model"] and cfg.preset == saved["preset"]
    for section in ("data", "net", "train"):
        for name, value in saved[section].items():
            assert getattr(getattr(cfg, section), name) == value, f"{path}: {section}.{name}"
