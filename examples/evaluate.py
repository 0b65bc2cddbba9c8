"""Recompute the metrics of a saved run directory from its best weights.

    python examples/evaluate.py runs/otseq2set-reuters-fast                  # test metrics, as a table
    python examples/evaluate.py runs/otseq2set-reuters-fast --split valid    # the best epoch's validation metrics
    python examples/evaluate.py runs/otseq2set-reuters-fast --data-dir ../shared/data --json  # data moved

Reads the run's ``config.json`` (dataset, data options, validation hold-out,
document limits, seed) and its weights, ``best.pt`` (else ``checkpoint.pt``),
loads the same data split the run used and scores it with
``xmtc.train.engine.evaluate``. The test metrics equal ``metrics.json``'s ``test``;
``--split valid`` gives the best epoch's validation metrics (``metrics.json``'s
``epochs[best - 1]["valid"]``). ``--data-dir`` replaces a data directory that
moved; a data directory whose dataset is not the one the run was trained on
(other labels or words) is refused. ``--json`` prints the metrics as a JSON
object on stdout (progress goes to stderr). A missing run directory, a
directory without weights or config, or missing data gives one line on stderr
and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from evaluation import render_table
from xmtc import inference
from xmtc.config import ConfigError, cli, settings
from xmtc.data import datasets, loading
from xmtc.reporting.progress import make_progress
from xmtc.train import engine, runtime

WEIGHTS = ("best.pt", "checkpoint.pt")  # in order of preference


def parser() -> argparse.ArgumentParser:
    p = cli.OneLineParser(prog="evaluate.py", description=__doc__.splitlines()[0],
                          epilog="\n".join(__doc__.splitlines()[1:]),
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory written by examples/train_*.py (config.json + best.pt)")
    p.add_argument("--split", choices=("test", "valid"), default="test", help="split to score (default test)")
    p.add_argument("--data-dir", default=None, help="data directory, replacing the one in config.json")
    p.add_argument("--batch-size", type=cli._positive_int, default=None, metavar="N",
                   help="evaluation batch size (default: the run's train.eval_batch_size)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:K")
    p.add_argument("--json", action="store_true", help="print the metrics as a JSON object")
    cli.add_progress_args(p)
    return p


def weights_of(run_dir: Path) -> Path:
    """``best.pt``, else ``checkpoint.pt``, of a run directory; :class:`ConfigError` when neither exists."""
    if not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} not found")
    for name in WEIGHTS:
        if (run_dir / name).is_file():
            return run_dir / name
    raise ConfigError(f"{run_dir} holds no weights ({' or '.join(WEIGHTS)}); is it a run directory "
                      f"of examples/train_*.py?")


def check_same_data(run: inference.Run, data, root: Path, run_dir: Path) -> None:
    """The loaded dataset numbers labels and words as the run did, else :class:`datasets.DataError`."""
    for what, saved, now in (("labels", run.label_names, list(data.label_names)),
                             ("word vocabulary", run.vocab.itos, list(data.vocab.itos))):
        if saved != now:
            raise datasets.DataError(f"the {data.name} data in {root} is not what {run_dir} was trained on "
                                     f"(its {what} differ: {len(now)} now, {len(saved)} in the run)")


def _main(argv) -> int:
    args = parser().parse_args(argv)
    run_dir = Path(args.run)
    weights = weights_of(run_dir)
    cfg = settings.read_config(run_dir)
    if args.data_dir is not None:
        cfg.data.data_dir = args.data_dir
    if args.batch_size is not None:
        cfg.train.eval_batch_size = args.batch_size
    root = datasets.resolve_data_dir(cfg.data.data_dir)
    if cfg.data.name != "synthetic" and not root.is_dir():
        moved = "" if args.data_dir is not None else "; give --data-dir DIR if the data moved"
        raise ConfigError(f"data directory {root} does not exist{moved}")
    runtime.set_threads(cfg.train.threads)

    log = Console(stderr=True)  # progress and notes; stdout holds only the result
    with make_progress(log, args.progress, interval=args.log_interval, every=args.log_batches) as progress:
        run = inference.load_run(run_dir, device=args.device)
        data = loading.load_data(cfg.data, seed=cfg.train.seed, progress=progress.on_data)
        note = datasets.cache_note(data)
        if note:
            progress.log(note)
        check_same_data(run, data, root, run_dir)
        metrics, _ = engine.evaluate(run.model, data, args.split, cfg.train, device=run.device,
                                     label_order=run.model.label_order, callbacks=progress)

    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        source = f" ({data.valid_source})" if args.split == "valid" else ""
        title = f"{run_dir}: {args.split}{source}, {len(getattr(data, args.split))} documents, weights {weights.name}"
        Console().print(render_table(metrics, title=title))
    return 0


def main(argv=None) -> int:
    """Entry point; returns the exit code (2 with one line on stderr for a usage error)."""
    return cli.run_main(_main, argv, prog="evaluate.py")


if __name__ == "__main__":
    sys.exit(main())
