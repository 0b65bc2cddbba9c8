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

A run trained before the entry existed gets it from its ``best.pt``:
:func:`calibrate_run` computes it (the same entry the training script would
have stored) and ``xmtc.train.rundir.update_metrics(run, calibrated=...)`` adds it to ``metrics.json``
(``examples/calibrate.py RUN_DIR``). The linear baseline
(``examples/train_linear.py``) stores its own, over its margins
(:data:`evaluation.calibration.MARGIN_GRID`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from evaluation.calibration import PROBABILITY_GRID, RULE, SplitScores, calibrated_entry
from xmtc.config import TrainConfig
from xmtc.data.loading import make_loader
from xmtc.train.distributed import unwrap
from xmtc.train.engine import predict


def split_scores(model: nn.Module, dataset, split: str, train_cfg: TrainConfig, *, device: torch.device,
                 floor: float = float(PROBABILITY_GRID[0]), top_k: int = 5):
    """Decoded sets, sparse scores and top-``k`` of every document of ``dataset.<split>``, in split order.

    One pass of ``xmtc.train.engine.predict`` with ``score_floor=floor`` (one process).

    Returns
    -------
    decoded : list of D sets of label ids
    scores : scipy.sparse.csr_matrix (D, L), the scores ``>= floor`` (each label's largest
        probability over the decoding steps)
    top_ids, top_scores : (D, k) arrays, the ``k`` best-scoring labels
    """
    loader = make_loader(dataset, split, train_cfg, label_order=unwrap(model).label_order)
    pred = predict(model, loader, device=device, n_docs=len(getattr(dataset, split)), amp=train_cfg.amp,
                   top_k=top_k, split=split, score_floor=floor)
    return pred.labels, pred.scores, pred.top_ids, pred.top_scores


def calibrate(model: nn.Module, dataset, train_cfg: TrainConfig, *, device: torch.device,
              taus=PROBABILITY_GRID) -> dict:
    """Choose ``τ`` on ``dataset.valid`` and score both splits with it (``metrics.json``'s ``calibrated``,
    :func:`evaluation.calibration.calibrated_entry`)."""
    splits = {}
    for split in ("valid", "test"):
        decoded, scores, top_ids, top_scores = split_scores(model, dataset, split, train_cfg, device=device,
                                                            floor=float(np.min(taus)))
        splits[split] = SplitScores(decoded, scores, getattr(dataset, split).label_sets(), top_ids, top_scores)
    return calibrated_entry(splits["valid"], splits["test"], len(dataset.label_names), taus=taus,
                            train_label_counts=dataset.label_counts, n_train_docs=len(dataset.train_full))


def calibrate_run(run_dir, *, data_dir=None, device: str = "cpu", progress=None) -> dict:
    """The ``calibrated`` entry of a trained run directory, computed from its ``best.pt``.

    The model, its config and its data split are those of the checkpoint (the
    same entry the training script stores at the end of a run); ``data_dir``
    replaces a data directory that moved. Nothing is written (``xmtc.train.rundir.update_metrics``).

    Raises
    ------
    xmtc.train.checkpoint.CheckpointError
        No run directory, no ``best.pt`` (a linear run stores its entry when it trains), unreadable weights.
    xmtc.data.datasets.DataError
        The data found is not the data the run was trained on (other labels or words).
    """
    from xmtc import registry
    from xmtc.config.settings import compose
    from xmtc.data.datasets import DataError
    from xmtc.data.loading import load_data
    from xmtc.train import checkpoint
    from xmtc.train.runtime import select_device

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise checkpoint.CheckpointError(f"run directory {run_dir} not found")
    weights = run_dir / "best.pt"
    if not weights.is_file():
        what = ("a linear run: it stores its calibrated entry when it trains"
                if (run_dir / "model.npz").is_file() else "is it a run directory of examples/train_*.py?")
        raise checkpoint.CheckpointError(f"{run_dir} holds no best.pt to calibrate ({what})")
    state = checkpoint.load(weights)
    cfg = compose(saved=state["config"], where=f"the config in {weights}")
    if data_dir is not None:
        cfg.data.data_dir = str(data_dir)
    data = load_data(cfg.data, seed=cfg.train.seed, progress=progress)
    for what, saved, now in (("labels", list(state["label_names"]), list(data.label_names)),
                             ("word vocabulary", list(state["vocab"]), list(data.vocab.itos))):
        if saved != now:
            raise DataError(f"the {cfg.data.name} data found is not what {run_dir} was trained on (its {what} "
                            f"differ: {len(now)} now, {len(saved)} in the run); give the data directory it used")
    dev = select_device(device)
    model = registry.model_from_checkpoint(state).to(dev)
    return calibrate(model, data, cfg.train, device=dev)


__all__ = ["RULE", "calibrate", "calibrate_run", "split_scores"]
