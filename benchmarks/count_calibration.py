"""Diagnostic: how much of a run's micro-F1 is its label count, not its ranking?

A decoder decides two things per document: which labels (its scores rank them,
P@k and nDCG@k measure that) and how many (its emitted set; micro-P against
micro-R). Two runs can tie in micro-F1 with different rankings when one emits
too many labels and the other too few. Every run stores the answer: its label
count re-decided by one threshold ``τ`` on the label scores (``score ≥ τ``),
chosen on the dev split to maximise micro-F1 (``metrics.json``'s
``calibrated``, :mod:`xmtc.calibration` and :mod:`evaluation.calibration`).
This script reads it and sets it beside the run's own decoded sets:

* ``decoded``: the run's own sets (``metrics.json``'s ``test``; its dev figure
  is the best epoch's, or ``valid`` for a linear run);
* ``score ≥ τ``: the stored ``calibrated`` entry (``τ`` "kept" where the
  decoded sets did better on dev than any threshold).

A neural run trained before the entry existed is calibrated here from its
``best.pt`` with the same library call (``xmtc.calibration.calibrate_run``),
nothing written (``examples/calibrate.py`` writes it into the run).

    python benchmarks/count_calibration.py ~/runs/eurlex57k/mlc2seq ~/runs/eurlex57k/otseq2set \\
        --data-dir ../shared/data --json count_calibration.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xmtc import calibration
from xmtc.config import ConfigError, cli
from xmtc.train import rundir

KEYS = ("micro_precision", "micro_recall", "micro_f1", "mean_predicted_labels")


def decoded_valid_f1(metrics: dict) -> float | None:
    """Dev micro-F1 of the run's own sets: the best epoch's (neural runs) or ``valid``'s (linear runs)."""
    if isinstance(metrics.get("best"), dict) and "micro_f1" in metrics["best"]:
        return float(metrics["best"]["micro_f1"])
    if isinstance(metrics.get("valid"), dict) and "micro_f1" in metrics["valid"]:
        return float(metrics["valid"]["micro_f1"])
    return None


def run_rows(run_dir, *, data_dir=None, device: str = "cpu") -> dict:
    """The two rules of one run: ``{"source", "decoded": {...}, "score ≥ τ": {...}}``, each with ``tau``,
    ``dev_micro_f1`` and the test micro-P/R/F1 and labels per document."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} not found")
    try:
        metrics = rundir.read_metrics(run_dir)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if "test" not in metrics:
        raise ConfigError(f"{run_dir}/metrics.json has no 'test' entry: the run has not finished")
    entry, source = metrics.get("calibrated"), "metrics.json"
    if entry is None:
        entry, source = calibration.calibrate_run(run_dir, data_dir=data_dir, device=device), "recomputed"
    return {"source": source,
            "decoded": {"tau": None, "dev_micro_f1": decoded_valid_f1(metrics),
                        "test": {k: metrics["test"][k] for k in KEYS}},
            "score ≥ τ": {"tau": entry["tau"], "dev_micro_f1": entry["valid"]["micro_f1"],
                          "test": {k: entry["test"][k] for k in KEYS}}}


def parser() -> argparse.ArgumentParser:
    p = cli.OneLineParser(prog="count_calibration.py", description=__doc__.splitlines()[0])
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    p.add_argument("--data-dir", default=None, help="data directory for runs calibrated here (default: the run's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    return p


def _main(argv) -> int:
    args = parser().parse_args(argv)
    import torch
    from rich.console import Console
    from rich.table import Table

    torch.set_num_threads(1)
    results = {str(d): run_rows(d, data_dir=args.data_dir, device=args.device) for d in args.run_dirs}
    table = Table(title="micro-F1 with the label count re-decided by a dev-chosen threshold τ (test split)")
    for col in ("run", "rule", "τ (dev)", "dev micro-F1", "test micro-P", "test micro-R", "test micro-F1",
                "labels / doc", "from"):
        table.add_column(col, justify="right")
    pct = (lambda x: "-" if x is None else f"{100 * x:.2f}")
    for run, rows in results.items():
        for rule in ("decoded", "score ≥ τ"):
            r, t = rows[rule], rows[rule]["test"]
            tau = "" if rule == "decoded" else ("kept" if r["tau"] is None else f"{r['tau']:g}")
            table.add_row(Path(run).name, rule, tau, pct(r["dev_micro_f1"]), pct(t["micro_precision"]),
                          pct(t["micro_recall"]), pct(t["micro_f1"]), f"{t['mean_predicted_labels']:.2f}",
                          rows["source"] if rule != "decoded" else "")
    Console(width=160).print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


def main(argv=None) -> int:
    """Entry point; returns the exit code (2 with one line on stderr for a usage error)."""
    return cli.run_main(_main, argv, prog="count_calibration.py")


if __name__ == "__main__":
    sys.exit(main())
