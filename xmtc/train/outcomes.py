"""What training and prediction return: the result types shared by the engine and the run directory.

:class:`SplitPrediction` (``xmtc.train.engine.predict``), :class:`FitResult`
(``xmtc.train.engine.fit``) and :class:`RunResult` (``xmtc.run.train_run``) live
here, apart from the code that makes them, so that ``xmtc.train.rundir`` can write
them without importing the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xmtc.config import RunConfig


@dataclass
class SplitPrediction:
    """Predictions over a split, in split order."""

    labels: list[set[int]]  # dataset label ids per document
    top_ids: np.ndarray  # (D, k) best-scoring label ids
    top_scores: np.ndarray  # (D, k)
    scores: object = None  # scipy.sparse.csr_matrix (D, n_labels) of the scores >= predict's score_floor, or None


@dataclass
class FitResult:
    """What ``xmtc.train.engine.fit`` returns."""

    history: list = field(default_factory=list)  # one record per epoch
    best: dict | None = None  # {"epoch", "micro_f1"}
    train_time_s: float = 0.0  # training passes only (no evaluation), summed over epochs, resume included
    resumed_from: int = 0  # epochs completed before this call


@dataclass
class RunResult:
    """Outcome of ``xmtc.run.train_run``."""

    config: RunConfig
    test: dict  # test metrics of the best epoch
    fit: FitResult
    parameters: int
    stats: dict
    out_dir: Path | None
    calibrated: dict | None = None  # xmtc.calibration.calibrate: {"rule", "tau", "valid", "test"}


__all__ = ["FitResult", "RunResult", "SplitPrediction"]
