"""Prediction on new text with a trained run directory (``examples/predict.py``).

:func:`load_run` reads ``best.pt`` (else ``checkpoint.pt``) with
``torch.load(weights_only=True)`` and rebuilds the model, its vocabulary and
tokeniser; :func:`predict_texts` labels raw texts with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import checkpoint
from .registry import model_from_checkpoint
from .runtime import select_device


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


__all__ = ["Run", "load_run", "predict_texts"]
