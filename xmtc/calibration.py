"""The calibrated set size of a trained model: ``τ`` chosen on dev, both splits scored with it.

The rule and its choice are :mod:`evaluation.calibration` (one threshold on
each label's score, maximising dev micro-F1); this module runs a trained model
over the dev and test splits, keeping the decoded sets, the top-``k`` scores
(for the ranking metrics, as :func:`xmtc.train.engine.evaluate` does) and, sparsely,
every label whose score reaches the grid's smallest threshold. The training
scripts call :func:`calibrate` with the best weights and store its result in
``metrics.json`` under ``calibrated``::

    "calibrated": {"rule": "score >= tau", "tau": 0.3, "valid": {...}, "test": {...}}

``valid`` and ``test`` hold the keys of ``test`` (the ranking metrics are the
model's, unchanged; the set metrics are those of the calibrated sets). ``tau``
is ``null`` where the decoded sets score higher on dev than any threshold (they
are then kept). ``examples/predict.py RUN TEXT --calibrated`` applies ``τ``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from evaluation.calibration import PROBABILITY_GRID, apply_threshold, choose_threshold

from xmtc.config import TrainConfig
from xmtc.train.distributed import unwrap
from xmtc.data.loading import make_loader

RULE = "score >= tau"


@torch.no_grad()
def split_scores(model: nn.Module, dataset, split: str, train_cfg: TrainConfig, *, device: torch.device,
                 floor: float = float(PROBABILITY_GRID[0]), top_k: int = 5):
    """Decoded sets, sparse scores and top-``k`` of every document of ``dataset.<split>``, in split order.

    Returns
    -------
    decoded : list of D sets of label ids
    scores : scipy.sparse.csr_matrix (D, L), the scores ``>= floor`` (each label's largest
        probability over the decoding steps)
    top_ids, top_scores : (D, k) arrays, the ``k`` best-scoring labels
    """
    model = unwrap(model)
    was_training = model.training
    model.eval()
    sp_split = getattr(dataset, split)
    n_docs, n_labels = len(sp_split), model.config.n_labels
    k = min(top_k, n_labels)
    decoded: list[set[int] | None] = [None] * n_docs
    top_ids = np.full((n_docs, k), -1, dtype=np.int64)
    top_scores = np.zeros((n_docs, k), dtype=np.float32)
    rows, cols, vals = [], [], []
    for batch in make_loader(dataset, split, train_cfg, label_order=model.label_order):  # one process
        batch = batch.to(device)
        pred = model.predict(batch)
        scores = pred.scores.float()  # (B, L)
        idx = batch.index.cpu().numpy()  # (B,) positions in the split
        top = scores.topk(k, dim=-1)
        top_ids[idx], top_scores[idx] = top.indices.cpu().numpy(), top.values.cpu().numpy()
        b, l = torch.nonzero(scores >= floor, as_tuple=True)  # (E,), (E,)
        rows.append(idx[b.cpu().numpy()])
        cols.append(l.cpu().numpy())
        vals.append(scores[b, l].cpu().numpy())
        for i, labels in zip(idx.tolist(), pred.labels):
            decoded[i] = set(labels)
    model.train(was_training)
    if any(s is None for s in decoded):
        raise RuntimeError(f"{split}: a document got no prediction")
    cat = (lambda parts, dt: np.concatenate(parts) if parts else np.zeros(0, dt))
    matrix = sp.csr_matrix((cat(vals, np.float32), (cat(rows, np.int64), cat(cols, np.int64))),
                           shape=(n_docs, n_labels))
    return decoded, matrix, top_ids, top_scores


def calibrate(model: nn.Module, dataset, train_cfg: TrainConfig, *, device: torch.device,
              taus=PROBABILITY_GRID) -> dict:
    """Choose ``τ`` on ``dataset.valid`` and score both splits with it (``metrics.json``'s ``calibrated``)."""
    from evaluation import evaluate

    out: dict = {"rule": RULE}
    for split in ("valid", "test"):
        decoded, scores, top_ids, top_scores = split_scores(model, dataset, split, train_cfg, device=device,
                                                            floor=float(np.min(taus)))
        gold = getattr(dataset, split).label_sets()
        if split == "valid":
            choice = choose_threshold(scores, gold, decoded, taus)
            out["tau"] = choice.tau
        sets = decoded if out["tau"] is None else apply_threshold(scores, out["tau"])
        out[split] = evaluate(sets, gold, len(dataset.label_names), scores=(top_ids, top_scores),
                              train_label_counts=dataset.label_counts, n_train_docs=len(dataset.train_full))
    return out


__all__ = ["RULE", "calibrate", "split_scores"]
