"""Print (or write into docs/results.md) the results tables of a dataset's committed runs.

    python examples/results_table.py eurlex57k                          # print the markdown
    python examples/results_table.py eurlex57k --write docs/results.md  # replace the block between its markers
    python examples/results_table.py reuters --record ~/runs/reuters/otseq2set/seed1 --run otseq2set

The runs are ``results/<dataset>/<run>/seed<K>/{config.json,metrics.json,predictions.tsv.gz}``
(see ``xmtc/reporting/results.py``); ``--record`` copies a finished run directory there (the
seed read from its config), after checking its predictions against its test micro-F1.
A missing results directory or file, an unknown dataset, a damaged JSON file
or a file without the dataset's markers gives one line on stderr and exit
code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from xmtc.config import DATASETS, ConfigError, cli
from xmtc.reporting import results

#: Reference rows shown under a dataset's table, measured with other tools or published, never by
#: this toolkit (DESIGN.md §6): (row label, {metrics.json test key: percentage as published, its digits
#: kept}); absent columns show "—".
REFERENCES: dict[str, results.References] = {
    "eurlex57k": (
        ("linear one-vs-rest, TF-IDF (LibMultiLabel 0.10, same split, CPU)",
         {"micro_f1": "71.4", "macro_f1": "21.2", "p@1": "92.8", "p@5": "69.4", "ndcg@5": "83.0"}),
        ("BiGRU-LWAN, GloVe 200-d (LibMultiLabel's published reproduction, GPU)",
         {"micro_f1": "71.32", "macro_f1": "25.43", "p@1": "90.73", "p@5": "67.08", "ndcg@5": "80.60"}),
        ("BERT-base, fine-tuned (Chalkidis et al. 2019, published)", {"micro_f1": "73.2"}),
    ),
    "reuters": (
        ("linear, per-label thresholds (LibMultiLabel, same split, CPU)",
         {"micro_f1": "87.6", "macro_f1": "60.9", "p@1": "93.6", "p@5": "22.4"}),
        ("one-vs-rest LinearSVC, TF-IDF (scikit-learn, same split, CPU)",
         {"micro_f1": "85.8", "macro_f1": "39.6", "p@1": "94.2", "p@5": "23.7"}),
    ),
}


def table(results_dir, dataset: str) -> str:
    """The docs' block of ``dataset`` from the records under ``results_dir``, with its reference rows."""
    return results.markdown(results.collect(results_dir, dataset), dataset, REFERENCES.get(dataset, ()))


def _check_json(root: Path) -> None:
    """Every run record under ``root`` parses, else :class:`ConfigError` naming the file and position."""
    for path in sorted(root.rglob("*.json")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"{path} is not valid JSON ({e})") from None


def _main(argv) -> int:
    ap = cli.OneLineParser(prog="results_table.py", description=__doc__.splitlines()[0])
    ap.add_argument("dataset", choices=DATASETS, metavar="DATASET", help=f"one of: {', '.join(DATASETS)}")
    ap.add_argument("--results", default="results", help="results directory (default: results)")
    ap.add_argument("--write", metavar="FILE", help="replace the block between the dataset's markers in this file "
                                                    "(docs/results.md)")
    ap.add_argument("--record", metavar="RUN_DIR", help="copy a finished run directory into the results directory")
    ap.add_argument("--run", help="with --record: the run's name (" + ", ".join(results.RUNS) + ")")
    args = ap.parse_args(argv)
    if args.record:
        if not args.run:
            raise ConfigError("--record needs --run NAME")
        try:
            print(results.record(args.record, args.results, args.dataset, args.run))
        except ValueError as e:
            raise ConfigError(str(e)) from None
        return 0
    if not Path(args.results).is_dir():
        raise FileNotFoundError(f"results directory {args.results} not found (see --results)")
    root = Path(args.results) / args.dataset
    _check_json(root)
    try:
        text = table(args.results, args.dataset)
    except KeyError as e:  # a record written by another version, without a field the table shows
        raise ConfigError(f"{root}: a run record lacks the field {e}") from None
    except ValueError as e:  # unknown run directories (the message names them)
        raise ConfigError(str(e)) from None
    if args.write:
        path = Path(args.write)
        try:
            text = results.replace_block(path.read_text(encoding="utf-8"), args.dataset, text)
        except ValueError as e:  # the markers are missing
            raise ConfigError(f"{path}: {e}") from None
        path.write_text(text, encoding="utf-8")
    else:
        print(text)
    return 0


def main(argv=None) -> int:
    """Entry point; returns the exit code (2 with one line on stderr for a usage error)."""
    return cli.run_main(_main, argv, prog="results_table.py")


if __name__ == "__main__":
    sys.exit(main())
