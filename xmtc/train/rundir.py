"""The run directory's files, read and written: ``config.json``, ``metrics.json``, ``predictions.tsv``.

A run directory holds ``config.json`` (resolved config + model config and data
statistics, :func:`write_config`), ``metrics.json`` (every epoch, the best, the
test metrics, the calibrated set size; :func:`write_metrics`,
:func:`update_metrics`), ``predictions.tsv`` (:func:`write_predictions`),
``checkpoint.pt`` (last epoch or a batch within one, everything to resume) and
``best.pt`` (best validation micro-F1, for prediction). The readers are here as
well (:func:`read_json`, :func:`read_metrics`, :func:`read_predictions`); a
saved config becomes a ``RunConfig`` through ``xmtc.config.read_config``.

Every file is written atomically by ``evaluation.atomic_write`` (temporary file,
fsync, rename): the JSON files through ``evaluation.write_json``, the checkpoints
through ``xmtc.train.checkpoint.save`` (their contents: ``xmtc.train.run_state``).
Loading a run back to label new text: ``xmtc.inference``.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from evaluation import atomic_write, write_json
from xmtc.config import RunConfig
from xmtc.data.loading import targets_truncated
from xmtc.train.distributed import unwrap
from xmtc.train.outcomes import FitResult, SplitPrediction


def write_metrics(out_dir, history: list, best: dict | None, test: dict | None = None, extra: dict | None = None):
    """``metrics.json``: every epoch, the best epoch and (at the end) the test metrics under ``test``."""
    payload = {"epochs": history, "best": best}
    if extra:
        payload.update(extra)
    if test is not None:
        payload["test"] = test
    return write_json(payload, Path(out_dir) / "metrics.json")


def write_config(out_dir, cfg: RunConfig, extra: dict | None = None) -> Path:
    """``config.json``: the resolved config (plus e.g. the model's own config and data stats)."""
    return write_json({**cfg.to_dict(), **(extra or {})}, Path(out_dir) / "config.json")


CONFIG, METRICS, PREDICTIONS = "config.json", "metrics.json", "predictions.tsv"


def write_predictions(out_dir, split, prediction: SplitPrediction | Sequence[set[int]],
                      label_names: list[str]) -> Path:
    """``predictions.tsv``: ``doc_id``, gold labels (file order), predicted labels (by id), names ``|``-separated.

    ``prediction``: a :class:`SplitPrediction` or one set of label ids per document of ``split``.
    """
    labels = prediction.labels if isinstance(prediction, SplitPrediction) else prediction
    path = Path(out_dir) / PREDICTIONS
    with atomic_write(path, permissions=0o644) as f:
        f.write("doc_id\tgold\tpredicted\n")
        for i in range(len(split)):
            gold = "|".join(label_names[k] for k in split.labels(i))
            pred = "|".join(label_names[k] for k in sorted(labels[i]))
            f.write(f"{split.doc_id(i)}\t{gold}\t{pred}\n")
    return path


def _in_run(run, name: str) -> Path:
    """``run`` is a run directory (the file ``name`` in it) or the file itself (an existing file, or a
    path with a suffix such as ``.json``); a missing directory gives ``run/name``, named in the error."""
    p = Path(run)
    return p if p.is_file() or (not p.is_dir() and p.suffix) else p / name


def read_json(path) -> dict:
    """A JSON object from ``path``; a missing or broken file is one line naming it (``FileNotFoundError`` / ``ValueError``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {path.name} at {path}")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:  # str(e) keeps "line L column C"
        raise ValueError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def read_metrics(run) -> dict:
    """The ``metrics.json`` of a run directory (or the file itself) as a dict.

    Layout (:func:`write_metrics`): ``{"epochs": [{"epoch", "lr", "train": {loss terms...,
    "grad_norm", "docs", "time_s", ...}, "valid": {metrics...}, "best": bool}, ...],
    "best": {"epoch", "micro_f1"}, "test": {metrics...}, "calibrated": {...}, ...}``;
    ``"test"`` is present once the run finished.
    """
    return read_json(_in_run(run, METRICS))


def update_metrics(run, **entries) -> Path:
    """Set top-level ``entries`` of a finished run's ``metrics.json`` atomically, keeping every other key.

    Refuses (``ValueError``) a ``metrics.json`` without ``test``: an unfinished run rewrites the file itself.
    """
    path = _in_run(run, METRICS)
    metrics = read_json(path)
    if "test" not in metrics:
        raise ValueError(f"{path} has no 'test' entry: the run has not finished (it rewrites the file itself)")
    return write_json({**metrics, **entries}, path)


def read_predictions(run) -> list[tuple[str, set[str], set[str]]]:
    """``(doc_id, gold names, predicted names)`` per document of a ``predictions.tsv`` (or ``.tsv.gz``).

    ``run``: a run directory or the file. The file (:func:`write_predictions`) has the
    header ``doc_id, gold, predicted`` and label names joined by ``|``; an empty field
    is an empty set. A bad line is an error naming the file and the line.
    """
    path = _in_run(run, PREDICTIONS)
    if not path.is_file():
        raise FileNotFoundError(f"no {PREDICTIONS} at {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or rows[0] != ["doc_id", "gold", "predicted"]:
        raise ValueError(f"{path}: expected the header doc_id, gold, predicted, got {rows[0] if rows else 'nothing'}")
    out = []
    for line_no, row in enumerate(rows[1:], start=2):
        if len(row) != 3:
            raise ValueError(f"{path}:{line_no}: expected 3 tab-separated fields, got {len(row)}")
        out.append((row[0], set(filter(None, row[1].split("|"))), set(filter(None, row[2].split("|")))))
    return out


def run_info(model: nn.Module, dataset, device: torch.device) -> dict:
    """Extra ``config.json`` entries: the model's own config, parameters, device, dataset statistics."""
    model = unwrap(model)
    info = {"model_config": model.config.to_dict(), "parameters": model.num_parameters(), "device": str(device),
            "dataset": {k: v for k, v in dataset.stats().items() if k != "skipped"}}
    if hasattr(model.config, "n_steps"):
        info["train_docs_with_labels_beyond_N"] = targets_truncated(dataset, model.config.n_steps)
    return info


def summary(model: nn.Module, result: FitResult) -> dict:
    """Extra ``metrics.json`` entries: parameters and training time."""
    return {"parameters": unwrap(model).num_parameters(), "train_time_s": result.train_time_s,
            "epochs_run": len(result.history)}


__all__ = ["CONFIG", "METRICS", "PREDICTIONS", "read_json", "read_metrics", "read_predictions", "run_info",
           "summary", "update_metrics", "write_config", "write_metrics", "write_predictions"]
