"""Benchmark OTSeq2Set against its baselines and ablations on one dataset.

    python examples/benchmark.py --data reuters --fast        # minutes on a CPU
    python examples/benchmark.py --data eurlex57k --embeddings glove.6B.300d.txt

Trains and tests, with the same preset (paper Table 2 or ours) and seed, the
paper's eight variants (``xmtc/config/ablation.py``): Seq2Seq, MLC2Seq, SGM,
Seq2Seq+LC, BM, BM+LC, BM+OT and BM+OT+LC (= OTSeq2Set),
and prints the layout of the paper's Tables 3, 6 and 7: precision, recall,
micro-F1, macro-F1, weighted F1, example F1 (plus P@1), training time and
parameters. Results go to ``<out>/results.md`` and ``<out>/results.json``;
every model's run directory is ``<out>/<model>/``. ``--resume`` keeps the
models already finished and continues an interrupted one.

Every setting of the training scripts is accepted (named flags, ``--set``,
``--config``); each variant's own switches (LightConv on/off, OT weight 0 for
BM and BM+LC) are applied on top. A preset whose OT weight is 0 (Amazon-670K's,
the authors' final config) cannot give BM+OT or BM+OT+LC: the benchmark stops
before training and asks for ``--set net.ot_weight=X`` or a ``--models`` list
without them.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from rich.console import Console

from xmtc import run
from xmtc.config import ConfigError, cli
from xmtc.config.ablation import BY_NAME
from xmtc.reporting.progress import config_table, make_progress, results_table

COLUMNS = [
    ("model", "model", ""),
    ("micro_precision", "P", ".4f"),
    ("micro_recall", "R", ".4f"),
    ("micro_f1", "micro-F1", ".4f"),
    ("macro_f1", "macro-F1", ".4f"),
    ("weighted_f1", "weighted F1", ".4f"),
    ("example_f1", "example F1", ".4f"),
    ("p@1", "P@1", ".4f"),
    ("train_time_s", "training time (s)", ".1f"),
    ("parameters", "parameters", ","),
]


def parser():
    p = cli.OneLineParser(prog="benchmark.py", description=__doc__.splitlines()[0])
    # --lightconv and --ot-weight: the variants set them
    cli.add_config_args(p, None, reserved=("--models", "--out", "--resume", "--lightconv", "--ot-weight",
                                           "--progress", "--log-interval", "--log-batches"))
    g = p.add_argument_group("benchmark")
    g.add_argument("--models", help=f"comma-separated subset of: {', '.join(BY_NAME)}")
    g.add_argument("--out", metavar="DIR", help="results directory (default: runs/benchmark-<data>[-fast])")
    g.add_argument("--resume", action="store_true", help="keep finished models, continue the interrupted one")
    cli.add_progress_args(p)
    return p


def markdown(rows: list[dict], title: str) -> str:
    head = "| " + " | ".join(h for _, h, _ in COLUMNS) + " |"
    sep = "|" + "|".join("---" if k == "model" else "---:" for k, _, _ in COLUMNS) + "|"
    lines = [f"### {title}", "", head, sep]
    for r in rows:
        cells = [format(r[k], f) if f else str(r[k]) for k, _, f in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _check_data_dir(cfg) -> None:
    """The data directory (``--data-dir``, else ``$XMTC_DATA``, else ``./data``) exists, unless no files are read."""
    from xmtc.data.datasets import resolve_data_dir

    root = resolve_data_dir(cfg.data.data_dir)
    if cfg.data.name != "synthetic" and not root.is_dir():
        raise ConfigError(f"data directory {root} does not exist (give --data-dir DIR or set XMTC_DATA)")


def _main(argv) -> int:
    args = parser().parse_args(argv)
    names = list(BY_NAME) if not args.models else [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in names if m not in BY_NAME]
    if unknown:
        raise ConfigError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    first = cli.config_from_args(args, BY_NAME[names[0]].model, other_model=True)  # settings checked once
    for name in names:  # before any training: e.g. BM+OT on a preset whose λ is 0 (Amazon-670K's)
        try:
            BY_NAME[name].check(first.net)
        except ConfigError as e:
            raise ConfigError(f"{e}, or leave the OT variants out with --models") from None
    _check_data_dir(first)  # before the config table and any training: one line, exit code 2
    tag = f"{first.preset}{f'-{first.variant}' if first.variant else ''}"
    out = Path(args.out or f"runs/benchmark-{tag}")
    console = Console()
    rows: list[dict] = []
    t_start = time.perf_counter()
    for name in names:
        spec = BY_NAME[name]
        model = spec.model
        args.out = str(out / name)
        cfg = cli.config_from_args(args, model, other_model=True)
        spec.apply(cfg.net)  # the variant's switches on top of the preset
        run_dir = Path(cfg.out)
        done = run_dir / "metrics.json"
        if args.resume and done.is_file() and "test" in json.loads(done.read_text()):
            m = json.loads(done.read_text())
            rows.append({"model": name, **m["test"], "train_time_s": m["train_time_s"], "parameters": m["parameters"]})
            console.print(f"[dim]{name}: finished earlier, kept ({done})[/dim]")
            continue
        resume = args.resume and (run_dir / "checkpoint.pt").is_file()
        if not resume and run_dir.exists():
            shutil.rmtree(run_dir)
        if not rows:
            console.print(config_table(cfg.to_dict(), title=f"benchmark on {cfg.data.name} (first model: {name})"))
        console.rule(f"{name} ({model}, LightConv {'on' if cfg.net.lightconv(model) else 'off'}"
                     f"{', OT weight ' + str(cfg.net.ot_weight) if model == 'otseq2set' else ''})")
        with make_progress(console, args.progress, interval=args.log_interval, every=args.log_batches) as progress:
            res = run.train_run(cfg, out_dir=run_dir, resume=resume, callbacks=progress)
        rows.append({"model": name, **res.test, "train_time_s": res.fit.train_time_s, "parameters": res.parameters})
        console.print(f"{name}: test micro-F1 {res.test['micro_f1']:.4f}, macro-F1 {res.test['macro_f1']:.4f}, "
                      f"training {res.fit.train_time_s:.1f}s")

    title = f"{first.preset}{f' ({first.variant} preset)' if first.variant else ''}: test set, best epoch by validation micro-F1"
    wide = Console(width=max(console.width, 132))  # never truncate the numbers, even in a log file
    wide.print(results_table(rows, COLUMNS, title))
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(markdown(rows, title))
    (out / "results.json").write_text(json.dumps({"dataset": first.preset, "variant": first.variant, "rows": rows,
                                                  "wall_time_s": time.perf_counter() - t_start}, indent=2) + "\n")
    console.print(f"wrote {out / 'results.md'} and {out / 'results.json'}")
    return 0


def main(argv=None) -> int:
    """Entry point; returns the exit code (2 with one line on stderr for a usage error)."""
    return cli.run_main(_main, argv, prog="benchmark.py")


if __name__ == "__main__":
    sys.exit(main())
