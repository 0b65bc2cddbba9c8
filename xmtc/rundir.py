"""The run directory: checkpoints' contents, ``config.json``, ``metrics.json``, ``predictions.tsv``,
and loading a trained run back to label new text.

A run directory holds ``config.json`` (resolved config + model config and data
statistics), ``metrics.json`` (every epoch, the best, the test metrics),
``predictions.tsv``, ``checkpoint.pt`` (last epoch, everything to resume) and
``best.pt`` (best validation micro-F1, for prediction). Every file is written
atomically (temporary file, then rename).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from . import checkpoint
from .config import RunConfig
from .distributed import unwrap
from .loading import targets_truncated
from .registry import model_from_checkpoint, model_type_of
from .runtime import select_device

if TYPE_CHECKING:
    from .engine import FitResult, SplitPrediction

# --------------------------------------------------------------------------- checkpoint contents
_MAY_CHANGE_ON_RESUME = {"out", "train.device", "train.num_workers", "train.log_every", "train.eval_batch_size",
                         "train.amp", "train.deterministic", "train.threads", "data.data_dir"}


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k != "options":
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def run_state(model: nn.Module, cfg: RunConfig, dataset, *, epoch: int, history: list, best: dict | None,
              optimizer=None, scheduler=None) -> dict:
    """Everything a checkpoint holds (tensors and plain containers only)."""
    model = unwrap(model)
    state = {
        "model_type": model_type_of(model),
        "model_config": _plain(model.config.to_dict()),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "epoch": int(epoch),
        "config": _plain(cfg.to_dict()),
        "label_names": list(dataset.label_names),
        "vocab": list(dataset.vocab.itos),
        "tokenizer": str(dataset.meta.get("tokenizer", "word")),
        "max_src_len": int(dataset.max_src_len),
        "history": _plain(history),
        "best": _plain(best),
    }
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
        state["scheduler"] = scheduler.state_dict()
        state["rng"] = checkpoint.rng_state()
    return state


def _plain(obj):
    """JSON-like copy: numpy / torch scalars to python, tuples kept."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, torch.Tensor) and obj.dim() == 0:
        return obj.item()
    return obj


def check_resumable(state: dict, cfg: RunConfig) -> None:
    """The checkpoint was made by the same run settings (device and workers may change)."""
    saved, now = _flat(state["config"]), _flat(_plain(cfg.to_dict()))
    diffs = [f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(saved) | set(now))
             if k not in _MAY_CHANGE_ON_RESUME and _norm(saved.get(k)) != _norm(now.get(k))]
    if diffs:
        raise checkpoint.CheckpointError(
            f"cannot resume: the checkpoint was made with other settings ({'; '.join(diffs[:3])}"
            f"{'; ...' if len(diffs) > 3 else ''})")


def _norm(v):
    return list(v) if isinstance(v, tuple) else v


# --------------------------------------------------------------------------- files
def write_metrics(out_dir, history: list, best: dict | None, test: dict | None = None, extra: dict | None = None):
    """``metrics.json``: every epoch, the best epoch and (at the end) the test metrics under ``test``."""
    from evaluation import write_json

    payload = {"epochs": history, "best": best}
    if extra:
        payload.update(extra)
    if test is not None:
        payload["test"] = test
    return write_json(payload, Path(out_dir) / "metrics.json")


def write_config(out_dir, cfg: RunConfig, extra: dict | None = None) -> Path:
    """``config.json``: the resolved config (plus e.g. the model's own config and data stats)."""
    path = Path(out_dir) / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**cfg.to_dict(), **(extra or {})}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_plain(payload), indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


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


# --------------------------------------------------------------------------- prediction on new text
@dataclass
class Run:
    """A trained run loaded for prediction (:func:`load_run`)."""

    model: nn.Module
    config: dict
    label_names: list[str]
    vocab: object  # xmtc.text.Vocab
    tokenizer: str
    max_src_len: int
    device: torch.device


def load_run(run_dir, *, device: str = "auto", model_type: str | None = None) -> Run:
    """Load ``best.pt`` (else ``checkpoint.pt``) of a run directory for prediction."""
    from .text import Vocab

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise checkpoint.CheckpointError(f"run directory {run_dir} not found")
    path = run_dir / "best.pt"
    if not path.is_file():
        path = run_dir / "checkpoint.pt"
    state = checkpoint.load(path, model_type=model_type)
    dev = select_device(device)
    model = model_from_checkpoint(state).to(dev).eval()
    return Run(model, state["config"], list(state["label_names"]), Vocab(state["vocab"]), state["tokenizer"],
               int(state["max_src_len"]), dev)


@torch.no_grad()
def predict_texts(run: Run, texts: list[str], *, batch_size: int = 64,
                  top_k: int | None = None) -> list[list[tuple[str, float]]]:
    """Label raw texts with a loaded run.

    Returns, per text, the predicted labels as ``(name, score)`` pairs, best
    first (``score``: the label's highest probability over decoding steps).
    With ``top_k``, the ``top_k`` best-scoring labels instead of the decoded set.
    """
    from .batching import collate
    from .text import TOKENIZERS

    tokenize = TOKENIZERS[run.tokenizer]
    out: list[list[tuple[str, float]]] = []
    for s in range(0, len(texts), batch_size):
        chunk = texts[s : s + batch_size]
        items = [(i, run.vocab.encode(tokenize(t))[: run.max_src_len], np.zeros(0, np.int64))
                 for i, t in enumerate(chunk)]
        batch = collate(items).to(run.device)
        pred = run.model.predict(batch, top_k=top_k)
        scores = pred.scores.float().cpu()
        for b, labels in enumerate(pred.labels):
            ranked = sorted(labels, key=lambda k: -float(scores[b, k]))
            out.append([(run.label_names[k], float(scores[b, k])) for k in ranked])
    return out


__all__ = ["Run", "check_resumable", "load_run", "predict_texts", "run_info", "run_state", "summary", "write_config",
           "write_metrics", "write_predictions"]
