"""Prediction on new text with a trained run directory (``examples/predict.py``).

:func:`load_run` reads ``best.pt`` (else ``checkpoint.pt``) with
``torch.load(weights_only=True)`` and rebuilds the model, its vocabulary and
tokeniser, and the calibrated threshold ``τ`` from ``metrics.json`` where the run
stored one (:mod:`xmtc.calibration`); :func:`predict_texts` labels raw texts
with it: the decoded set (the paper's rule), the set ``score ≥ τ``
(``calibrated=True``) or the ``top_k`` best-scoring labels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from xmtc.train import checkpoint
from xmtc.registry import model_from_checkpoint
from xmtc.train.runtime import select_device


@dataclass
class Run:
    """A trained run loaded for prediction (:func:`load_run`)."""

    model: nn.Module
    config: dict
    label_names: list[str]
    vocab: object  # xmtc.data.text.Vocab
    tokenizer: str
    max_src_len: int
    device: torch.device
    #: ``metrics.json``'s ``calibrated`` entry (``{"rule", "tau", "valid", "test"}``), ``None`` if absent
    calibrated: dict | None = field(default=None)


def load_run(run_dir, *, device: str = "auto", model_type: str | None = None) -> Run:
    """Load ``best.pt`` (else ``checkpoint.pt``) of a run directory for prediction."""
    from xmtc.data.text import Vocab

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
               int(state["max_src_len"]), dev, _calibrated(run_dir))


def _calibrated(run_dir: Path) -> dict | None:
    """The ``calibrated`` entry of the run's ``metrics.json`` (``None``: no file, or written before it existed)."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    try:
        entry = json.loads(path.read_text(encoding="utf-8")).get("calibrated")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise checkpoint.CheckpointError(f"{path} is not valid JSON ({e})") from None
    return entry if isinstance(entry, dict) and "tau" in entry else None


@torch.no_grad()
def predict_texts(run: Run, texts: list[str], *, batch_size: int = 64, top_k: int | None = None,
                  calibrated: bool = False) -> list[list[tuple[str, float]]]:
    """Label raw texts with a loaded run.

    Returns, per text, the predicted labels as ``(name, score)`` pairs, best
    first (``score``: the label's highest probability over decoding steps).
    With ``top_k``, the ``top_k`` best-scoring labels instead of the decoded set;
    with ``calibrated``, every label whose score reaches the run's dev-chosen ``τ``
    (the decoded set where the run kept it, ``τ = None``).
    """
    tau = None
    if calibrated:
        if top_k is not None:
            raise ValueError("choose one of top_k and calibrated")
        if run.calibrated is None:
            raise ValueError("this run stores no calibrated threshold (its metrics.json has no 'calibrated' "
                             "entry: trained before calibration existed, or not finished)")
        tau = run.calibrated["tau"]
    from xmtc.data.batching import collate
    from xmtc.data.text import TOKENIZERS

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
            if tau is not None:
                labels = torch.nonzero(scores[b] >= tau).flatten().tolist()
            ranked = sorted(labels, key=lambda k: -float(scores[b, k]))
            out.append([(run.label_names[k], float(scores[b, k])) for k in ranked])
    return out


__all__ = ["Run", "load_run", "predict_texts"]
