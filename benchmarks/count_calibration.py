"""Diagnostic: how much of a run's micro-F1 is its label count, not its ranking?

A decoder decides two things per document: which labels (its scores rank them,
P@k and nDCG@k measure that) and how many (its emitted set; micro-P against
micro-R). Two runs can tie in micro-F1 with different rankings when one emits
too many labels and the other too few. This script separates the two without
retraining: it re-decides the count of each run's predictions with one
threshold ``τ`` on the scores (each label's maximum probability over the
decoding steps), chosen on the dev split to maximise micro-F1, and reports the
test split at that ``τ``:

* ``decoded``: the run's own sets (what ``metrics.json`` reports; ``τ = 0``);
* ``decoded, score ≥ τ``: the emitted labels whose score reaches ``τ`` (can only
  drop labels: fixes over-prediction);
* ``score ≥ τ``: every label whose score reaches ``τ``, emitted or not (the
  count decided by the scores alone, the same rule for every model).

Micro-P/R/F1 with sets as in ``evaluation.sets`` (Σ|P∩G| / Σ|P|, Σ|P∩G| / Σ|G|);
the ``decoded`` test row must equal the run's ``metrics.json`` (checked).

    python benchmarks/count_calibration.py ~/runs/eurlex57k/mlc2seq ~/runs/eurlex57k/otseq2set \\
        --data-dir ../shared/data --json count_calibration.json

Loads each run's ``best.pt`` and predicts dev and test on one CPU thread (about
a minute per split on EURLEX57K).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from xmtc.train import checkpoint

from xmtc.data import loading

from xmtc import registry
from xmtc.config import RunConfig

TAUS = np.round(np.arange(0.0, 0.951, 0.025), 3)


def predict_split(model, dataset, split: str, cfg: RunConfig):
    """``decoded (N, L) bool``, ``scores (N, L) float32``, ``gold (N, L) bool`` in the split's order, and
    the number of gold labels: ``L`` is the model's output labels (those of the training split); gold
    labels beyond them stay in the count, as misses, as in ``xmtc.train.engine.evaluate``."""
    sp = getattr(dataset, split)
    L = model.config.n_labels
    decoded = np.zeros((len(sp), L), dtype=bool)
    scores = np.zeros((len(sp), L), dtype=np.float32)
    loader = loading.make_loader(dataset, split, cfg.train)
    model.eval()
    with torch.no_grad():
        for batch in loader:
            pred = model.predict(batch)
            idx = batch.index.numpy()  # (B,) positions in the split
            scores[idx] = pred.scores.float().numpy()
            for i, labels in zip(idx, pred.labels):
                decoded[i, list(labels)] = True
    gold = np.zeros((len(sp), L), dtype=bool)
    for i, labels in enumerate(sp.label_sets()):
        gold[i, [g for g in labels if g < L]] = True
    n_gold = sum(len(s) for s in sp.label_sets())  # labels unseen in training count as misses
    return decoded, scores, gold, n_gold


def micro(pred: np.ndarray, gold: np.ndarray, n_gold: int) -> dict:
    r"""Micro scores of boolean sets ``pred (N, L)`` against ``gold (N, L)``; ``n_gold`` counts every gold label.

    :math:`P = \sum_i |P_i \cap G_i| / \sum_i |P_i|`, :math:`R = \sum_i |P_i \cap G_i| / n_{gold}`,
    :math:`F_1 = 2PR / (P + R)`; also the mean predicted set size.
    """
    tp, n_pred = int((pred & gold).sum()), int(pred.sum())
    p, r = tp / max(n_pred, 1), tp / max(n_gold, 1)
    return {"micro_precision": p, "micro_recall": r, "micro_f1": 2 * p * r / max(p + r, 1e-12),
            "mean_predicted_labels": n_pred / len(pred)}


RULES = {
    "decoded": lambda d, s, t: d,
    "decoded, score ≥ τ": lambda d, s, t: d & (s >= t),
    "score ≥ τ": lambda d, s, t: s >= t,
}


def calibrate(run_dir: Path, data_dir: str) -> dict:
    """Per rule of :data:`RULES`: the dev-chosen ``tau``, its dev micro-F1 and the test scores at it."""
    state = checkpoint.load(run_dir / "best.pt")
    cfg = RunConfig.from_dict(state["config"])
    cfg.data.data_dir = data_dir
    dataset = loading.load_data(cfg.data, seed=cfg.train.seed)
    model = registry.model_from_checkpoint(state)
    dev = predict_split(model, dataset, "valid", cfg)
    test = predict_split(model, dataset, "test", cfg)
    out = {}
    for rule, f in RULES.items():
        taus = [0.0] if rule == "decoded" else TAUS
        dev_f1 = {float(t): micro(f(dev[0], dev[1], t), dev[2], dev[3])["micro_f1"] for t in taus}
        tau = max(dev_f1, key=dev_f1.get)
        out[rule] = {"tau": tau, "dev_micro_f1": dev_f1[tau], "test": micro(f(test[0], test[1], tau), test[2], test[3])}
    saved = json.loads((run_dir / "metrics.json").read_text()).get("test", {})
    if "micro_f1" in saved:  # the decoded sets are the run's own prediction
        assert abs(out["decoded"]["test"]["micro_f1"] - saved["micro_f1"]) < 1e-6, (
            f"{run_dir}: decoded test micro-F1 {out['decoded']['test']['micro_f1']:.6f} != metrics.json "
            f"{saved['micro_f1']:.6f}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dirs", nargs="+", type=Path)
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    from rich.console import Console
    from rich.table import Table

    results = {str(d): calibrate(d, args.data_dir) for d in args.run_dirs}
    table = Table(title="micro-F1 with the label count re-decided by a dev-chosen threshold τ (test split)")
    for col in ("run", "rule", "τ (dev)", "dev micro-F1", "test micro-P", "test micro-R", "test micro-F1",
                "labels / doc"):
        table.add_column(col, justify="right")
    for run, rules in results.items():
        for rule, r in rules.items():
            t = r["test"]
            table.add_row(Path(run).name, rule, f"{r['tau']:.3f}", f"{100 * r['dev_micro_f1']:.2f}",
                          f"{100 * t['micro_precision']:.2f}", f"{100 * t['micro_recall']:.2f}",
                          f"{100 * t['micro_f1']:.2f}", f"{t['mean_predicted_labels']:.2f}")
    Console(width=160).print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
