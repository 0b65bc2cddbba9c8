"""The run directory's files: ``config.json``, ``metrics.json``, ``predictions.tsv``.

A run directory holds ``config.json`` (resolved config + model config and data
statistics, :func:`write_config`), ``metrics.json`` (every epoch, the best, the
test metrics, :func:`write_metrics`), ``predictions.tsv``
(:func:`write_predictions`), ``checkpoint.pt`` (last epoch, everything to
resume) and ``best.pt`` (best validation micro-F1, for prediction). Every file
is written atomically (temporary file, then rename): the JSON files by
``evaluation.write_json``, the checkpoints by ``xmtc.train.checkpoint.save`` (their
contents: ``xmtc.train.run_state``). Loading a run back to label new text:
``xmtc.inference``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from evaluation import write_json

from xmtc.config import RunConfig
from xmtc.train.distributed import unwrap
from xmtc.data.loading import targets_truncated
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


def write_predictions(out_dir, split, prediction: SplitPrediction, label_names: list[str]) -> Path:
    """``predictions.tsv``: ``doc_id``, gold labels, predicted labels (names, ``|``-separated)."""
    path = Path(out_dir) / "predictions.tsv"
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("doc_id\tgold\tpredicted\n")
        for i in range(len(split)):
            gold = "|".join(label_names[k] for k in split.labels(i))
            pred = "|".join(label_names[k] for k in sorted(prediction.labels[i]))
            f.write(f"{split.doc_id(i)}\t{gold}\t{pred}\n")
    os.replace(tmp, path)
    return path


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


__all__ = ["run_info", "summary", "write_config", "write_metrics", "write_predictions"]
