"""Add the calibrated set size to finished neural runs that were trained before it existed.

    python examples/calibrate.py runs/otseq2set-reuters-fast
    python examples/calibrate.py ~/runs/reuters/*/ --data-dir ../shared/data --threads 1
    python examples/calibrate.py runs/otseq2set-reuters-fast --dry-run     # print, write nothing

For every run directory, top to bottom: its ``best.pt`` (model, config, label
names and vocabulary) -> the data split the run used (``--data-dir`` replaces
a data directory that moved; other labels or words are refused) -> one
threshold ``τ`` on the label scores chosen on the dev split, both splits scored
with it (``xmtc.calibration.calibrate_run``: what the training scripts store at
the end of a run) -> ``metrics.json``'s ``calibrated`` entry, written
atomically with every other key kept (``xmtc.train.rundir.update_metrics``).
``predict.py RUN TEXT --calibrated`` then works on the run.

A run that already holds the entry is left as it is (``--overwrite``
recomputes it). Refused before anything is computed, in one line with exit
code 2: a directory without ``best.pt`` (a linear run stores its entry when it
trains), or whose ``metrics.json`` has no ``test`` entry (an unfinished run
rewrites that file itself).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from xmtc import calibration
from xmtc.config import ConfigError, cli
from xmtc.reporting.progress import make_progress
from xmtc.train import rundir, runtime


def parser() -> argparse.ArgumentParser:
    p = cli.OneLineParser(prog="calibrate.py", description=__doc__.splitlines()[0],
                          epilog="\n".join(__doc__.splitlines()[1:]),
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                   help="finished run directory of examples/train_{otseq2set,seq2seq,mlc2seq,sgm}.py")
    p.add_argument("--data-dir", default=None, help="data directory, replacing the one the runs' configs name")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:K")
    p.add_argument("--threads", type=cli._positive_int, default=None, metavar="N",
                   help="torch CPU threads (default: torch's)")
    p.add_argument("--overwrite", action="store_true", help="recompute an entry the run already holds")
    p.add_argument("--dry-run", action="store_true", help="compute and print; write nothing")
    cli.add_progress_args(p)
    return p


def check(run_dir: Path) -> dict:
    """The run's ``metrics.json`` if it can be calibrated here, else :class:`ConfigError` (one line)."""
    if not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} not found")
    if not (run_dir / "best.pt").is_file():
        what = ("a linear run stores its calibrated entry when it trains" if (run_dir / "model.npz").is_file()
                else "is it a run directory of examples/train_*.py?")
        raise ConfigError(f"{run_dir} holds no best.pt to calibrate ({what})")
    try:
        metrics = rundir.read_metrics(run_dir)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if "test" not in metrics:
        raise ConfigError(f"{run_dir}/metrics.json has no 'test' entry: the run has not finished "
                          f"(it writes its own calibrated entry when it does)")
    return metrics


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _main(argv) -> int:
    args = parser().parse_args(argv)
    runtime.set_threads(args.threads)
    metrics = {d: check(d) for d in args.run_dirs}  # every run checked before any is computed

    console = Console()
    table = Table(title="calibrated set size (score >= τ, τ chosen on dev): micro-F1, decoded -> calibrated")
    table.add_column("run", overflow="fold")
    for col in ("τ", "dev micro-F1", "test micro-F1", "metrics.json"):
        table.add_column(col, justify="right")
    with make_progress(Console(stderr=True), args.progress, interval=args.log_interval,
                       every=args.log_batches) as progress:
        for run_dir, m in metrics.items():
            if "calibrated" in m and m["calibrated"] is not None and not args.overwrite:
                entry, done = m["calibrated"], "kept (--overwrite recomputes)"
            else:
                progress.log(f"{run_dir}: scoring dev and test with best.pt")
                entry = calibration.calibrate_run(run_dir, data_dir=args.data_dir, device=args.device,
                                                  progress=progress.on_data)
                done = "not written (--dry-run)" if args.dry_run else "written"
                if not args.dry_run:
                    rundir.update_metrics(run_dir, calibrated=entry)
            best = m.get("best") or {}
            tau = entry["tau"]
            table.add_row(str(run_dir), "decoded kept" if tau is None else f"{tau:g}",
                          f"{_pct(best.get('micro_f1'))} -> {_pct(entry['valid']['micro_f1'])}",
                          f"{_pct(m['test']['micro_f1'])} -> {_pct(entry['test']['micro_f1'])}", done)
    console.print(table)
    return 0


def main(argv=None) -> int:
    """Entry point; returns the exit code (2 with one line on stderr for a usage error)."""
    return cli.run_main(_main, argv, prog="calibrate.py")


if __name__ == "__main__":
    sys.exit(main())
