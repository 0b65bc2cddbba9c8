"""Model sizes at the paper's Eurlex-4K settings and CPU forward+backward time per batch.

Sizes (paper Section 3.4 / Table 7): 300-d word and label embeddings, GRU
hidden 512 (encoder per direction and decoder), 2 encoder layers, LightConv
kernels 3/7/15/30 for OTSeq2Set only, no bottleneck. Two settings:

* ``EURLEX57K``: our real benchmark. Input vocabulary = min(500,000, words in
  the training split) = 75,145 word types + ``<pad>``, ``<unk>`` = 75,147, as
  ``xmtc.data.text.word_tokenize`` (lower-cased ``\\w+``) gives on title, header,
  recitals and main body of the 45,000 training documents (171,876 types if
  the attachments were included); 4,108 training labels; N = 26 (max labels
  per training document). Override with ``--vocab`` / ``--labels``.
* ``Eurlex-4K (paper)``: the paper's Table 1 (vocabulary 186,104, 3,956 labels).

Models are built on the ``meta`` device (no memory is allocated).

Timing: forward + backward (loss included) of one batch on CPU at a small
preset (``--batch``, ``--src-len``...), median over ``--repeats`` runs.

Usage::

    python benchmarks/model_sizes.py [--repeats 5] [--threads 1] [--vocab 75147] [--labels 4108]
"""

from __future__ import annotations

import argparse
import statistics
import time
from types import SimpleNamespace

import torch
from rich.console import Console
from rich.table import Table

from baselines import SGM, MLC2Seq, Seq2Seq, Seq2SeqConfig, SGMConfig
from models import OTSeq2Set, OTSeq2SetConfig

PAPER_TABLE7_M = {"Seq2Seq": 34.8, "MLC2Seq": 34.8, "SGM": 35.0, "OTSeq2Set": 40.5}  # MLC2Seq = Seq2Seq (text)


def build(name: str, common: dict, n_steps: int, device=None):
    with torch.device(device or "cpu"):
        if name == "OTSeq2Set":
            return OTSeq2Set(OTSeq2SetConfig(**common, n_steps=n_steps))
        if name == "SGM":
            return SGM(SGMConfig(**common, max_steps=n_steps + 1))
        cls = Seq2Seq if name == "Seq2Seq" else MLC2Seq
        return cls(Seq2SeqConfig(**common, max_steps=n_steps + 1))


def sizes(console: Console, settings: dict[str, tuple[int, int, int]]) -> None:
    caption = "; ".join(f"{k}: vocab {v:,}, {n:,} labels" for k, (v, n, _) in settings.items()) + " (Eurlex-4K: paper Table 1)"
    table = Table(title="Parameters at the paper's Eurlex-4K settings (300-d embeddings, hidden 512)",
                  caption=caption)
    for col in ("setting", "model", "params (M)", "w/o input emb. (M)", "paper Table 7 (M)"):
        table.add_column(col, justify="right" if col != "model" and col != "setting" else "left")
    for setting, (vocab, n_labels, n_steps) in settings.items():
        common = dict(vocab_size=vocab, n_labels=n_labels, embed_dim=300, label_embed_dim=300, hidden_size=512)
        for name in PAPER_TABLE7_M:
            model = build(name, common, n_steps, device="meta")
            total = model.num_parameters()
            no_emb = total - model.encoder.embedding.weight.numel()
            table.add_row(setting, name, f"{total / 1e6:.2f}",
                          f"{no_emb / 1e6:.2f}", f"{PAPER_TABLE7_M[name]:.1f}")
    console.print(table)


def make_batch(B, S, vocab, n_labels, mean_labels, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(S // 2, S + 1, (B,), generator=g)
    lengths[0] = S
    src_mask = torch.arange(S)[None] < lengths[:, None]
    src = torch.randint(2, vocab, (B, S), generator=g).masked_fill(~src_mask, 0)
    counts = torch.randint(1, 2 * mean_labels, (B,), generator=g)
    n_max = int(counts.max())
    labels = torch.stack([torch.randperm(n_labels, generator=g)[:n_max] for _ in range(B)])
    label_mask = torch.arange(n_max)[None] < counts[:, None]
    return SimpleNamespace(src=src, src_mask=src_mask, labels=labels.masked_fill(~label_mask, 0),
                           label_mask=label_mask, index=torch.arange(B))


def timings(console: Console, args) -> None:
    common = dict(vocab_size=args.vocab_small, n_labels=args.labels_small, embed_dim=args.embed,
                  label_embed_dim=args.embed, hidden_size=args.hidden)
    batch = make_batch(args.batch, args.src_len, args.vocab_small, args.labels_small, args.mean_labels)
    table = Table(title=(f"CPU forward+backward per batch ({torch.get_num_threads()} threads): B={args.batch}, "
                         f"S={args.src_len}, vocab={args.vocab_small:,}, labels={args.labels_small:,}, "
                         f"emb={args.embed}, hidden={args.hidden}, N={args.n_steps}"))
    for col in ("model", "params (M)", "median ms", "min ms"):
        table.add_column(col, justify="left" if col == "model" else "right")
    models, runs = {}, {}
    for name in PAPER_TABLE7_M:
        torch.manual_seed(0)
        models[name], runs[name] = build(name, common, args.n_steps).train(), []
    for i in range(args.repeats + 1):  # round-robin, so that load changes hit every model alike
        for name, model in models.items():
            t0 = time.perf_counter()
            loss = model.compute_loss(batch)["loss"]
            loss.backward()
            model.zero_grad(set_to_none=True)
            if i:  # the first round is a warm-up
                runs[name].append(1e3 * (time.perf_counter() - t0))
    for name, model in models.items():
        table.add_row(name, f"{model.num_parameters() / 1e6:.2f}", f"{statistics.median(runs[name]):.0f}",
                      f"{min(runs[name]):.0f}")
    console.print(table)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vocab", type=int, default=75_147, help="EURLEX57K input vocabulary incl. <pad>, <unk>")
    p.add_argument("--labels", type=int, default=4_108, help="EURLEX57K training labels")
    p.add_argument("--n-steps", dest="n_steps_eurlex", type=int, default=26)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--src-len", type=int, default=300)
    p.add_argument("--vocab-small", type=int, default=20_000)
    p.add_argument("--labels-small", type=int, default=1_000)
    p.add_argument("--embed", type=int, default=100)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--n-steps-small", dest="n_steps", type=int, default=10)
    p.add_argument("--mean-labels", type=int, default=5)
    p.add_argument("--skip-timing", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console()
    sizes(console, {"EURLEX57K": (args.vocab, args.labels, args.n_steps_eurlex),
                    "Eurlex-4K": (186_104, 3_956, 24)})
    console.print("Paper Table 7 gives Seq2Seq 34.8, SGM 35.0, OTSeq2Set 40.5 (MLC2Seq = Seq2Seq, Section 3.10).")
    if not args.skip_timing:
        timings(console, args)


if __name__ == "__main__":
    main()
