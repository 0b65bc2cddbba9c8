"""Print a dataset's statistics in the form of the paper's Table 1.

    python examples/dataset_stats.py --data reuters --data-dir ../shared/data
    python examples/dataset_stats.py --data eurlex57k synthetic --glove ../shared/data/glove.6B.50d.subset.txt.gz

Preparation (first run) shows a progress bar and ends with the line
"prepared-data cache written to PATH" (``$XMTC_CACHE``, else
``~/.cache/xmtc``; the data directory is never written); later runs read the
cache. A missing data directory or file, an unknown dataset name or an
unreadable file gives one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from xmtc.config import cli
from xmtc.data import datasets
from xmtc.data.datasets.stats import TABLE1_FIELDS


def _main(argv) -> int:
    ap = cli.OneLineParser(prog="dataset_stats.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", default=["synthetic"], choices=datasets.available(), metavar="NAME",
                    help=f"dataset name(s): {', '.join(datasets.available())}")
    ap.add_argument("--data-dir", default=None, help="data directory (default $XMTC_DATA, else ./data)")
    ap.add_argument("--cache-dir", default=None, help="cache directory (default: see xmtc/data/datasets/cache.py)")
    ap.add_argument("--no-cache", action="store_true", help="prepare afresh, do not read or write the cache")
    ap.add_argument("--glove", default=None, help="GloVe file: also report vocabulary / label-name coverage")
    args = ap.parse_args(argv)
    console = Console()

    table = Table(title="Dataset statistics (paper Table 1 form; label statistics on the training split)")
    table.add_column("statistic")
    rows = {key: [] for key, _ in TABLE1_FIELDS}
    extra = {"prepare / load time (s)": [], "from cache": [], "validation": []}
    for name in args.data:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True, disable=not console.is_terminal) as bar:
            task = bar.add_task(f"{name}: preparing", total=None)

            def progress(stage, done, total, _task=task):
                bar.update(_task, description=f"{name}: {stage}", completed=done, total=total)

            t0 = time.perf_counter()
            ds = datasets.load(name, args.data_dir, cache=not args.no_cache, cache_dir=args.cache_dir,
                               progress=progress)
            dt = time.perf_counter() - t0
        note = datasets.cache_note(ds)
        if note:
            console.print(f"{name}: {note}", markup=False, highlight=False, soft_wrap=True)
        st = ds.stats()
        table.add_column(name, justify="right")
        for key, _ in TABLE1_FIELDS:
            v = st[key]
            rows[key].append(f"{v:,.2f}" if isinstance(v, float) else f"{v:,}")
        extra["prepare / load time (s)"].append(f"{dt:.2f}")
        extra["from cache"].append(str(ds.from_cache))
        extra["validation"].append(st["valid_source"])
        if args.glove:
            from xmtc.data.embeddings import (
                dataset_label_embeddings,
                glove_words_for,
                input_embeddings,
                read_glove,
            )

            g = read_glove(args.glove, words=glove_words_for(ds))
            _, cov_in = input_embeddings(ds.vocab, g)
            _, cov_lab = dataset_label_embeddings(ds, g)
            extra.setdefault("GloVe vocab coverage", []).append(str(cov_in))
            extra.setdefault("label-name coverage", []).append(str(cov_lab))
        if st["skipped"]:
            extra.setdefault("skipped documents", []).append(str(st["skipped"]))
    for key, head in TABLE1_FIELDS:
        table.add_row(head, *rows[key])
    for head, vals in extra.items():
        table.add_row(head, *(vals + [""] * (len(args.data) - len(vals))))
    console.print(table)
    return 0


def main(argv=None) -> int:
    """Entry point; returns the exit code (2 with one line on stderr for a usage error)."""
    return cli.run_main(_main, argv, prog="dataset_stats.py")


if __name__ == "__main__":
    sys.exit(main())
