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
as validation) -> evaluation on validation and test -> calibration -> save.
Calibration is the rule every run of the toolkit stores beside its own
(:mod:`xmtc.calibration`): one threshold ``τ`` on the margins, chosen on the
dev split to maximise micro-F1 over ``evaluation.calibration.MARGIN_GRID``
(-1.00 to 1.00; the decoded sets ``score > 0`` are kept where no ``τ`` beats
them on dev). The run directory (``--out``, default ``runs/linear-<data>``)
receives ``config.json``, ``metrics.json`` (``valid`` and ``test`` metrics, as
``evaluation.evaluate`` returns them, ``calibrated``: ``{"rule", "tau", "valid",
"test"}`` with the same keys, and ``train_time_s``), ``predictions.tsv`` (test
documents: id, gold and predicted label names, the ``score > 0`` sets),
``model.npz`` (weights and idf, no pickle; ``baselines.linear.LinearOneVsRest.load``)
and ``vocab.json`` (tokeniser, vocabulary and label names, for
``examples/predict.py RUN TEXT [--calibrated]``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from baselines.linear import (
    DOC_CHUNK,
    LinearConfig,
    LinearOneVsRest,
    sets_from_scores,
    top_k_from_scores,
)
from evaluation import evaluate, render_table, write_json
from evaluation.calibration import MARGIN_GRID, SplitScores, calibrated_entry
from xmtc.data import datasets
from xmtc.train import rundir

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


def predict(model: LinearOneVsRest, split, floor: float = float(MARGIN_GRID[0])) -> SplitScores:
    """Scores of every document of ``split``, a chunk at a time: the predicted sets (``score > 0``),
    the scores ``>= floor`` (sparse ``(D, L)``, for the calibration), the top-``TOP_K`` ``(ids, scores)``."""
    sets, rows, cols, vals, top_ids, top_vals = [], [], [], [], [], []
    for start in range(0, len(split), DOC_CHUNK):
        tokens = [split.tokens(i) for i in range(start, min(start + DOC_CHUNK, len(split)))]
        scores = model.decision_function(tokens)  # (b, L)
        sets += sets_from_scores(scores)
        r, c = np.nonzero(scores >= floor)  # (E,) each; -inf (no classifier) never
        rows.append(r + start)
        cols.append(c)
        vals.append(scores[r, c])
        ids, top = top_k_from_scores(scores, TOP_K)  # (b, k) each
        top_ids.append(ids)
        top_vals.append(top)
    cat = (lambda parts, dt, k=0: np.concatenate(parts) if parts else np.zeros((0, k) if k else 0, dt))
    matrix = sp.csr_matrix((cat(vals, np.float32), (cat(rows, np.int64), cat(cols, np.int64))),
                           shape=(len(split), model.n_labels))  # (D, L)
    return SplitScores(sets, matrix, split.label_sets(), cat(top_ids, np.int64, TOP_K),
                       cat(top_vals, np.float32, TOP_K))


def evaluation_args(ds) -> dict:
    """``evaluation.evaluate``'s keyword arguments, as the neural runs pass them (propensities of the training split)."""
    return {"train_label_counts": ds.label_counts, "n_train_docs": len(ds.train_full)}


def score(model: LinearOneVsRest, ds, name: str) -> tuple[dict, SplitScores]:
    """``evaluation.evaluate`` on one split, as the neural runs call it (gold keeps test-only labels)."""
    pred = predict(model, getattr(ds, name))
    metrics = evaluate(pred.decoded, pred.gold, len(ds.label_names), scores=(pred.top_ids, pred.top_scores),
                       **evaluation_args(ds))
    return metrics, pred


def calibrate(ds, valid: SplitScores, test: SplitScores) -> dict:
    """``metrics.json``'s ``calibrated`` entry: ``τ`` on the margins chosen on dev, both splits scored with it."""
    return calibrated_entry(valid, test, len(ds.label_names), taus=MARGIN_GRID, **evaluation_args(ds))


def rules_table(decoded: dict[str, dict], calibrated: dict, title: str) -> Table:
    """The two rules side by side: micro-F1 on dev, micro-P/R/F1 and labels per document on test (in %)."""
    table = Table(title=title)
    table.add_column("rule", no_wrap=True)
    for col in ("dev F1", "test P", "test R", "test F1", "per doc"):
        table.add_column(col, justify="right", no_wrap=True)
    tau = calibrated["tau"]
    rules = (("decoded (score > 0)", decoded),
             ("calibrated (" + ("decoded kept" if tau is None else f"score >= {tau:g}") + ")", calibrated))
    for rule, m in rules:
        t = m["test"]
        table.add_row(rule, f"{100 * m['valid']['micro_f1']:.2f}", f"{100 * t['micro_precision']:.2f}",
                      f"{100 * t['micro_recall']:.2f}", f"{100 * t['micro_f1']:.2f}",
                      f"{t['mean_predicted_labels']:.2f}")
    return table


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
    valid, valid_pred = score(model, ds, "valid")
    test, test_pred = score(model, ds, "test")
    predict_time = time.perf_counter() - t0

    # 4. beyond the paper, as every run: the set size re-decided by one threshold on the margins, chosen on dev
    calibrated = calibrate(ds, valid_pred, test_pred)

    # 5. save: config.json, metrics.json, predictions.tsv, model.npz, vocab.json
    out.mkdir(parents=True, exist_ok=True)
    stats = {k: v for k, v in ds.stats().items() if k != "skipped"}
    write_json({**config, "dataset": stats, "fit": model.info}, out / "config.json")
    write_json({"valid": valid, "test": test, "calibrated": calibrated, "train_time_s": train_time,
                "predict_time_s": predict_time, "fit": model.info}, out / "metrics.json")
    rundir.write_predictions(out, ds.test, test_pred.decoded, ds.label_names)
    model.save(out / "model.npz")
    write_json({"tokenizer": str(ds.meta.get("tokenizer", "word")), "vocab": list(ds.vocab.itos),
                "label_names": list(ds.label_names)}, out / "vocab.json", indent=None)
    console.print(render_table(valid, title=f"{MODEL} on {args.data}: validation"))
    console.print(render_table(test, title=f"{MODEL} on {args.data}: test"))
    console.print(rules_table({"valid": valid, "test": test}, calibrated,
                              f"{MODEL} on {args.data}: micro P/R/F1 (%) and labels per doc, two rules"))
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
