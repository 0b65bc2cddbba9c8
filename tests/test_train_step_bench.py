"""benchmarks/train_step.py at a minuscule scale (seconds): its report's structure and arithmetic, and that
the step it times is the engine's training step (no timing is asserted)."""

from __future__ import annotations

import importlib
import json

import pytest
import torch


@pytest.fixture(scope="module")
def bench(load_script):
    return load_script("benchmarks/train_step.py")


@pytest.mark.slow  # the quick tier: the timed step, its profiler and the shapes (the tests below)
def test_train_step_benchmark_runs_and_writes_json(bench, tmp_path):
    # the structure and the arithmetic of the report; its timings themselves are not asserted
    out = tmp_path / "step.json"
    loss_modules = [importlib.import_module(m) for m in ("losses.set_loss", "losses.matching", "losses.ipot")]
    before = {(m, a): f for m in loss_modules for a, f in vars(m).items() if callable(f)}
    argv = ["--device", "cpu", "--preset", "eurlex", "amazon670k", "--scale", "0.0001", "--hidden", "8",
            "--embed", "8", "--steps", "2", "--warmup", "1", "--threads", "1", "--seed", "0", "--json", str(out),
            "--quiet"]
    rows = bench.main(argv)
    # the loss modules are left as they were (sections are timed by the profiler, nothing is wrapped)
    assert all(getattr(m, a) is f for (m, a), f in before.items())
    data = json.loads(out.read_text())
    assert {"device", "torch", "threads", "scale", "hidden", "embed", "steps", "warmup", "amp"} <= set(data["meta"])
    assert (data["meta"]["scale"], data["meta"]["hidden"], data["meta"]["amp"]) == (0.0001, 8, False)
    assert [r["preset"] for r in data["rows"]] == ["eurlex", "amazon670k"] == [r["preset"] for r in rows]
    for r in data["rows"]:
        p = bench.PRESETS[r["preset"]]
        shape = bench.scaled_shape(p, 0.0001)
        assert (r["B"], r["S"], r["N"], r["V"]) == (shape["B"], shape["S"], p["N"], shape["n_labels"] + 4)
        assert (r["bottleneck"], r["lightconv"], r["scheme"]) == (p["bottleneck"], p["lightconv"], p["scheme"])
        # the batch the models were timed on: the row's label counts are those of make_batch
        vocab = min(shape["vocab"], 50000)
        batch = bench.make_batch(shape["B"], shape["S"], p["N"], shape["n_labels"], vocab, p["mean_labels"], 0)
        assert r["n_max"] == batch.label_mask.shape[1]
        assert r["mean_n"] == pytest.approx(batch.label_mask.sum(1).float().mean().item())
        # parameters of the models at these shapes
        models = bench.build_models(shape, 8, 8, vocab)
        for name, model in models.items():
            assert r[name]["params"] == sum(q.numel() for q in model.parameters())
        # per-step rates: documents and decoder steps (N for OTSeq2Set, n_max + 1 with EOS for Seq2Seq)
        for name, steps in (("OTSeq2Set", p["N"]), ("Seq2Seq", r["n_max"] + 1)):
            m = r[name]
            assert m["docs_per_s"] * m["step_s"] == pytest.approx(r["B"])
            assert m["tokens_per_s"] * m["step_s"] == pytest.approx(r["B"] * steps)
        o = r["OTSeq2Set"]
        # the matching and IPOT were seen by the timers, and are a part of the step
        assert 0 < o["matching_share"] < 1 and 0 < o["ipot_share"] < 1
        assert "matching_share" not in r["Seq2Seq"]
        assert r["ratio"] == pytest.approx(o["step_s"] / r["Seq2Seq"]["step_s"])


def test_timed_step_is_the_engine_step_and_timers_change_no_numbers(bench, monkeypatch):
    """The benchmark's step computes what xmtc.train.engine.train_one_epoch computes, profiler on or off."""
    from xmtc.train.distributed import LossModule
    from xmtc.train.engine import train_one_epoch

    monkeypatch.setattr(bench, "GRAD_CLIP", 1e-3)  # small enough that the clipping changes the step

    shape = bench.scaled_shape(bench.PRESETS["eurlex"], 0.0002)
    batch = bench.make_batch(shape["B"], shape["S"], shape["N"], shape["n_labels"], 300, 5.3, seed=1)
    cpu = torch.device("cpu")
    results = []
    for way in ("engine", "bench", "bench+profiler"):
        torch.manual_seed(0)
        model = bench.build_models(shape, 8, 8, 300)["OTSeq2Set"]
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        torch.manual_seed(1)  # dropout
        if way == "engine":
            terms = train_one_epoch(LossModule(model), [batch], optimizer, device=cpu, grad_clip=bench.GRAD_CLIP,
                                    amp=False)
            loss = terms["loss"]
        else:
            out = {}

            def step():
                out["loss"] = bench.train_step(model, batch, optimizer, cpu, amp=False)["loss"].item()

            if way == "bench+profiler":
                ((_, seconds),) = bench.profiled_sections(step, cpu, 1)
                assert set(seconds) == {"matching", "ipot"}  # both sections were called
            else:
                step()
            loss = out["loss"]
        results.append((loss, [q.detach().clone() for q in model.parameters()]))
    (loss0, params0), *others = results
    for loss, params in others:
        assert loss == loss0
        assert all(torch.equal(a, b) for a, b in zip(params0, params))


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
