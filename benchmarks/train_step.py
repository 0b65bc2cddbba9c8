"""Benchmark: one training step of Seq2Seq vs OTSeq2Set at the paper's preset shapes.

Times forward + loss + backward + gradient clipping (norm 8) + Adam step, as
``xmtc.train.engine.train_one_epoch`` does it, of the Seq2Seq baseline (teacher
forcing over ``n_max + 1`` steps, no LightConv) and OTSeq2Set (student forcing
over ``N`` steps, LightConv unless the preset drops it, set loss of Eq. 17) on
identical synthetic batches of the shapes of the paper's presets (DESIGN.md
§2): batch B, source length S (documents of random length in [S/2, S]),
decoder steps N, label vocabulary V, bottleneck, LightConv last stride. Gold
label counts are ``min(N, 1 + Poisson(mean - 1))`` with the means of the
paper's Table 1.

Reported per model and preset: the step time (best of ``--steps`` after
``--warmup``), the share of the OTSeq2Set step spent in the Hungarian matching
(``losses.matching`` host solve, its device gather and transfers) and in IPOT
(``losses.ipot``), documents/s and target tokens/s (decoder steps x batch / s),
and peak memory of the step (CUDA: ``torch.cuda.max_memory_allocated`` minus
the memory held before the step; CPU: sampled RSS high-water mark minus the RSS
before the step, an approximation).

The matching and IPOT shares come from ``torch.profiler``: the set loss labels
its sections with ``record_function`` (``"set_loss.matching"``,
``"set_loss.ipot"``), and ``--steps`` more steps, after the timed ones (so that
the profiler's overhead does not touch the step times), run under the
profiler. A section's time is the larger of its host span (on CUDA: queueing
its kernels, waiting for the scores and the host solve) and the device time of
the kernels it launched; a share is that time over the profiled step's time
(median over the profiled steps).

On CUDA the step runs under bf16 autocast by default (``--no-amp``: float32,
what the engine runs unless ``train.amp`` is set; ``TrainConfig.amp`` defaults
to False, as the authors train in float32) and is timed with CUDA events,
synchronised once per step. On a CPU, use ``--scale`` to
shrink B, S and V (``--scale 0.1`` runs the four presets in a few minutes) and
``--threads 1`` on a shared machine.

Usage::

    python benchmarks/train_step.py --device cpu --scale 0.1 --threads 1 --json cpu.json
    python benchmarks/train_step.py --device cuda --json gpu.json           # real shapes
    python benchmarks/train_step.py --preset eurlex amazoncat --steps 10
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import os
import platform
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from baselines import Seq2Seq, Seq2SeqConfig
from models import OTSeq2Set, OTSeq2SetConfig

# DESIGN.md §2 (Table 2 + Table 1 of the paper): shapes of one training batch.
PRESETS: dict[str, dict] = {
    "eurlex": dict(title="Eurlex-4K", B=32, S=1000, N=24, n_labels=3956, vocab=186104, bottleneck=None,
                   last_stride=3, lightconv=True, scheme="all", lr=1e-3, mean_labels=5.30, label_dim=300),
    "wiki10": dict(title="Wiki10-31K", B=32, S=2000, N=30, n_labels=30938, vocab=101938, bottleneck=300,
                   last_stride=4, lightconv=True, scheme="first_n", lr=1e-3, mean_labels=18.64, label_dim=300),
    "amazoncat": dict(title="AmazonCat-13K", B=64, S=500, N=57, n_labels=13330, vocab=203882, bottleneck=None,
                      last_stride=3, lightconv=True, scheme="first_n", lr=5e-4, mean_labels=5.04, label_dim=300),
    "amazon670k": dict(title="Amazon-670K", B=64, S=500, N=7, n_labels=670091, vocab=135909, bottleneck=512,
                       last_stride=3, lightconv=False, scheme="all", lr=5e-4, mean_labels=5.45, label_dim=100),
}
GRAD_CLIP = 8.0


# -- synthetic batch ------------------------------------------------------------------
def make_batch(B: int, S: int, N: int, n_labels: int, vocab: int, mean_labels: float, seed: int):
    """A ``Batch``-like namespace: ``src (B, S)``, ``src_mask``, ``labels (B, n_max)``, ``label_mask``."""
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    lengths = torch.as_tensor(rng.integers(max(1, S // 2), S + 1, size=B))
    lengths[0] = S  # the batch is S long
    src_mask = torch.arange(S)[None] < lengths[:, None]  # (B, S)
    src = torch.randint(2, vocab, (B, S), generator=g).masked_fill(~src_mask, 0)  # (B, S)
    counts = np.minimum(min(N, n_labels), 1 + rng.poisson(max(mean_labels - 1, 0), size=B))
    n_max = int(counts.max())
    labels = torch.zeros(B, n_max, dtype=torch.long)
    for b, n in enumerate(counts):
        labels[b, :n] = torch.as_tensor(rng.choice(n_labels, size=int(n), replace=False))
    label_mask = torch.arange(n_max)[None] < torch.as_tensor(counts)[:, None]  # (B, n_max)

    class _Batch(SimpleNamespace):
        def __len__(self):
            return self.src.shape[0]

        def to(self, device):
            return _Batch(**{k: v.to(device) for k, v in vars(self).items()})

    return _Batch(src=src, src_mask=src_mask, labels=labels, label_mask=label_mask, index=torch.arange(B))


def scaled_shape(p: dict, scale: float) -> dict:
    """B, S, V (labels) and the input vocabulary shrunk by ``scale`` (N, widths kept)."""
    s = dict(p)
    s["B"] = max(2, round(p["B"] * scale))
    s["S"] = max(8, round(p["S"] * scale))
    s["n_labels"] = max(2 * p["N"], round(p["n_labels"] * scale))
    s["vocab"] = max(100, round(p["vocab"] * scale))
    return s


def build_models(shape: dict, hidden: int, embed: int, vocab: int, ipot_impl: str = "auto"):
    common = dict(vocab_size=vocab, n_labels=shape["n_labels"], embed_dim=embed, label_embed_dim=shape["label_dim"],
                  hidden_size=hidden, bottleneck=shape["bottleneck"], last_stride=shape["last_stride"])
    seq = Seq2Seq(Seq2SeqConfig(**common, use_lightconv=False))
    ots = OTSeq2Set(OTSeq2SetConfig(**common, use_lightconv=shape["lightconv"], n_steps=shape["N"],
                                    scheme=shape["scheme"], **({"ipot_impl": ipot_impl} if ipot_impl != "auto" else {})))
    return {"Seq2Seq": seq, "OTSeq2Set": ots}


# -- timing of the set loss's parts ---------------------------------------------------
#: ``record_function`` labels of ``losses.set_loss.set_loss``'s sections -> the name reported here
SECTIONS = {"set_loss.matching": "matching", "set_loss.ipot": "ipot"}


def profiled_sections(step, device: torch.device, repeats: int) -> list[tuple[float, dict[str, float]]]:
    """Run ``step()`` ``repeats`` times, each under ``torch.profiler``.

    Returns per run its seconds and the seconds of each section of
    :data:`SECTIONS`: the larger of the host span of its ``record_function``
    ranges (summed) and the device time of the kernels launched in them.
    """
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    runs = []
    for _ in range(repeats):
        with profile(activities=activities) as prof:
            t0 = time.perf_counter()
            step()
            if cuda:
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - t0
        events = {e.key: e for e in prof.key_averages()}
        seconds = {name: max(events[label].cpu_time_total, events[label].device_time_total) / 1e6
                   for label, name in SECTIONS.items() if label in events}
        runs.append((elapsed, seconds))
    return runs


# -- memory ------------------------------------------------------------------------
def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RssPeak:
    """High-water mark of the process RSS, sampled every ``interval`` seconds in a thread."""

    def __init__(self, interval: float = 0.002):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def __enter__(self):
        self.base = self.peak = _rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())

    @property
    def delta(self) -> int:
        return self.peak - self.base


# -- one model -----------------------------------------------------------------------
def train_step(model, batch, optimizer, device, amp: bool):
    """Forward + loss + backward + clip + Adam step, as ``xmtc.train.engine.train_one_epoch``."""
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if (amp and device.type == "cuda") else contextlib.nullcontext()
    with ctx:
        terms = model.compute_loss(batch)
    optimizer.zero_grad(set_to_none=True)
    terms["loss"].backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
    optimizer.step()
    return terms


def bench_model(model, batch, lr, device, args, sections: bool = False) -> dict:
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    torch.manual_seed(args.seed)
    for _ in range(args.warmup):
        train_step(model, batch, optimizer, device, args.amp)
    times = []
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        mem_base = torch.cuda.memory_allocated(device)
    gc.collect()
    rss = RssPeak() if not cuda else contextlib.nullcontext()
    with rss:
        for _ in range(args.steps):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                train_step(model, batch, optimizer, device, args.amp)
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end) / 1e3)
            else:
                t0 = time.perf_counter()
                train_step(model, batch, optimizer, device, args.amp)
                times.append(time.perf_counter() - t0)
    best = int(np.argmin(times))
    out = {"step_s": times[best], "median_step_s": float(np.median(times)),
           "peak_mem_bytes": (torch.cuda.max_memory_allocated(device) - mem_base) if cuda else rss.delta,
           "params": sum(p.numel() for p in model.parameters())}
    if sections:
        step = functools.partial(train_step, model, batch, optimizer, device, args.amp)  # bound now: optimizer is deleted below
        runs = profiled_sections(step, device, args.steps)
        # median over the profiled steps of each section's seconds and of its fraction of the step
        for name in SECTIONS.values():
            out[f"{name}_s"] = float(np.median([sec.get(name, 0.0) for _, sec in runs]))
            out[f"{name}_share"] = float(np.median([sec.get(name, 0.0) / t for t, sec in runs]))
    model.to("cpu")
    del optimizer
    return out


def run_preset(name: str, args, device) -> dict:
    p = PRESETS[name]
    shape = scaled_shape(p, args.scale) if args.scale != 1.0 else dict(p)
    vocab = min(shape["vocab"], args.max_vocab) if args.max_vocab else shape["vocab"]
    batch = make_batch(shape["B"], shape["S"], shape["N"], shape["n_labels"], vocab, shape["mean_labels"],
                       args.seed).to(device)
    torch.manual_seed(args.seed)
    models = build_models(shape, args.hidden, args.embed, vocab, args.ipot_impl)
    row = {"preset": name, "title": p["title"], "B": shape["B"], "S": shape["S"], "N": shape["N"],
           "V": shape["n_labels"] + 4, "vocab": vocab, "n_max": int(batch.label_mask.shape[1]),
           "mean_n": float(batch.label_mask.sum(1).float().mean()), "bottleneck": shape["bottleneck"],
           "lightconv": shape["lightconv"], "scheme": shape["scheme"]}
    for model_name, model in models.items():
        r = bench_model(model, batch, p["lr"], device, args, sections=model_name == "OTSeq2Set")
        steps = shape["N"] if model_name == "OTSeq2Set" else row["n_max"] + 1  # decoder steps per document
        r["docs_per_s"] = shape["B"] / r["step_s"]
        r["tokens_per_s"] = shape["B"] * steps / r["step_s"]
        r["src_tokens_per_s"] = float(batch.src_mask.sum()) / r["step_s"]
        row[model_name] = r
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    row["ratio"] = row["OTSeq2Set"]["step_s"] / row["Seq2Seq"]["step_s"]
    return row


# -- Amazon-670K memory: measured at reduced V on CPU, extrapolated --------------------
def _memory_point(args, n_labels: int) -> dict:
    """Peak RSS of two OTSeq2Set training steps at the Amazon-670K preset with ``n_labels`` labels (this process)."""
    p = dict(PRESETS["amazon670k"])
    shape = dict(p, S=args.mem_src, n_labels=n_labels)
    device = torch.device("cpu")
    torch.zeros(8, 8) @ torch.zeros(8, 8)  # load the BLAS before the baseline
    gc.collect()
    with RssPeak(0.001) as rss:
        batch = make_batch(shape["B"], shape["S"], shape["N"], shape["n_labels"], p["vocab"],
                           shape["mean_labels"], args.seed)
        torch.manual_seed(args.seed)
        model = build_models(shape, args.hidden, args.embed, p["vocab"])["OTSeq2Set"]
        opt = torch.optim.Adam(model.parameters(), lr=p["lr"])
        for _ in range(2):  # the second step has the Adam state
            train_step(model, batch, opt, device, False)
        n_params = sum(q.numel() for q in model.parameters())
    return {"V": n_labels + 4, "peak_bytes": rss.delta, "params": n_params}


def amazon670k_memory(args) -> dict:
    """Peak memory of an OTSeq2Set training step at the Amazon-670K preset.

    Two numbers, both labelled as estimates:

    * ``measured_extrapolated``: the step's peak (RSS high-water mark from
      before the model is built, so parameters, gradients, Adam state and
      activations, all float32) measured on this machine's CPU at B=64, N=7,
      bottleneck 512, the full input vocabulary, a short source (``--mem-src``
      tokens) and label vocabularies V = fractions of 670,095; a straight line
      in V fitted through them is evaluated at V = 670,095, and the encoder
      activations are scaled from the measured source length to S=500.
    * ``analytic``: 16 bytes per parameter (fp32 weight, gradient, Adam m and
      v) plus the (B, N, V)-sized float32 buffers alive at the peak of the set
      loss's backward (logits, probabilities, gradient, the OT term's gradient
      and a temporary: 5) and bf16 copies (2), plus the encoder's activations.
    """
    p = dict(PRESETS["amazon670k"])
    V_full = p["n_labels"] + 4
    fractions = args.mem_fractions
    rows = []
    for f in fractions:
        n_labels = max(2 * p["N"], round(p["n_labels"] * f))
        # a fresh process per point: the RSS of a process that already freed big tensors is no baseline
        cmd = [sys.executable, os.path.abspath(__file__), "--device", "cpu", "--threads", str(torch.get_num_threads()),
               "--hidden", str(args.hidden), "--embed", str(args.embed), "--seed", str(args.seed),
               "--mem-src", str(args.mem_src), "--_mem-point", str(n_labels)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    B, N, S = p["B"], p["N"], 500
    # encoder activations grow with B * S: 2 layers x 2 directions x (GRU gates + outputs) per token
    enc_per_token = 4 * (2 * 2 * 4 * args.hidden + args.embed + 2 * 2 * args.hidden)

    def analytic_bytes(n_labels: int, src_len: int) -> float:
        shape = dict(p, n_labels=n_labels)
        with torch.device("meta"):
            net = build_models(shape, args.hidden, args.embed, p["vocab"])["OTSeq2Set"]
        n_params = sum(q.numel() for q in net.parameters())
        bnv = B * N * (n_labels + 4)
        # 16 B/parameter (fp32 weight, grad, Adam m, v); 5 fp32 + 2 bf16 (B, N, V) buffers; encoder
        return 16 * n_params + (5 * 4 + 2 * 2) * bnv + enc_per_token * B * src_len, n_params

    for r in rows:
        r["analytic_bytes"] = analytic_bytes(r["V"] - 4, args.mem_src)[0]
    analytic, n_full = analytic_bytes(V_full - 4, S)
    V = np.array([r["V"] for r in rows], dtype=float)
    peak = np.array([r["peak_bytes"] for r in rows], dtype=float)
    slope, intercept = np.polyfit(V, peak, 1)
    # calibration: measured / analytic at the largest measured V, applied to the full-size analytic figure
    calib = rows[-1]["peak_bytes"] / rows[-1]["analytic_bytes"]
    extrapolated = analytic * calib
    return {"preset": "amazon670k", "V": V_full, "B": B, "N": N, "S": S, "bottleneck": p["bottleneck"],
            "params": n_full, "points": rows, "mem_src": args.mem_src,
            "linear_fit_bytes_per_label": slope, "linear_fit_intercept_bytes": intercept,
            "linear_fit_at_full_V_bytes": intercept + slope * V_full + enc_per_token * B * (S - args.mem_src),
            "calibration": calib, "measured_extrapolated_bytes": extrapolated, "analytic_bytes": analytic,
            "note": "ESTIMATE: the analytic model (16 B/parameter + 5 fp32 and 2 bf16 (B, N, V) buffers + "
                    "encoder activations) checked against the CPU float32 peak RSS measured at reduced V and "
                    "source length, and scaled by measured/analytic at the largest measured V; RSS sampling "
                    "(1 ms) can miss short peaks, so the small-V points are noisy; the CUDA caching "
                    "allocator adds fragmentation on a GPU"}


def _mib(x: float) -> str:
    return f"{x / 2**20:,.0f}"


def print_table(rows, meta):
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    console.print(" ".join(f"{k}={v}" for k, v in meta.items()))
    table = Table(title="training step (forward + loss + backward + clip + Adam), best of steps")
    for col in ("preset", "B", "S", "N", "V", "n̄", "Seq2Seq ms", "OTSeq2Set ms", "ratio", "match %", "IPOT %",
                "Seq2Seq tok/s", "OTSeq2Set tok/s", "Seq2Seq mem MiB", "OTSeq2Set mem MiB"):
        table.add_column(col, justify="right")
    for r in rows:
        s, o = r["Seq2Seq"], r["OTSeq2Set"]
        table.add_row(r["title"], str(r["B"]), str(r["S"]), str(r["N"]), str(r["V"]), f"{r['mean_n']:.1f}",
                      f"{1e3 * s['step_s']:.1f}", f"{1e3 * o['step_s']:.1f}", f"{r['ratio']:.2f}x",
                      f"{100 * o.get('matching_share', 0):.1f}", f"{100 * o.get('ipot_share', 0):.1f}",
                      f"{s['tokens_per_s']:,.0f}", f"{o['tokens_per_s']:,.0f}",
                      _mib(s["peak_mem_bytes"]), _mib(o["peak_mem_bytes"]))
    console.print(table)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--preset", nargs="+", choices=list(PRESETS), default=list(PRESETS))
    ap.add_argument("--scale", type=float, default=None,
                    help="shrink B, S, V and the input vocabulary by this factor (default: 1 on CUDA, 0.1 on CPU)")
    ap.add_argument("--hidden", type=int, default=512, help="GRU width (paper: 512)")
    ap.add_argument("--embed", type=int, default=300, help="word embedding width (paper: 300)")
    ap.add_argument("--max-vocab", type=int, default=50000,
                    help="cap on the input vocabulary (only the embedding table's size; 0 = no cap)")
    ap.add_argument("--steps", type=int, default=5,
                    help="timed steps (best is reported); as many again are profiled for the section shares")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--ipot-impl", choices=("auto", "eager", "fused"), default="auto",
                    help="OTSeq2Set's IPOT: auto = compiled loop on CUDA, eager elsewhere")
    ap.add_argument("--no-amp", dest="amp", action="store_false", help="no bf16 autocast on CUDA")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="PATH", help="write the rows as JSON")
    ap.add_argument("--quiet", action="store_true", help="no table")
    ap.add_argument("--memory-670k", action="store_true",
                    help="instead: estimate the Amazon-670K step's peak memory (CPU, reduced V, extrapolated)")
    ap.add_argument("--mem-fractions", type=float, nargs="+", default=[0.02, 0.04, 0.08],
                    help="fractions of V measured by --memory-670k")
    ap.add_argument("--mem-src", type=int, default=50, help="source length measured by --memory-670k")
    ap.add_argument("--_mem-point", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but CUDA is not available")
    if args.scale is None:
        args.scale = 1.0 if device.type == "cuda" else 0.1
    if args.threads:
        torch.set_num_threads(args.threads)
    meta = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
            "torch": torch.__version__, "threads": torch.get_num_threads(), "scale": args.scale,
            "hidden": args.hidden, "embed": args.embed, "steps": args.steps, "warmup": args.warmup,
            "amp": bool(args.amp and device.type == "cuda"), "max_vocab": args.max_vocab,
            "ipot_impl": args.ipot_impl}
    if args._mem_point is not None:
        print(json.dumps(_memory_point(args, args._mem_point)))
        return None
    if args.memory_670k:
        est = amazon670k_memory(args)
        gib = 2**30
        print(f"Amazon-670K training step, OTSeq2Set, B={est['B']} N={est['N']} S={est['S']} V={est['V']:,} "
              f"bottleneck={est['bottleneck']}, {est['params'] / 1e6:.1f}M parameters")
        for r in est["points"]:
            print(f"  measured (CPU, fp32, S={est['mem_src']}): V={r['V']:>7,}  peak {r['peak_bytes'] / gib:6.2f} GiB"
                  f"  (analytic model {r['analytic_bytes'] / gib:5.2f} GiB)")
        print(f"  ESTIMATE, analytic model at full size:           {est['analytic_bytes'] / gib:.1f} GiB")
        print(f"  ESTIMATE, analytic x measured/analytic ({est['calibration']:.2f}): "
              f"{est['measured_extrapolated_bytes'] / gib:.1f} GiB")
        print(f"  (a straight line through the measured points would say "
              f"{est['linear_fit_at_full_V_bytes'] / gib:.1f} GiB; the small-V points are noisy)")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"meta": meta, "memory_670k": est}, f, indent=2)
        return est
    rows = [run_preset(name, args, device) for name in args.preset]
    if not args.quiet:
        print_table(rows, meta)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
