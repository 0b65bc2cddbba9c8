"""Draw the toolkit's figures as PNG (needs the plot extra: pip install -e '.[plot]').

    python examples/plots.py run runs/otseq2set-reuters-fast         # training curves + label counts of a run
    python examples/plots.py dataset eurlex57k reuters               # labels per document (paper Figure 4)
    python examples/plots.py sweep sweep.json                        # micro-F1 against λ (paper Figure 5)
    python examples/plots.py sweep runs/lam0 runs/lam1 runs/lam8     # λ read from each run's config.json
    python examples/plots.py sweep --run 0=runs/lam0 --run 8=runs/lam8

``run`` writes ``training_curves.png`` (loss terms and validation micro-F1 per
epoch, from ``metrics.json``) and ``label_counts.png`` (predicted vs gold
labels per test document, from ``predictions.tsv``) into the run directory,
or into ``--out-dir``. ``dataset`` writes ``<name>_label_counts.png``.
``sweep`` writes ``lambda_sweep.png``; a sweep file is JSON: a list of
``[λ, run_dir]`` pairs, a ``{"λ": run_dir}`` mapping, or
``{"runs": [{"ot_weight": λ, "run_dir": ...}, ...]}`` (see
``xmtc.reporting.plots.read_sweep``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xmtc.config import ConfigError, cli
from xmtc.data import datasets


def _parser() -> argparse.ArgumentParser:
    p = cli.OneLineParser(prog="plots.py", description=__doc__.splitlines()[0],
                          epilog="\n".join(__doc__.splitlines()[1:]),
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=cli.OneLineParser)

    r = sub.add_parser("run", help="training curves and predicted vs gold label counts of run directories")
    r.add_argument("run_dirs", nargs="+", type=Path, help="run directories (with metrics.json, predictions.tsv)")
    r.add_argument("--out-dir", type=Path, default=None, help="where to write the PNGs (default: each run directory)")

    d = sub.add_parser("dataset", help="labels per document of datasets (paper Figure 4)")
    d.add_argument("names", nargs="+", choices=datasets.available(), metavar="NAME",
                   help=f"dataset names: {', '.join(datasets.available())}")
    d.add_argument("--data-dir", default=None, help="data directory (default $XMTC_DATA, else ./data)")
    d.add_argument("--out-dir", type=Path, default=Path("."), help="where to write the PNGs (default: .)")

    s = sub.add_parser("sweep", help="micro-F1 against the OT weight λ (paper Figure 5)")
    s.add_argument("sources", nargs="*", help="a sweep JSON file, or run directories (λ from config.json)")
    s.add_argument("--run", action="append", default=[], metavar="LAMBDA=RUN_DIR", help="one run of the sweep")
    s.add_argument("--metric", default="micro_f1", help="metric key (default micro_f1)")
    s.add_argument("--split", choices=("test", "valid"), default="test",
                   help="test metrics of the run, or the best validation value (default test)")
    s.add_argument("--title", default=None, help="figure title")
    s.add_argument("--out", type=Path, default=Path("lambda_sweep.png"), help="PNG path (default lambda_sweep.png)")
    return p


def _sweep_spec(args) -> list:
    pairs: list = []
    for item in args.run:
        lam, sep, run = item.partition("=")
        if not sep:
            raise ValueError(f"--run expects LAMBDA=RUN_DIR, got {item!r}")
        pairs.append((float(lam), run))
    if len(args.sources) == 1 and Path(args.sources[0]).is_file():
        if pairs:
            raise ValueError("give either a sweep file or --run / run directories, not both")
        return args.sources[0]
    for src in args.sources:
        if not Path(src).is_dir():
            raise FileNotFoundError(f"{src} is neither a sweep JSON file nor a run directory")
        pairs.append(src)
    if not pairs:
        raise ValueError("sweep needs a JSON file, run directories or --run LAMBDA=RUN_DIR")
    return pairs


def _main(argv) -> int:
    args = _parser().parse_args(argv)
    try:
        written = _draw(args)
    except (ImportError, ValueError) as e:  # no matplotlib, or unusable inputs: one line, exit code 2
        raise ConfigError(str(e)) from e
    for path in written:
        print(f"wrote {path}")
    return 0


def _draw(args) -> list[Path]:
    from xmtc.reporting import plots
    written: list[Path] = []
    if args.command == "run":
        for run in args.run_dirs:
            out = args.out_dir if args.out_dir is not None else run
            prefix = f"{run.name}_" if args.out_dir is not None and len(args.run_dirs) > 1 else ""
            plots.plot_training_curves(run, out / f"{prefix}training_curves.png")
            written.append(out / f"{prefix}training_curves.png")
            if (run / "predictions.tsv").is_file():
                plots.plot_count_histogram(run=run, out=out / f"{prefix}label_counts.png")
                written.append(out / f"{prefix}label_counts.png")
    elif args.command == "dataset":
        for name in args.names:
            ds = datasets.load(name, args.data_dir)
            path = args.out_dir / f"{name}_label_counts.png"
            plots.plot_label_count_distribution(ds, path, name=f"{name} (training split)")
            written.append(path)
    else:
        plots.plot_lambda_sweep(_sweep_spec(args), args.out, metric=args.metric, split=args.split,
                                title=args.title)
        written.append(args.out)
    return written


def main(argv=None) -> int:
    """Entry point; returns the exit code (2 with one line on stderr for a usage error)."""
    return cli.run_main(_main, argv, prog="plots.py")


if __name__ == "__main__":
    sys.exit(main())
