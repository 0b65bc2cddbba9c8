"""Benchmark: the CPU training step of all four models at a EURLEX57K shape (S=256, hidden 128).

One run prints, as a rich table and JSON:

* documents/s of one training step (forward + loss + backward + clip + Adam,
  as ``benchmarks/train_step.py``'s ``train_step``) of Seq2Seq, MLC2Seq, SGM
  and OTSeq2Set at B=32, S=256 (every document full length, as 91% of
  EURLEX57K's training documents are at 256 tokens; ``--lengths random``: in [S/2, S]),
  word/label embeddings 64, hidden 128, N=26 decoder steps, V=4,112 outputs,
  5.07 gold labels per document on average (the EURLEX57K shape);
* the OTSeq2Set / MLC2Seq step ratio (OTSeq2Set decodes N steps, the sequence
  baselines ``n_max + 1`` with teacher forcing);
* the encoder alone (2-layer BiGRU, embedding 64, hidden 128, B=32) forward +
  backward at S=256 and S=512: the packed-sequence reference, the
  reversed-within-length CPU path, and a plain ``nn.GRU`` over the padded
  tensor (not exact: padding enters the backward direction) for scale;
* with ``--compare-encoders``, every model also with the packed encoder
  (``encoder_impl="packed"``; before/after in one run);
* with ``--bounds``, MLC2Seq and OTSeq2Set also with their attention
  *compiled* (``attention_impl="compiled"``, what ``train.compile`` selects:
  ``torch.compile`` of scores, softmax and context, inductor's fused CPU
  kernels) and with their attention *free* (replaced by a stub that returns
  the first key: no attention can cost less), and the OTSeq2Set /
  MLC2Seq ratio in each case: what any attention speed-up can and cannot do
  for that ratio.

Times are the median of ``--steps`` after ``--warmup`` (the machine may be
shared: run the variants you compare in one invocation; they are interleaved
step by step so a background load hits them alike).

Usage::

    python benchmarks/cpu_step.py --threads 1 --json cpu_step.json
    python benchmarks/cpu_step.py --threads 1 --compare-encoders --steps 3
    python benchmarks/cpu_step.py --threads 1 --bounds --models mlc2seq otseq2set --encoder-seq
    python benchmarks/cpu_step.py --threads 1 --profile otseq2set     # torch.profiler table
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from baselines import SGM, MLC2Seq, Seq2Seq, Seq2SeqConfig, SGMConfig
from models import BahdanauAttention, OTSeq2Set, OTSeq2SetConfig
from models.encoder import Encoder

_spec = importlib.util.spec_from_file_location("_train_step_bench", Path(__file__).with_name("train_step.py"))
_ts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ts)
make_batch, train_step = _ts.make_batch, _ts.train_step

SHAPE = dict(B=32, S=256, N=26, n_labels=4108, vocab=20000, embed=64, hidden=128, mean_labels=5.07)
MODELS = ("seq2seq", "mlc2seq", "sgm", "otseq2set")


def build(name: str, s: dict, ipot_iter: int, legacy: bool = False, **choices):
    """Model ``name`` at shape ``s``; ``choices``: its config's speed choices (``encoder_impl``, ...)."""
    common = dict(vocab_size=s["vocab"], n_labels=s["n_labels"], embed_dim=s["embed"], label_embed_dim=s["embed"],
                  hidden_size=s["hidden"], **choices)
    if legacy:  # the choices before docs/fidelity.md: all dropout sites, shared-head LightConv, uniform ∅
        from models import BackboneConfig

        common.update(BackboneConfig.LEGACY_CHOICES)
    if name == "otseq2set":
        return OTSeq2Set(OTSeq2SetConfig(**common, n_steps=s["N"], ipot_iter=ipot_iter))
    if name == "sgm":
        return SGM(SGMConfig(**common, global_embedding=True))
    return {"seq2seq": Seq2Seq, "mlc2seq": MLC2Seq}[name](Seq2SeqConfig(**common))


def full_length(batch, vocab: int, seed: int):
    """The same batch with every document ``S`` tokens long (the padding replaced by random tokens)."""
    g = torch.Generator().manual_seed(seed + 1)
    pad = ~batch.src_mask
    batch.src = batch.src.masked_scatter(pad, torch.randint(2, vocab, (int(pad.sum()),), generator=g))
    batch.src_mask = torch.ones_like(batch.src_mask)
    return batch


def time_models(variants: dict, batch, steps: int, warmup: int) -> dict[str, list[float]]:
    """``variants``: name -> (model, optimizer); steps interleaved across variants."""
    cpu = torch.device("cpu")
    for model, opt in variants.values():
        for _ in range(warmup):
            train_step(model, batch, opt, cpu, False)
    times = {k: [] for k in variants}
    for _ in range(steps):
        for k, (model, opt) in variants.items():
            t0 = time.perf_counter()
            train_step(model, batch, opt, cpu, False)
            times[k].append(time.perf_counter() - t0)
    return times


def time_encoders(S: int, s: dict, steps: int, warmup: int) -> dict[str, float]:
    """Median seconds of encoder forward + backward at ``(B, S)``: packed, reversed, plain ``nn.GRU``."""
    encoders = {}
    for impl in ("packed", "reversed"):
        torch.manual_seed(0)  # the same weights for both
        encoders[impl] = Encoder(s["vocab"], s["embed"], s["hidden"], s["hidden"], num_layers=2, dropout=0.0,
                                 impl=impl)
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(S // 2, S + 1, (s["B"],), generator=g)
    lengths[0] = S
    mask = torch.arange(S)[None] < lengths[:, None]  # (B, S)
    src = torch.randint(2, s["vocab"], (s["B"], S), generator=g).masked_fill(~mask, 0)

    def run(impl):
        enc = encoders.get(impl, encoders["packed"])
        enc.zero_grad()
        if impl == "plain":
            out, _ = enc.rnn(enc.embedding(src))
            out.sum().backward()
            return
        h, s0 = enc(src, mask)
        (h.sum() + s0.sum()).backward()

    impls = ("packed", "reversed", "plain")
    times = {k: [] for k in impls}
    for i in range(warmup + steps):
        for k in impls:
            t0 = time.perf_counter()
            run(k)
            if i >= warmup:
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def free_attention(model):
    """``model`` with its attention replaced (an instance attribute) by a stub that returns the first key.

    No attention can cost less: a bound on what any attention speed-up can do.
    """
    for att in model.modules():
        if isinstance(att, BahdanauAttention):
            def forward(query, keys, keys_proj, mask, query_proj=None):
                return keys[:, 0], mask.to(keys.dtype)  # (B, Dk), (B, S)
            att.forward = forward
    return model


def profile(name: str, s: dict, batch, ipot_iter: int, rows: int, legacy: bool = False) -> str:
    from torch.profiler import profile as torch_profile

    torch.manual_seed(0)
    model = build(name, s, ipot_iter, legacy).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_step(model, batch, opt, torch.device("cpu"), False)
    with torch_profile() as prof:
        train_step(model, batch, opt, torch.device("cpu"), False)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    ap.add_argument("--steps", type=int, default=5, help="timed steps per variant (median reported)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--ipot-iter", type=int, default=20, help="IPOT iterations (the --fast preset: 20)")
    ap.add_argument("--compare-encoders", action="store_true",
                    help="also time every model with the packed encoder (before/after, interleaved)")
    ap.add_argument("--encoder-seq", type=int, nargs="*", default=[256, 512],
                    help="source lengths of the encoder-alone timing (none: skip)")
    ap.add_argument("--legacy-choices", action="store_true",
                    help="build the models with the choices before docs/fidelity.md (dropout everywhere, "
                         "shared-head LightConv), to separate their cost from the speed-ups")
    ap.add_argument("--bounds", action="store_true",
                    help="also time MLC2Seq and OTSeq2Set with compiled and with free attention")
    ap.add_argument("--profile", choices=MODELS, help="instead: print a torch.profiler table of one step")
    ap.add_argument("--rows", type=int, default=25, help="rows of the --profile table")
    ap.add_argument("--lengths", choices=("full", "random"), default="full",
                    help="documents all S tokens long (EURLEX57K at S=256), or of random length in [S/2, S]")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    s = dict(SHAPE)
    batch = make_batch(s["B"], s["S"], s["N"], s["n_labels"], s["vocab"], s["mean_labels"], args.seed)
    if args.lengths == "full":
        batch = full_length(batch, s["vocab"], args.seed)
    if args.profile:
        print(profile(args.profile, s, batch, args.ipot_iter, args.rows, args.legacy_choices))
        return None

    from rich.console import Console
    from rich.table import Table

    torch.manual_seed(args.seed)
    variants = {}
    for name in args.models:
        model = build(name, s, args.ipot_iter, args.legacy_choices).train()
        variants[name] = (model, torch.optim.Adam(model.parameters(), lr=1e-3))
        if args.compare_encoders:
            packed = build(name, s, args.ipot_iter, args.legacy_choices, encoder_impl="packed").train()
            packed.load_state_dict(model.state_dict())
            variants[f"{name} (packed encoder)"] = (packed, torch.optim.Adam(packed.parameters(), lr=1e-3))
        if args.bounds and name in ("mlc2seq", "otseq2set"):
            for how in ("compiled", "free"):
                other = build(name, s, args.ipot_iter, args.legacy_choices,
                              attention_impl="compiled" if how == "compiled" else "auto").train()
                other.load_state_dict(model.state_dict())
                variants[f"{name} ({how} attention)"] = (other if how == "compiled" else free_attention(other),
                                                         torch.optim.Adam(other.parameters(), lr=1e-3))
    times = time_models(variants, batch, args.steps, args.warmup)
    step = {k: statistics.median(v) for k, v in times.items()}
    encoders = {S: time_encoders(S, s, max(2, args.steps // 2), 1) for S in args.encoder_seq}

    meta = {"bounds": args.bounds, "lengths": args.lengths, "legacy_choices": args.legacy_choices, "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "steps": args.steps, "warmup": args.warmup,
            "ipot_iter": args.ipot_iter, "shape": s, "n_max": int(batch.label_mask.shape[1])}
    console = Console(width=150)
    console.print(" ".join(f"{k}={v}" for k, v in meta.items() if k != "shape"), s)
    table = Table(title=f"training step, B={s['B']} S={s['S']} N={s['N']} V={s['n_labels'] + 4} (median)")
    for col in ("model", "step s", "docs/s"):
        table.add_column(col, justify="right")
    for k, t in step.items():
        table.add_row(k, f"{t:.3f}", f"{s['B'] / t:.1f}")
    console.print(table)
    ratios = {}
    if "otseq2set" in step and "mlc2seq" in step:
        ratios["otseq2set/mlc2seq"] = step["otseq2set"] / step["mlc2seq"]
    for how in ("compiled", "free"):
        a, b = f"otseq2set ({how} attention)", f"mlc2seq ({how} attention)"
        if a in step and b in step:
            ratios[f"otseq2set/mlc2seq, {how} attention"] = step[a] / step[b]
    for name in args.models:
        if f"{name} (packed encoder)" in step:
            ratios[f"{name} speed-up over packed"] = step[f"{name} (packed encoder)"] / step[name]
    for k, v in ratios.items():
        console.print(f"{k}: {v:.2f}x")
    if encoders:
        et = Table(title=f"encoder forward + backward, B={s['B']}, embed {s['embed']}, hidden {s['hidden']}, 2 layers")
        for col in ("S", "packed s", "reversed s", "plain nn.GRU s", "reversed / plain", "packed / reversed"):
            et.add_column(col, justify="right")
        for S, e in encoders.items():
            et.add_row(str(S), f"{e['packed']:.3f}", f"{e['reversed']:.3f}", f"{e['plain']:.3f}",
                       f"{e['reversed'] / e['plain']:.2f}x", f"{e['packed'] / e['reversed']:.2f}x")
        console.print(et)
    result = {"meta": meta, "step_s": step, "docs_per_s": {k: s["B"] / t for k, t in step.items()},
              "all_step_s": times, "ratios": ratios, "encoder_s": {str(k): v for k, v in encoders.items()}}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
