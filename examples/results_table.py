"""Print (or write into the README) the results table of a dataset's committed runs.

    python examples/results_table.py eurlex57k                    # print the markdown table
    python examples/results_table.py eurlex57k --write README.md  # replace the table between its markers

The runs are ``results/<dataset>/<run>/{config,metrics}.json`` (see ``xmtc/results.py``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from xmtc import results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--results", default="results", help="results directory (default: results)")
    ap.add_argument("--write", metavar="README", help="replace the table between the dataset's markers in this file")
    args = ap.parse_args(argv)
    table = results.markdown(results.collect(args.results, args.dataset), args.dataset)
    if args.write:
        path = Path(args.write)
        path.write_text(results.replace_block(path.read_text(), args.dataset, table))
    else:
        print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
