"""Benchmark: batched OTSeq2Set loss vs the per-example reference of the authors' code.

Times forward + backward of :func:`losses.set_loss` (one device gather and one
host transfer for the Hungarian step, batched IPOT) against
:func:`losses.set_loss.set_loss_reference` (per-example slicing, scipy per
example, numpy IPOT loop per example, as in the paper's code), at the paper's
sizes: B in {32, 64}, N in {7, 24, 30, 57}, V in {4000, 13330}. Gold label
counts are drawn as ``min(N, 1 + Poisson(mean - 1))`` with the dataset means of
the paper's Table 1 (N=7: Amazon-670K 5.45, N=24: Eurlex-4K 5.30, N=30:
Wiki10-31K 18.64, N=57: AmazonCat-13K 5.04). Also times the IPOT and matching
steps alone, to show where the time goes.

Usage::

    python benchmarks/set_loss.py [--quick] [--threads 1] [--repeats 3] [--emb-dim 300] [--json out.json]

On a shared machine whose cores are busy with other jobs, use ``--threads 1``:
torch's OpenMP threads stall badly when the cores are oversubscribed (single
small ops measured at seconds instead of milliseconds), which would make the
multi-threaded batched side look arbitrarily slow. The fast and reference
functions are timed alternately and the best of ``--repeats`` is kept.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from losses.ipot import ipot, ipot_reference
from losses.matching import assign_targets, assign_targets_reference
from losses.set_loss import cosine_distance, set_loss, set_loss_reference

MEAN_LABELS = {7: 5.45, 24: 5.30, 30: 18.64, 57: 5.04}


def make_batch(B, N, V, emb_dim, seed, device):
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    mean = MEAN_LABELS.get(N, N / 2)
    counts = np.minimum(N, 1 + rng.poisson(mean - 1, size=B))
    n_max = int(counts.max())
    targets = torch.zeros(B, n_max, dtype=torch.long)
    for b, n in enumerate(counts):
        targets[b, :n] = torch.randperm(V - 4, generator=g)[:n] + 4
    mask = torch.arange(n_max)[None] < torch.as_tensor(counts)[:, None]
    logits = torch.randn(B, N, V, generator=g) * 2
    emb = torch.randn(V, emb_dim, generator=g)
    return logits.to(device), targets.to(device), mask.to(device), emb.to(device)


def _time_once(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def best_times(fast, reference, repeats, device):
    """Best-of-``repeats`` seconds of two functions, run alternately so that
    background load on a shared machine affects both alike."""
    t_fast, t_ref = [], []
    for _ in range(repeats):
        t_fast.append(_time_once(fast, device))
        t_ref.append(_time_once(reference, device))
    return min(t_fast), min(t_ref)


def run_row(B, N, V, args, device):
    logits, targets, mask, emb = make_batch(B, N, V, args.emb_dim, args.seed, device)

    def loss_step(fn):
        x = logits.clone().requires_grad_()
        out = fn(x, targets, mask, emb, scheme=args.scheme)
        out["loss"].backward()
        return out

    fast_out, ref_out = loss_step(set_loss), loss_step(set_loss_reference)  # warm-up and agreement
    gap = max(abs(fast_out[k].item() - ref_out[k].item()) for k in ("loss", "match", "ot"))
    t_fast, t_ref = best_times(lambda: loss_step(set_loss), lambda: loss_step(set_loss_reference), args.repeats, device)

    # the two per-example steps alone
    with torch.no_grad():
        probs = logits.softmax(-1)
        cost = cosine_distance(probs @ emb, emb[targets])  # (B, N, n_max)
        n = mask.sum(1, keepdim=True).float()
        col = mask.float() / n.clamp(min=1)
        row = torch.full((B, N), 1.0 / N, device=device)
    cost_np = [cost[b, :, : int(mask[b].sum())].cpu().numpy() for b in range(B)]
    t_ipot, t_ipot_ref = best_times(
        lambda: ipot(cost, row, col), lambda: [ipot_reference(c) for c in cost_np], args.repeats, device
    )
    t_match, t_match_ref = best_times(
        lambda: assign_targets(probs, targets, mask, args.scheme),
        lambda: assign_targets_reference(probs, targets, mask, args.scheme),
        args.repeats, device,
    )
    return {
        "B": B, "N": N, "V": V, "mean_n": float(mask.sum(1).float().mean()),
        "batched_ms": 1e3 * t_fast, "reference_ms": 1e3 * t_ref, "speedup": t_ref / t_fast,
        "ipot_ms": 1e3 * t_ipot, "ipot_reference_ms": 1e3 * t_ipot_ref, "ipot_speedup": t_ipot_ref / t_ipot,
        "match_ms": 1e3 * t_match, "match_reference_ms": 1e3 * t_match_ref,
        "match_speedup": t_match_ref / t_match, "max_abs_diff": gap,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small subset: B=32, N in {7, 24}, V=4000")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per cell (best is kept)")
    parser.add_argument("--emb-dim", type=int, default=300, help="label embedding size (GloVe 300-d in the paper)")
    parser.add_argument("--scheme", default="all", choices=["all", "first_n"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=str, default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    grid = [(32, N, 4000) for N in (7, 24)] if args.quick else [
        (B, N, V) for B in (32, 64) for V in (4000, 13330) for N in (7, 24, 30, 57)
    ]
    console = Console(width=180)
    console.print(
        f"device={device} threads={torch.get_num_threads()} emb_dim={args.emb_dim} "
        f"scheme={args.scheme} repeats={args.repeats} torch={torch.__version__}"
    )
    table = Table(title="set_loss forward+backward: batched vs per-example reference (ms, best of repeats)")
    for col in ("B", "N", "V", "mean n", "batched", "reference", "speed-up",
                "IPOT batched", "IPOT loop", "IPOT x", "match batched", "match loop", "match x", "max |diff|"):
        table.add_column(col, justify="right")
    rows = []
    for B, N, V in grid:
        r = run_row(B, N, V, args, device)
        rows.append(r)
        table.add_row(
            str(B), str(N), str(V), f"{r['mean_n']:.1f}",
            f"{r['batched_ms']:.1f}", f"{r['reference_ms']:.1f}", f"{r['speedup']:.1f}x",
            f"{r['ipot_ms']:.2f}", f"{r['ipot_reference_ms']:.1f}", f"{r['ipot_speedup']:.1f}x",
            f"{r['match_ms']:.2f}", f"{r['match_reference_ms']:.1f}", f"{r['match_speedup']:.1f}x",
            f"{r['max_abs_diff']:.1e}",
        )
    console.print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": str(device), "threads": torch.get_num_threads(), "emb_dim": args.emb_dim,
                       "scheme": args.scheme, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
