"""Smoke test of benchmarks/train_step.py at a minuscule scale (seconds)."""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("train_step_bench", REPO / "benchmarks" / "train_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_step_benchmark_runs_and_writes_json(bench, tmp_path):
    out = tmp_path / "step.json"
    loss_modules = [importlib.import_module(m) for m in ("losses.set_loss", "losses.matching", "losses.ipot")]
    before = {(m, a): f for m in loss_modules for a, f in vars(m).items() if callable(f)}
    rows = bench.main(["--device", "cpu", "--preset", "eurlex", "amazon670k", "--scale", "0.0001",
                       "--hidden", "8", "--embed", "8", "--steps", "2", "--warmup", "1", "--threads", "1",
                       "--json", str(out), "--quiet"])
    # the loss modules are left as they were (sections are timed by the profiler, nothing is wrapped)
    assert all(getattr(m, a) is f for (m, a), f in before.items())
    data = json.loads(out.read_text())
    assert [r["preset"] for r in data["rows"]] == ["eurlex", "amazon670k"] == [r["preset"] for r in rows]
    for r in data["rows"]:
        assert r["B"] == 2 and r["N"] == bench.PRESETS[r["preset"]]["N"]
        for model in ("Seq2Seq", "OTSeq2Set"):
            m = r[model]
            assert m["step_s"] > 0 and m["tokens_per_s"] > 0 and m["params"] > 0
        o = r["OTSeq2Set"]
        # the matching and IPOT were seen by the timers, and are a part of the step
        assert 0 < o["matching_share"] < 1 and 0 < o["ipot_share"] < 1
        assert r["ratio"] == pytest.approx(o["step_s"] / r["Seq2Seq"]["step_s"])


def test_scaled_shapes_keep_n_and_widths(bench):
    p = bench.PRESETS["amazoncat"]
    s = bench.scaled_shape(p, 0.1)
    assert (s["B"], s["S"], s["N"], s["n_labels"]) == (6, 50, 57, 1333)
    assert s["bottleneck"] == p["bottleneck"] and s["last_stride"] == p["last_stride"]


def test_batch_shapes(bench):
    b = bench.make_batch(B=4, S=20, N=5, n_labels=30, vocab=50, mean_labels=3.0, seed=0)
    assert b.src.shape == (4, 20) and b.src_mask[0].all() and len(b) == 4
    assert b.label_mask.any(1).all() and (b.label_mask.sum(1) <= 5).all()
    assert (b.labels < 30).all() and (b.src[~b.src_mask] == 0).all()
