"""Turning decoder outputs into label sets and ranking scores (shared by all models).

A model decodes ``T`` steps; step ``t`` has a distribution ``p_t`` over the
``V`` output ids and an emitted id (its argmax). The prediction for a document
is

* ``labels``: the distinct real labels emitted on live steps (∅, ``PAD``,
  ``BOS``, ``EOS`` dropped; steps after ``EOS`` are dead), as dataset ids;
* ``scores``: for every dataset label ``k``, ``max_t p_t(k + N_SPECIAL)`` over
  the live steps, for ranking metrics (P@k, nDCG@k).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .specials import N_SPECIAL


@dataclass
class Prediction:
    """Predicted label sets and per-label scores of a batch.

    labels : list of set of int
        Dataset label ids, one set per document.
    scores : Tensor (B, n_labels), float32
        Max probability of each label over the decoding steps.
    """

    labels: list[set[int]]
    scores: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


@torch.no_grad()
def prediction_from_steps(logits: torch.Tensor, tokens: torch.Tensor, alive: torch.Tensor,
                          top_k: int | None = None) -> Prediction:
    """Build a :class:`Prediction`.

    Parameters
    ----------
    logits : Tensor (B, T, V), masked ids may be ``-inf``.
    tokens : LongTensor (B, T), emitted output ids.
    alive : BoolTensor (B, T), False on steps after the end of a sequence.
    top_k : int or None
        If given, each set holds the ``top_k`` best-scoring labels instead of the
        decoded ones (a fixed-size ranking cut-off).

    Returns
    -------
    Prediction
    """
    probs = torch.softmax(logits.float(), dim=-1)[..., N_SPECIAL:]  # (B, T, n_labels)
    probs = probs.masked_fill(~alive.unsqueeze(-1), 0.0)
    scores = probs.max(dim=1).values  # (B, n_labels)
    if top_k is not None:
        idx = scores.topk(min(top_k, scores.shape[1]), dim=-1).indices.cpu().tolist()
        return Prediction([set(row) for row in idx], scores)
    keep = alive & (tokens >= N_SPECIAL)  # (B, T)
    labels = [set((row[m] - N_SPECIAL).tolist()) for row, m in zip(tokens.cpu(), keep.cpu())]
    return Prediction(labels, scores)
