"""Label new raw text with a trained run directory.

    python examples/predict.py runs/reuters "Shares of the bank rose after the merger ..."
    python examples/predict.py runs/reuters --file news.txt      # one document per line
    echo "crude oil prices fell" | python examples/predict.py runs/reuters -
    python examples/predict.py runs/reuters "crude oil prices fell" --calibrated
    python examples/predict.py runs/linear-reuters "crude oil prices fell"   # a linear run

Reads a neural run (``best.pt``, else ``checkpoint.pt``, with
``torch.load(weights_only=True)``) or a linear run (``model.npz`` and
``vocab.json`` of ``examples/train_linear.py``), tokenises the text as the
training data was tokenised, and prints one line per document: the predicted
labels with their scores (a neural run: each label's highest probability over
the decoding steps; a linear run: its SVM margin, a label predicted where it
is above 0). ``--top-k K`` prints the K best-scoring labels instead of the
decoded set; ``--calibrated`` every label whose score reaches the threshold
``τ`` the run chose on its dev split (``metrics.json``, ``calibrated``; a run
trained before it existed gets it with ``examples/calibrate.py RUN``). Options
may come before or after the texts. The same as a function:
``xmtc.inference.predict_texts(xmtc.inference.load_run(run_dir), texts)``.
"""

from __future__ import annotations

import argparse
import json
import sys

from xmtc import inference
from xmtc.config import cli


def parser() -> argparse.ArgumentParser:
    p = cli.OneLineParser(prog="predict.py", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", help="run directory written by examples/train_*.py (neural or linear)")
    p.add_argument("text", nargs="*", help="document(s) to label; '-' reads standard input, one per line")
    p.add_argument("--file", help="file with one document per line")
    rule = p.add_mutually_exclusive_group()
    rule.add_argument("--top-k", type=cli._positive_int, help="the K best-scoring labels instead of the decoded set")
    rule.add_argument("--calibrated", action="store_true",
                      help="the labels whose score reaches the run's dev-chosen threshold (metrics.json: calibrated)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    return p


def _main(argv) -> int:
    args = parser().parse_intermixed_args(argv)  # options before or after the texts
    texts = [t for t in args.text if t != "-"]
    blank = [i for i, t in enumerate(texts, start=1) if not t.strip()]
    if blank:
        raise cli.ConfigError(f"text {blank[0]} is empty; give the document's words (or --file / '-')")
    if "-" in args.text:
        texts += [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if args.file:
        with open(args.file, encoding="utf-8") as f:
            texts += [line.rstrip("\n") for line in f if line.strip()]
    if not texts:
        raise cli.ConfigError("no text given (pass documents, '-' for standard input, or --file)")
    run = inference.load_run(args.run_dir, device=args.device)
    if args.calibrated and run.calibrated is None:
        fix = ("examples/calibrate.py RUN adds it to a finished run" if run.kind == "neural"
               else "train it again with examples/train_linear.py")
        raise cli.ConfigError(f"{args.run_dir}: --calibrated needs a threshold, but its metrics.json has no "
                              f"'calibrated' entry (a run trained before calibration existed: {fix}; "
                              f"or drop --calibrated)")
    for text, labels in zip(texts, inference.predict_texts(run, texts, top_k=args.top_k, calibrated=args.calibrated)):
        if args.json:
            print(json.dumps({"text": text[:80], "labels": [{"label": n, "score": round(s, 4)} for n, s in labels]}))
        else:
            print(", ".join(f"{n} ({s:.2f})" for n, s in labels) or "(no label)")
    return 0


def main(argv=None) -> int:
    """Entry point; returns the exit code (2 with one line on stderr for a usage error)."""
    return cli.run_main(_main, argv, prog="predict.py")


if __name__ == "__main__":
    sys.exit(main())
