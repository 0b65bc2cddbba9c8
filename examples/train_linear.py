"""Train and evaluate the linear one-vs-rest TF-IDF baseline (``baselines/linear.py``) on one dataset.

    python examples/train_linear.py --data reuters --data-dir ../shared/data       # ~10 s on a CPU
    python examples/train_linear.py --data eurlex57k --data-dir ../shared/data --jobs 2
    nohup python examples/train_linear.py --data eurlex57k --jobs 1 > linear.log 2>&1 &  # progress lines

The field's standard reference model: TF-IDF over the toolkit's own tokens and
training vocabulary (sublinear tf, L2 norm; ``<pad>``/``<unk>`` are not
features), then one L2-regularised linear SVM per label (liblinear through
scikit-learn's ``LinearSVC``, ``pip install -e '.[linear]'``); a label is
predicted where its score is above 0.

The steps, top to bottom: data -> fit on the training split (the split the
neural models train on: without a dev split, a seeded 10% of it is held out
as validation) -> evaluation on validation and test -> save. The run
directory (``--out``, default ``runs/linear-<data>``) receives ``config.json``,
``metrics.json`` (``valid`` and ``test`` metrics, as ``evaluation.evaluate``
returns them, and ``train_time_s``), ``predictions.tsv`` (test documents: id,
gold and predicted label names) and ``model.npz`` (weights and idf, no pickle;
``baselines.linear.LinearOneVsRest.load``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from baselines.linear import DOC_CHUNK, LinearConfig, LinearOneVsRest, sets_from_scores, top_k_from_scores
from evaluation import evaluate, render_table, write_json
from xmtc.data import datasets
MODEL = "linear"
TOP_K = 5  # ranked labels kept per document for P@k / nDCG@k / PSP@k (k = 1, 3, 5), as the neural runs
LOG_EVERY_S = 60.0  # progress lines in a log file (not a terminal)


class _Parser(argparse.ArgumentParser):
    """A bad argument is one line on stderr and exit code 2."""

    def error(self, message: str):  # noqa: D401
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _number(kind, lo, what):
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (math.isfinite(v) and v >= lo) or (kind is float and v == 0):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return v

    return parse


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="train_linear.py", description=__doc__.splitlines()[0], allow_abbrev=False)
    p.add_argument("--data", required=True, choices=datasets.available(), metavar="NAME",
                   help=f"dataset: {', '.join(datasets.available())}")
    p.add_argument("--data-dir", default=None, help="directory of the source files (default $XMTC_DATA, else ./data)")
    p.add_argument("--out", default=None, help="run directory (default runs/linear-<data>)")
    p.add_argument("--jobs", type=_number(int, 1, "a positive integer"), default=1,
                   help="worker processes fitting the per-label SVMs (default 1)")
    p.add_argument("--C", type=_number(float, 0, "a number > 0"), default=LinearConfig.C,
                   help=f"SVM regularisation: larger fits the training data harder (default {LinearConfig.C})")
    for split in ("train", "valid", "test"):
        p.add_argument(f"--max-{split}-docs", type=_number(int, 1, "a positive integer"), default=None,
                       help=f"keep only the first N {split} documents (quick runs)")
    p.add_argument("--seed", type=_number(int, 0, "an integer >= 0"), default=0,
                   help="seed of the validation hold-out (datasets without a dev split; default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    return p


# --------------------------------------------------------------------------- steps
def load_data(args, console: Console):
    """The dataset with the document limits applied (train after the validation hold-out)."""
    if args.data_dir is not None and args.data != "synthetic" and not Path(args.data_dir).is_dir():
        raise FileNotFoundError(f"data directory {args.data_dir} does not exist")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(f"{args.data}: loading", total=None)

        def progress(stage, done, total):
            bar.update(task, description=f"{args.data}: {stage}", completed=done, total=total)

        ds = datasets.load(args.data, args.data_dir, progress=progress, seed=args.seed)
    for split in ("train", "valid", "test"):
        limit, sp = getattr(args, f"max_{split}_docs"), getattr(ds, split)
        if limit is not None and limit < len(sp):
            setattr(ds, split, sp.subset(np.arange(limit), split))
    return ds


def fit(model: LinearOneVsRest, split, console: Console) -> float:
    """Fit on ``split``; returns the training time in seconds."""
    tokens = [split.tokens(i) for i in range(len(split))]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("fitting one SVM per label", total=None)
        last = [time.perf_counter()]

        def progress(done, total):
            bar.update(task, completed=done, total=total)
            now = time.perf_counter()
            if not console.is_terminal and now - last[0] >= LOG_EVERY_S:  # a log file: a line now and then
                console.log(f"fitted {done}/{total} label classifiers")
                last[0] = now

        t0 = time.perf_counter()
        model.fit(tokens, split.label_sets(), progress=progress)
    return time.perf_counter() - t0


def predict(model: LinearOneVsRest, split) -> tuple[list[set[int]], np.ndarray, np.ndarray]:
    """Predicted sets and the top-``TOP_K`` ``(ids, scores)`` of every document, a chunk at a time."""
    sets, ids, vals = [], [], []
    for start in range(0, len(split), DOC_CHUNK):
        tokens = [split.tokens(i) for i in range(start, min(start + DOC_CHUNK, len(split)))]
        scores = model.decision_function(tokens)  # (b, L)
        sets += sets_from_scores(scores)
        top_ids, top_vals = top_k_from_scores(scores, TOP_K)  # (b, k) each
        ids.append(top_ids)
        vals.append(top_vals)
    if not ids:
        return [], np.zeros((0, TOP_K), np.int64), np.zeros((0, TOP_K), np.float32)
    return sets, np.concatenate(ids), np.concatenate(vals)


def score(model: LinearOneVsRest, ds, name: str) -> tuple[dict, list[set[int]]]:
    """``evaluation.evaluate`` on one split, as the neural runs call it (gold keeps test-only labels)."""
    split = getattr(ds, name)
    pred, ids, vals = predict(model, split)
    metrics = evaluate(pred, split.label_sets(), len(ds.label_names), scores=(ids, vals),
                       train_label_counts=ds.label_counts, n_train_docs=len(ds.train_full))
    return metrics, pred


def write_predictions(out: Path, split, pred: list[set[int]], label_names: list[str]) -> Path:
    """``predictions.tsv`` as the neural runs write it: ``doc_id``, gold (file order), predicted (by id)."""
    path = out / "predictions.tsv"
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("doc_id\tgold\tpredicted\n")
        for i in range(len(split)):
            gold = "|".join(label_names[k] for k in split.labels(i))
            predicted = "|".join(label_names[k] for k in sorted(pred[i]))
            f.write(f"{split.doc_id(i)}\t{gold}\t{predicted}\n")
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- main
def train(argv) -> int:
    args = parser().parse_args(argv)
    out = Path(args.out or f"runs/{MODEL}-{args.data}")
    if (out / "model.npz").exists() and not args.overwrite:
        raise FileExistsError(f"{out} already holds a run; use --overwrite to replace it")
    cfg = LinearConfig(C=args.C)
    config = {"model": MODEL,
              "data": {"name": args.data, "data_dir": args.data_dir, "valid_fraction": 0.1, "seed": args.seed,
                       "max_train_docs": args.max_train_docs, "max_valid_docs": args.max_valid_docs,
                       "max_test_docs": args.max_test_docs},
              "linear": {**cfg.to_dict(), "jobs": args.jobs}}
    console = Console()
    table = Table(title=f"{MODEL} on {args.data}", show_header=False)
    for section, values in config.items():
        if isinstance(values, dict):
            for k, v in values.items():
                table.add_row(f"{section}.{k}", str(v))
    console.print(table)

    # 1. data: the toolkit's tokens and vocabulary; train = the neural models' training split
    ds = load_data(args, console)
    console.log(f"data: {ds} (validation: {ds.valid_source})")

    # 2. fit: TF-IDF on the training split, one LinearSVC per label
    model = LinearOneVsRest(len(ds.vocab), len(ds.label_names), cfg, n_jobs=args.jobs)
    train_time = fit(model, ds.train, console)
    console.log(f"fitted in {train_time:.1f}s: {model.info}")

    # 3. evaluation on validation and test
    t0 = time.perf_counter()
    valid, _ = score(model, ds, "valid")
    test, test_pred = score(model, ds, "test")
    predict_time = time.perf_counter() - t0

    # 4. save: config.json, metrics.json, predictions.tsv, model.npz
    out.mkdir(parents=True, exist_ok=True)
    stats = {k: v for k, v in ds.stats().items() if k != "skipped"}
    write_json({**config, "dataset": stats, "fit": model.info}, out / "config.json")
    write_json({"valid": valid, "test": test, "train_time_s": train_time, "predict_time_s": predict_time,
                "fit": model.info}, out / "metrics.json")
    write_predictions(out, ds.test, test_pred, ds.label_names)
    model.save(out / "model.npz")
    console.print(render_table(valid, title=f"{MODEL} on {args.data}: validation"))
    console.print(render_table(test, title=f"{MODEL} on {args.data}: test"))
    console.print(f"training time {train_time:.1f}s, prediction (valid + test) {predict_time:.1f}s; "
                  f"run directory {out}")
    return 0


def main(argv=None) -> int:
    """Entry point; returns the exit code (2 with one line on stderr for a usage error)."""
    try:
        return train(argv)
    except SystemExit as e:  # argparse: --help (0) or a bad argument (2, already reported)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except (ValueError, OSError, ImportError) as e:  # missing data, bad input, scikit-learn missing
        text = " ".join(str(e).split())
        print(f"train_linear.py: error: {text or type(e).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
