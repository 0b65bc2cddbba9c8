"""Figures of a run, a dataset and a sweep, written as PNG (optional extra ``[plot]``).

Four plots, each a function that returns a ``matplotlib.figure.Figure`` and,
with ``out=``, writes it as a PNG:

* :func:`plot_training_curves` — loss terms and validation micro-F1 per epoch,
  from a run directory's ``metrics.json`` (``xmtc.train.rundir.write_metrics``);
* :func:`plot_label_count_distribution` — labels per document of a dataset,
  with the share of documents below / above the mean (the paper's Figure 4,
  Section 3.6: it explains when matching scheme ``all`` beats ``first_n``);
* :func:`plot_lambda_sweep` — micro-F1 against the OT weight λ of Eq. 17 (the
  paper's Figure 5), from ``(λ, run_dir)`` pairs or a JSON file;
* :func:`plot_count_histogram` — predicted vs gold label-count histogram (the
  set diagnostics), from a run's ``predictions.tsv`` or from label sets.

matplotlib is imported inside the functions, never at module import, so the
core toolkit does not depend on it (``pip install -e '.[plot]'``). Figures are
built with ``matplotlib.figure.Figure`` directly (no ``pyplot``, no global
state, no display needed). ``examples/plots.py`` is the command line.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from xmtc.train import rundir

__all__ = [
    "read_metrics",
    "read_predictions",
    "read_sweep",
    "plot_training_curves",
    "plot_label_count_distribution",
    "plot_lambda_sweep",
    "plot_count_histogram",
]

PLOT_EXTRA_HINT = "pip install -e '.[plot]'"

# per-epoch training entries that are not loss terms
_NOT_TERMS = {"grad_norm", "docs", "time_s", "docs_per_s"}
_TERM_LABELS = {
    "loss": "total loss",
    "match": "matching NLL  L_match (Eq. 13)",
    "ot": "OT distance  L_OT (Eq. 14, before ×λ)",
    "ce": "sequence cross-entropy",
}


# --------------------------------------------------------------------------- helpers
def _figure(*args, **kwargs):
    """A new ``Figure`` (lazy matplotlib import with an actionable message)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - exercised only without matplotlib
        raise ImportError(f"xmtc.reporting.plots needs matplotlib, an optional extra: {PLOT_EXTRA_HINT}") from e
    return Figure(*args, **kwargs)


def _save(fig, out) -> None:
    if out is None:
        return
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=fig.get_dpi(), bbox_inches="tight")


def _run_path(run, name: str) -> Path:
    """``run`` is a run directory or the file itself."""
    p = Path(run)
    return p / name if p.is_dir() else p


read_metrics = rundir.read_metrics  # the run directory's reader, re-exported for the plotting calls


def read_predictions(run) -> tuple[list[set[str]], list[set[str]]]:
    """Gold and predicted label sets from a run's ``predictions.tsv`` (``xmtc.train.rundir.read_predictions``).

    Returns
    -------
    gold, predicted : list of set of str, one per document.
    """
    rows = rundir.read_predictions(run)
    return [gold for _, gold, _ in rows], [pred for _, _, pred in rows]


def read_sweep(spec) -> list[tuple[float, Path]]:
    """``(λ, run_dir)`` pairs from a list or a JSON file.

    Accepted forms: a list of ``(λ, run_dir)`` pairs or of run directories
    (λ then read from each run's ``config.json``, ``net.ot_weight``); a JSON
    file holding such a list, a ``{"λ": run_dir}`` mapping, or a list of
    objects with keys ``ot_weight`` (or ``lambda``) and ``run_dir`` (or
    ``out``), optionally under a top-level key ``"runs"``. Relative run
    directories in a JSON file are taken relative to the file's folder when
    they exist there.
    """
    base = None
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        base = path.parent
        spec = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(spec, dict) and "runs" in spec:
        spec = spec["runs"]
    if isinstance(spec, dict):
        items = list(spec.items())
    else:
        items = []
        for entry in spec:
            if isinstance(entry, dict):
                lam = entry.get("ot_weight", entry.get("lambda"))
                run = entry.get("run_dir", entry.get("out"))
                if lam is None or run is None:
                    raise ValueError(f"sweep entry {entry} needs 'ot_weight' (or 'lambda') and 'run_dir' (or 'out')")
                items.append((lam, run))
            elif isinstance(entry, (str, os.PathLike)):  # a run directory: λ from its config.json
                items.append((_lambda_of(entry, base), entry))
            else:
                lam, run = entry
                items.append((lam, run))
    pairs = []
    for lam, run in items:
        run = Path(run)
        if base is not None and not run.is_absolute() and (base / run).exists():
            run = base / run
        pairs.append((float(lam), run))
    if not pairs:
        raise ValueError("the sweep is empty")
    return pairs


def _metric_label(key: str) -> str:
    """``micro_f1`` -> ``micro-F1``, ``p@1`` stays."""
    return key.replace("_f1", "-F1").replace("_", "-")


def _lambda_of(run, base=None) -> float:
    """``net.ot_weight`` from a run directory's ``config.json``."""
    run = Path(run)
    if base is not None and not run.is_absolute() and (base / run).exists():
        run = base / run
    path = _run_path(run, rundir.CONFIG)
    try:
        return float(rundir.read_json(path)["net"]["ot_weight"])
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"cannot read the OT weight (net.ot_weight) from {path}: {e}") from None


def _counts_of(data) -> tuple[np.ndarray, str | None]:
    """Labels per document from a dataset, a split, label sets or counts."""
    name = None
    if hasattr(data, "train_full"):  # XMTCDataset: the whole training split
        name = f"{data.name} (training split)"
        data = data.train_full
    if hasattr(data, "n_labels_per_doc"):  # Split
        return np.asarray(data.n_labels_per_doc, dtype=np.int64), name
    data = list(data)
    if data and not np.isscalar(data[0]):
        return np.array([len(set(x)) for x in data], dtype=np.int64), name
    return np.asarray(data, dtype=np.int64), name


# --------------------------------------------------------------------------- 1. training curves
def plot_training_curves(run, out=None, *, title: str | None = None):
    """Loss terms and validation micro-F1 per epoch of one run.

    Left: every training loss term the model reports (epoch means, e.g. the
    total loss, the matching NLL and the OT distance of OTSeq2Set; a term
    equal to the total, like the baselines' ``ce``, is not repeated). Right:
    validation micro-precision / recall / F1 in percent, the best epoch marked,
    and the test micro-F1 of the best epoch as a dotted line when present.

    Parameters
    ----------
    run : path or dict
        A run directory, its ``metrics.json``, or the loaded dict.
    out : path, optional
        Where to write the PNG.
    title : str, optional
        Figure title (default: the run directory's name).

    Returns
    -------
    matplotlib.figure.Figure
    """
    metrics = run if isinstance(run, dict) else read_metrics(run)
    epochs = metrics.get("epochs") or []
    if not epochs:
        raise ValueError("metrics.json has no epochs to plot")
    if title is None:
        title = Path(run).name if not isinstance(run, dict) else "training run"
        if title == "metrics.json":
            title = Path(run).parent.name
    x = [int(r["epoch"]) for r in epochs]
    fig = _figure(figsize=(10, 4), dpi=100, layout="constrained")
    ax_loss, ax_f1 = fig.subplots(1, 2)

    train = [r.get("train", {}) for r in epochs]
    keys = [k for k in train[0] if k not in _NOT_TERMS and isinstance(train[0][k], (int, float))]
    keys.sort(key=lambda k: (k != "loss", k))
    total = np.array([t.get("loss", np.nan) for t in train], dtype=float)
    for k in keys:
        y = np.array([t.get(k, np.nan) for t in train], dtype=float)
        if k != "loss" and np.allclose(y, total, equal_nan=True):
            continue
        ax_loss.plot(x, y, marker="o", label=_TERM_LABELS.get(k, k), lw=2 if k == "loss" else 1.5)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (epoch mean, nats)")
    ax_loss.set_title("training loss terms")
    ax_loss.legend(fontsize=8)
    ax_loss.grid(alpha=0.3)

    valid = [r.get("valid", {}) for r in epochs]
    for key, label, style in (("micro_f1", "micro-F1", dict(lw=2, marker="o")),
                              ("micro_precision", "micro-precision", dict(lw=1, ls="--", alpha=0.7)),
                              ("micro_recall", "micro-recall", dict(lw=1, ls="--", alpha=0.7))):
        y = np.array([100 * v.get(key, np.nan) for v in valid], dtype=float)
        if np.isfinite(y).any():
            ax_f1.plot(x, y, label=f"valid {label}", **style)
    best = metrics.get("best") or {}
    if best.get("epoch") is not None and best.get("micro_f1") is not None:
        ax_f1.plot([best["epoch"]], [100 * best["micro_f1"]], marker="*", ms=14, color="gold",
                   markeredgecolor="black", ls="none", label=f"best epoch {best['epoch']}")
    test = metrics.get("test") or {}
    if "micro_f1" in test:
        ax_f1.axhline(100 * test["micro_f1"], color="black", ls=":", lw=1.2,
                      label=f"test micro-F1 (best epoch) {100 * test['micro_f1']:.1f}")
    ax_f1.set_xlabel("epoch")
    ax_f1.set_ylabel("validation score (%)")
    ax_f1.set_title("validation micro-F1")
    ax_f1.legend(fontsize=8, loc="lower right")
    ax_f1.grid(alpha=0.3)
    for ax in (ax_loss, ax_f1):
        ax.set_xticks(x if len(x) <= 20 else x[:: math.ceil(len(x) / 20)])
    fig.suptitle(title)
    _save(fig, out)
    return fig


# --------------------------------------------------------------------------- 2. label-count distribution
def plot_label_count_distribution(data, out=None, *, name: str | None = None, max_count: int | None = None):
    """Labels per document with the share below / above the mean (paper Figure 4).

    The paper (Section 3.6) relates which matching scheme wins to these two
    shares: when they are nearly equal (Eurlex-4K, Wiki10-31K) ``all`` and
    ``first_n`` score alike; when they differ a lot (AmazonCat-13K,
    Amazon-670K) the choice of scheme matters.

    Parameters
    ----------
    data : XMTCDataset, Split, sequence of label sets or sequence of int
        A dataset (its whole training split is used), a split, the label set
        of every document, or the label count of every document.
    out : path, optional
        Where to write the PNG.
    name : str, optional
        Dataset name for the title.
    max_count : int, optional
        Counts above this are gathered in the last bar (default: the 99.5th
        percentile, so a long tail does not squeeze the plot).

    Returns
    -------
    matplotlib.figure.Figure
    """
    counts, default_name = _counts_of(data)
    if counts.size == 0:
        raise ValueError("no documents to plot")
    name = name or default_name or "dataset"
    mean = float(counts.mean())
    below, above = float((counts < mean).mean()), float((counts > mean).mean())
    cap = int(max_count if max_count is not None else max(np.ceil(np.percentile(counts, 99.5)), math.ceil(mean) + 1))
    clipped = np.minimum(counts, cap)
    values = np.arange(clipped.min(), cap + 1)
    share = np.array([(clipped == v).mean() * 100 for v in values])
    colors = ["tab:blue" if v < mean else "tab:orange" for v in values]

    fig = _figure(figsize=(7, 4), dpi=100, layout="constrained")
    ax = fig.subplots()
    ax.bar(values, share, color=colors, edgecolor="black", lw=0.5)
    ax.axvline(mean, color="black", ls="--", lw=1.2)
    # legend entries carry the two shares of Figure 4
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Patch(color="tab:blue", label=f"below the mean: {100 * below:.1f}% of documents"),
        Patch(color="tab:orange", label=f"above the mean: {100 * above:.1f}% of documents"),
        Line2D([], [], color="black", ls="--", label=f"mean = {mean:.2f} labels/document"),
    ]
    ax.legend(handles=handles, fontsize=9, loc="upper right")
    ax.set_ylim(0, share.max() * 1.3)
    ax.set_xlabel("labels per document" + (f" (last bar: ≥ {cap})" if counts.max() > cap else ""))
    ax.set_ylabel("documents (% of split)")
    ax.set_title(f"{name}: labels per document, n = {counts.size:,} documents, max = {int(counts.max())}")
    ax.grid(axis="y", alpha=0.3)
    if len(values) <= 30:
        ax.set_xticks(values)
    _save(fig, out)
    return fig


# --------------------------------------------------------------------------- 3. λ sweep
def plot_lambda_sweep(sweep, out=None, *, metric: str = "micro_f1", split: str = "test",
                      title: str | None = None):
    """Micro-F1 against the OT weight λ of Eq. 17 (paper Figure 5).

    Runs with the same λ (e.g. several seeds) are averaged, with their spread
    (min to max) drawn as an error bar.

    Parameters
    ----------
    sweep : list of (float, path) or path
        ``(λ, run_dir)`` pairs, or a JSON file (see :func:`read_sweep`).
    out : path, optional
        Where to write the PNG.
    metric : str
        A key of the metrics dict (default ``micro_f1``); shown in percent.
    split : {"test", "valid"}
        ``"test"``: the run's final test metrics; ``"valid"``: the best
        validation value over the epochs.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    pairs = read_sweep(sweep)
    by_lambda: dict[float, list[float]] = {}
    for lam, run in pairs:
        m = read_metrics(run)
        if split == "test":
            if metric not in (m.get("test") or {}):
                raise ValueError(f"{run}: metrics.json has no test {metric!r} (unfinished run?)")
            value = m["test"][metric]
        elif split == "valid":
            value = max(r["valid"][metric] for r in m["epochs"])
        else:
            raise ValueError(f"split must be 'test' or 'valid', got {split!r}")
        by_lambda.setdefault(lam, []).append(100 * float(value))
    lams = np.array(sorted(by_lambda))
    means = np.array([np.mean(by_lambda[k]) for k in lams])
    lo = means - np.array([np.min(by_lambda[k]) for k in lams])
    hi = np.array([np.max(by_lambda[k]) for k in lams]) - means
    n_runs = [len(by_lambda[k]) for k in lams]

    fig = _figure(figsize=(6.5, 4), dpi=100, layout="constrained")
    ax = fig.subplots()
    label = f"{split} {_metric_label(metric)}" + (" (mean, min-max over runs)" if max(n_runs) > 1 else "")
    ax.errorbar(lams, means, yerr=[lo, hi] if max(n_runs) > 1 else None, marker="o", capsize=4, lw=1.8,
                label=label)
    k = int(np.argmax(means))
    ax.plot([lams[k]], [means[k]], marker="*", ms=15, color="gold", markeredgecolor="black", ls="none",
            zorder=5, label=f"best: λ = {lams[k]:g} ({means[k]:.1f}%)")
    positive = lams[lams > 0]
    if len(positive) >= 2 and positive.max() / positive.min() > 10:
        ax.set_xscale("symlog", linthresh=float(positive.min()))
    ax.set_xticks(lams)
    ax.set_xticklabels([f"{v:g}" for v in lams])
    ax.set_xlabel("OT weight λ in L = L_match + λ·L_OT (Eq. 17)")
    ax.set_ylabel(f"{split} {_metric_label(metric)} (%)")
    ax.set_title(title or f"{_metric_label(metric)} against the OT weight λ ({len(pairs)} runs)")
    ax.legend(fontsize=9)
    ax.grid(alpha=0.3)
    _save(fig, out)
    return fig


# --------------------------------------------------------------------------- 4. predicted vs gold counts
def plot_count_histogram(predicted=None, gold=None, out=None, *, run=None, title: str | None = None,
                         max_count: int | None = None):
    """Predicted vs gold labels-per-document histogram (set diagnostics).

    A set decoder chooses how many labels to emit; this shows whether it
    emits too few or too many, next to ``count_match_rate`` (documents whose
    predicted set has exactly the gold size).

    Parameters
    ----------
    predicted, gold : sequences of label sets, optional
        One set per document (ids or names); give both, or ``run``.
    out : path, optional
        Where to write the PNG.
    run : path, optional
        A run directory (or its ``predictions.tsv``) to read the sets from.
    title : str, optional
    max_count : int, optional
        Counts above this are gathered in the last bars (default: the 99.5th
        percentile of all counts, at least 5).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if run is not None:
        gold, predicted = read_predictions(run)
        if title is None:
            p = Path(run)
            title = f"{(p if p.is_dir() else p.parent).name}: labels per test document"
    if predicted is None or gold is None:
        raise ValueError("give predicted and gold label sets, or run=")
    pc = np.array([len(set(x)) for x in predicted], dtype=np.int64)
    gc = np.array([len(set(x)) for x in gold], dtype=np.int64)
    if pc.size != gc.size:
        raise ValueError(f"predicted has {pc.size} documents, gold {gc.size}")
    if pc.size == 0:
        raise ValueError("no documents to plot")
    pred_mean, gold_mean = float(pc.mean()), float(gc.mean())
    match = float((pc == gc).mean())
    under, over = float((pc < gc).mean()), float((pc > gc).mean())
    top = int(max(pc.max(), gc.max()))
    cap = int(max_count if max_count is not None
              else min(top, max(np.ceil(np.percentile(np.concatenate([pc, gc]), 99.5)), 5)))
    pc, gc = np.minimum(pc, cap), np.minimum(gc, cap)  # a long tail goes to the last bar
    values = np.arange(0, cap + 1)
    gp = np.array([(gc == v).mean() * 100 for v in values])
    pp = np.array([(pc == v).mean() * 100 for v in values])

    fig = _figure(figsize=(7, 4), dpi=100, layout="constrained")
    ax = fig.subplots()
    w = 0.4
    ax.bar(values - w / 2, gp, w, label=f"gold (mean {gold_mean:.2f})", color="tab:gray", edgecolor="black", lw=0.5)
    ax.bar(values + w / 2, pp, w, label=f"predicted (mean {pred_mean:.2f})", color="tab:green",
           edgecolor="black", lw=0.5)
    ax.plot([], [], ls="none", label=f"same size {100 * match:.1f}%, fewer {100 * under:.1f}%, more {100 * over:.1f}%")
    ax.set_xlabel("labels per document" + (f" (last bars: ≥ {cap})" if top > cap else ""))
    ax.set_ylabel("documents (%)")
    ax.set_title(title or "predicted vs gold labels per document")
    if len(values) <= 30:
        ax.set_xticks(values)
    ax.set_ylim(0, min(max(gp.max(), pp.max()) * 1.3, 105))
    ax.legend(fontsize=9, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    _save(fig, out)
    return fig

