"""Training engine: the training loop, validation and test evaluation — for any model.

The paper's recipe (Section 3.4): Adam, cosine annealing of the learning rate
over the epochs, gradient norm clipped at 8, weights from U(-0.1, 0.1),
dropout 0.2, validation after every epoch keeping the best checkpoint by
validation micro-F1, which is then evaluated on the test split.

Pieces, used top to bottom by :func:`xmtc.run.train_run`, the one function that
runs a whole training (each imported from the module that defines it)::

    cfg     = xmtc.config.compose(...)                  # resolved RunConfig
    device  = select_device(cfg.train.device); seed_everything(...)   # xmtc.train.runtime
    data    = load_data(cfg.data, seed=..., progress=...)              # xmtc.data.loading
    words   = load_embeddings(cfg, data)                # GloVe, optional  (xmtc.data.loading)
    model   = build_model(cfg, data, words)                            # xmtc.registry
    result  = fit(model, data, cfg, device=device, callbacks=...)      # here
    test    = evaluate(model, data, "test", cfg.train, device=device)  # here
    write_metrics(cfg.out, ...); write_predictions(...)                # xmtc.train.rundir

:func:`fit` is three named steps around the epoch loop: :func:`restore`
(``--resume``), :func:`run_epoch` (a training pass, validation, the LR
schedule's step) and :func:`save_epoch` (``best.pt``, ``checkpoint.pt``,
``metrics.json``); in between, every ``train.checkpoint_interval`` minutes and
on SIGINT / SIGTERM, a mid-epoch ``checkpoint.pt`` (``xmtc.train.stopping``). Every
model is trained through ``xmtc.train.distributed.LossModule``
(``forward(batch) = model.compute_loss(batch)``), with or without
``DistributedDataParallel`` around it, so :func:`train_one_epoch` always calls
it the same way.

The library never prints: progress goes to a :class:`Callbacks` object
(``xmtc.reporting.progress.RichProgress`` draws it). Loss terms come from each model's
``compute_loss(batch)`` (the set loss of Eq. 17 for OTSeq2Set, token
cross-entropy for the baselines).

Reproducibility: every random number comes from the seeded global generators
(dropout, initialisation) or from generators seeded by ``(seed, epoch)``
(the order of training batches). A checkpoint stores the global generators'
states (every rank's) at its position, the batches of the epoch already
trained and the epoch's running loss sums, so ``--resume`` regenerates the
epoch's batch order, skips those batches and ends bit-for-bit where an
uninterrupted run ends (on a CPU). A checkpoint without a position (older
files) resumes at the start of the next epoch.

Stopping (``xmtc.train.stopping``): during :func:`fit` SIGINT and SIGTERM finish the
batch being trained, write ``checkpoint.pt`` and raise
``xmtc.train.stopping.Interrupted``, which names what was saved; the script prints it.

Distributed training (torchrun, ``xmtc.train.distributed``): when
``torch.distributed`` is initialised, :func:`fit` wraps the model in
``DistributedDataParallel``, each rank takes its share of every global batch
(``ShardedBatchSampler``), evaluation gathers every rank's predictions (each
document once), and only rank 0 writes files and reports progress.
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from scipy import sparse
from torch import nn

from xmtc.config import ConfigError, RunConfig, TrainConfig
from xmtc.data.loading import global_position, make_loader, truncate_targets
from xmtc.train import checkpoint
from xmtc.train.distributed import (
    DistContext,
    LossModule,
    agree,
    barrier,
    distributed_context,
    gather,
    unwrap,
)
from xmtc.train.outcomes import FitResult, SplitPrediction
from xmtc.train.run_state import check_resumable, run_state
from xmtc.train.rundir import write_metrics
from xmtc.train.runtime import autocast
from xmtc.train.stopping import (
    Interrupted,
    IntervalTimer,
    SavePoint,
    StopNow,
    StopSignals,
    save_point,
)

# --------------------------------------------------------------------------- callbacks


class Callbacks:
    """Hooks the engine calls; the default does nothing (library code never prints).

    Subclass and override what you need (``xmtc.reporting.progress.RichProgress``).
    """

    def on_data(self, stage: str, done: int, total: int | None) -> None:
        """Data preparation progress (``xmtc.data.datasets.load``'s ``progress``)."""

    def on_fit_start(self, start_epoch: int, epochs: int, n_batches: int) -> None:
        """Training starts at ``start_epoch`` (0-based; > 0 when resumed)."""

    def on_epoch_start(self, epoch: int, epochs: int, n_batches: int) -> None:
        """Epoch ``epoch`` (1-based) of ``epochs`` starts."""

    def on_epoch_resume(self, epoch: int, batch: int, n_batches: int) -> None:
        """Epoch ``epoch`` continues after its batch ``batch`` (a mid-epoch checkpoint); after ``on_epoch_start``."""

    def on_checkpoint(self, saved: SavePoint) -> None:
        """A mid-epoch checkpoint was written (``train.checkpoint_interval``)."""

    def on_batch(self, epoch: int, step: int, n_batches: int, terms: dict, docs_per_s: float) -> None:
        """After optimiser step ``step`` (1-based); ``terms``: running means of the loss terms."""

    def on_eval_start(self, split: str, n_batches: int) -> None:
        """Prediction over ``split`` starts."""

    def on_eval_batch(self, split: str, step: int, n_batches: int) -> None:
        """One prediction batch done."""

    def on_epoch_end(self, record: dict) -> None:
        """An epoch's record (train loss terms, validation metrics, times)."""

    def on_fit_end(self, result: "FitResult") -> None:
        """Training finished."""

    def on_message(self, text: str) -> None:
        """A line for the user from a whole run (``xmtc.run.train_run``): cache used, GloVe coverage, model size."""


# --------------------------------------------------------------------------- training

@dataclass
class EpochCounters:
    """Running sums of a training pass; a mid-epoch checkpoint keeps them, so a resumed epoch reports the same means.

    ``sums``: each loss term summed over documents (batch mean x batch size x
    ranks); ``docs``: documents (all ranks); ``grad_norm``: sum of the gradient
    norms before clipping; ``steps``: optimiser steps; ``time_s``: seconds of training.
    """

    sums: dict = field(default_factory=dict)
    docs: int = 0
    grad_norm: float = 0.0
    steps: int = 0
    time_s: float = 0.0

    def means(self) -> dict:
        return {k: s / max(self.docs, 1) for k, s in self.sums.items()}

    def summary(self) -> dict:
        """Mean of every loss term, ``grad_norm`` (mean), ``docs``, ``time_s``, ``docs_per_s``."""
        out = self.means()
        out.update(grad_norm=self.grad_norm / max(self.steps, 1), docs=self.docs, time_s=self.time_s,
                   docs_per_s=self.docs / max(self.time_s, 1e-9))
        return out

    def to_state(self) -> dict:
        return {"sums": dict(self.sums), "docs": self.docs, "grad_norm": self.grad_norm, "steps": self.steps,
                "time_s": self.time_s}

    @classmethod
    def from_state(cls, state: dict | None) -> "EpochCounters":
        if not state:
            return cls()
        return cls(dict(state["sums"]), int(state["docs"]), float(state["grad_norm"]), int(state["steps"]),
                   float(state["time_s"]))


def train_one_epoch(loss_module: nn.Module, loader, optimizer: torch.optim.Optimizer, *, device: torch.device,
                    grad_clip: float = 8.0, amp: bool = False, epoch: int = 1,
                    callbacks: Callbacks | None = None, log_every: int = 1, world_size: int = 1,
                    max_targets: int | None = None, start: int = 0, n_batches: int | None = None,
                    counters: EpochCounters | None = None,
                    after_batch: Callable[[int, EpochCounters], None] | None = None) -> dict:
    """One pass over ``loader``: forward, loss, backward, clip, Adam step.

    Parameters
    ----------
    loss_module : nn.Module
        ``forward(batch)`` returns the dict of loss terms:
        ``xmtc.train.distributed.LossModule(model)``, or ``DistributedDataParallel``
        around it.
    loader : iterable of ``Batch``
    optimizer : torch optimizer
    grad_clip : float
        Gradient norm clip (paper: 8).
    amp : bool
        bf16 autocast on CUDA (default off, as ``TrainConfig.amp``: float32 as the authors).
    world_size : int
        Processes training together; documents and docs/s are reported for all of them.
    max_targets : int, optional
        Keep at most this many gold labels per document (the set model's ``N``).
    start : int
        Batches of the epoch trained before (a resumed epoch): ``loader`` yields
        the rest, numbered from ``start + 1``.
    n_batches : int, optional
        Batches of the whole epoch (default ``start + len(loader)``).
    counters : EpochCounters, optional
        The running sums to continue (a resumed epoch); updated in place.
    after_batch : callable, optional
        ``after_batch(step, counters)`` after every optimiser step (``fit``: interval
        checkpoints and stopping).

    Returns
    -------
    dict
        Mean of every loss term over the epoch (weighted by documents),
        ``grad_norm`` (mean before clipping), ``docs``, ``time_s``, ``docs_per_s``.
    """
    cb = callbacks or Callbacks()
    if hasattr(loss_module, "compute_loss"):  # a bare model: call it the one way the engine does
        loss_module = LossModule(loss_module)
    loss_module.train()
    c = counters if counters is not None else EpochCounters()
    n_batches = start + len(loader) if n_batches is None else n_batches
    t0, time_before, docs_before = time.perf_counter(), c.time_s, c.docs
    for step, batch in enumerate(loader, start=start + 1):
        if max_targets is not None:
            batch = truncate_targets(batch, max_targets)
        batch = batch.to(device)
        with autocast(device, amp):
            terms = loss_module(batch)  # model.compute_loss(batch), through DDP when distributed
        loss = terms["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"epoch {epoch}, batch {step}: loss is {loss.item()}; "
                                     f"try a smaller learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(loss_module.parameters(), grad_clip)
        optimizer.step()
        B = len(batch)
        c.docs += B * world_size
        c.steps += 1
        c.grad_norm += float(gnorm)
        for k, v in terms.items():
            c.sums[k] = c.sums.get(k, 0.0) + float(v.detach()) * B * world_size
        elapsed = time.perf_counter() - t0
        c.time_s = time_before + elapsed
        if step % log_every == 0 or step == n_batches:
            cb.on_batch(epoch, step, n_batches, c.means(), (c.docs - docs_before) / max(elapsed, 1e-9))
        if after_batch is not None:
            after_batch(step, c)
    c.time_s = time_before + (time.perf_counter() - t0)
    return c.summary()


@torch.no_grad()
def predict(model: nn.Module, loader, *, device: torch.device, n_docs: int, amp: bool = False, top_k: int = 5,
            split: str = "test", callbacks: Callbacks | None = None, dist: DistContext | None = None,
            score_floor: float | None = None) -> SplitPrediction:
    """Predict label sets and top-``k`` scores for every document a loader yields.

    Under torchrun every rank predicts its share and the results are gathered
    (each document exactly once, by its position in the split). ``score_floor``:
    also keep every label score ``>= score_floor`` as a sparse ``(D, n_labels)``
    matrix (``SplitPrediction.scores``; the calibrated set size, ``xmtc.calibration``).
    """
    cb = callbacks or Callbacks()
    model = unwrap(model)
    was_training = model.training
    model.eval()
    n_labels = model.config.n_labels
    k = min(top_k, n_labels)
    idx_parts, label_parts, id_parts, score_parts = [], [], [], []
    sparse_parts = []  # (doc positions, label ids, scores) of the scores >= score_floor
    cb.on_eval_start(split, len(loader))
    for step, batch in enumerate(loader, start=1):
        batch = batch.to(device)
        with autocast(device, amp):
            pred = model.predict(batch)
        scores = pred.scores.float()  # (B, n_labels)
        top = scores.topk(k, dim=-1)
        idx_parts.append(batch.index.cpu().numpy())
        label_parts += pred.labels
        id_parts.append(top.indices.cpu().numpy())
        score_parts.append(top.values.cpu().numpy())
        if score_floor is not None:
            b, lab = torch.nonzero(scores >= score_floor, as_tuple=True)  # (E,), (E,)
            sparse_parts.append((idx_parts[-1][b.cpu().numpy()], lab.cpu().numpy(), scores[b, lab].cpu().numpy()))
        cb.on_eval_batch(split, step, len(loader))
    model.train(was_training)
    index = np.concatenate(idx_parts) if idx_parts else np.zeros(0, np.int64)
    ids = np.concatenate(id_parts) if id_parts else np.zeros((0, k), np.int64)
    scores = np.concatenate(score_parts) if score_parts else np.zeros((0, k), np.float32)
    dist = dist or DistContext()
    if dist.active:
        gathered = gather((index, label_parts, ids, scores, sparse_parts), dist)
        index = np.concatenate([g[0] for g in gathered])
        label_parts = [s for g in gathered for s in g[1]]
        ids = np.concatenate([g[2] for g in gathered])
        scores = np.concatenate([g[3] for g in gathered])
        sparse_parts = [part for g in gathered for part in g[4]]
    labels: list[set[int] | None] = [None] * n_docs
    out_ids = np.full((n_docs, k), -1, dtype=np.int64)
    out_scores = np.zeros((n_docs, k), dtype=np.float32)
    for j, i in enumerate(index.tolist()):
        labels[i] = set(label_parts[j])
        out_ids[i], out_scores[i] = ids[j], scores[j]
    missing = [i for i, s in enumerate(labels) if s is None]
    if missing:
        raise RuntimeError(f"{split}: no prediction for {len(missing)} document(s), e.g. position {missing[0]}")
    matrix = None
    if score_floor is not None:
        def cat(j, dtype):
            return np.concatenate([p[j] for p in sparse_parts]) if sparse_parts else np.zeros(0, dtype)

        matrix = sparse.csr_matrix((cat(2, np.float32), (cat(0, np.int64), cat(1, np.int64))),
                                   shape=(n_docs, n_labels))
    return SplitPrediction(labels, out_ids, out_scores, matrix)


def evaluate(model: nn.Module, dataset, split: str, train_cfg: TrainConfig, *, device: torch.device,
             label_order: str = "file", callbacks: Callbacks | None = None,
             dist: DistContext | None = None) -> tuple[dict, SplitPrediction]:
    """Predict ``dataset.<split>`` and score it with ``evaluation.evaluate``.

    Gold sets keep labels never seen in training (they count as misses); the
    ranking metrics (P@k, nDCG@k, PSP@k) use each label's maximum probability
    over the decoding steps.

    Returns
    -------
    metrics : dict[str, float]
    prediction : SplitPrediction
    """
    from evaluation import evaluate as score

    dist = dist or distributed_context()
    sp = getattr(dataset, split)
    loader = make_loader(dataset, split, train_cfg, label_order=label_order, dist=dist)
    pred = predict(model, loader, device=device, n_docs=len(sp), amp=train_cfg.amp, split=split,
                   callbacks=callbacks, dist=dist)
    metrics = score(pred.labels, sp.label_sets(), len(dataset.label_names),
                    scores=(pred.top_ids, pred.top_scores),
                    train_label_counts=dataset.label_counts, n_train_docs=len(dataset.train_full))
    return metrics, pred


# --------------------------------------------------------------------------- fit
def fit(model: nn.Module, dataset, cfg: RunConfig, *, device: torch.device, out_dir: str | os.PathLike | None = None,
        resume: bool = False, callbacks: Callbacks | None = None, dist: DistContext | None = None) -> FitResult:
    """Train ``cfg.train.epochs`` epochs, validating after each; keep the best weights.

    With ``out_dir``, ``checkpoint.pt`` (everything, for ``resume``) and
    ``best.pt`` (the best epoch's weights, for prediction) are written after
    every epoch (atomically; rank 0 only), and ``checkpoint.pt`` also in the
    middle of an epoch every ``cfg.train.checkpoint_interval`` minutes. On return
    the model holds the best epoch's weights (kept in memory on every rank, so
    nodes need no shared disk except to resume).

    SIGINT / SIGTERM (main thread; ``xmtc.train.stopping``): the batch being trained
    finishes, ``checkpoint.pt`` is written at that position and
    :class:`~xmtc.train.stopping.Interrupted` is raised (under torchrun every rank
    stops at the same batch). A ``KeyboardInterrupt`` raised otherwise (by a
    callback) stops at once, as :class:`~xmtc.train.stopping.Interrupted` naming the
    last checkpoint written.

    Parameters
    ----------
    model : nn.Module, on ``device``.
    dataset : XMTCDataset
    cfg : RunConfig
    out_dir : run directory or None (nothing written).
    resume : continue from ``out_dir/checkpoint.pt`` (at the batch after its position).
    dist : rank / world size (default: from ``torch.distributed``).

    Raises
    ------
    xmtc.train.stopping.Interrupted
        Stopped by a signal; ``.saved`` is the checkpoint to resume from (None: nothing saved).
    """
    cb = callbacks or Callbacks()
    dist = dist or distributed_context()
    t = cfg.train
    out = Path(out_dir) if out_dir is not None else None
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t.epochs)
    result, best_state = FitResult(), None  # best_state: the best epoch's weights, in memory on every rank
    stop = StopSignals()
    saves = _Checkpoints(out, model, cfg, dataset, optimizer, scheduler, result, dist=dist, device=device,
                         callbacks=cb, stop=stop)
    with stop, _as_interrupted(saves):
        mid = None  # the position of a mid-epoch checkpoint
        if resume:
            result, best_state, position = restore(out, model, optimizer, scheduler, cfg, dist=dist)
            saves.result, saves.last = result, position["point"]
            mid = None if position["point"].validated else position
        loss_module: nn.Module = LossModule(model)  # forward(batch) = model.compute_loss(batch)
        if dist.active:
            loss_module = nn.parallel.DistributedDataParallel(
                loss_module, device_ids=[device.index] if device.type == "cuda" else None)
        n_batches = len(make_loader(dataset, "train", t, label_order=unwrap(model).label_order, train=True,
                                    dist=dist))
        cb.on_fit_start(result.resumed_from, t.epochs, n_batches)
        for epoch in range(result.resumed_from, t.epochs):
            saves.stop_if_requested()  # before the epoch: nothing trained since the last checkpoint
            start, counters = 0, EpochCounters()
            if mid is not None and mid["point"].epoch == epoch + 1:
                start, counters = mid["global_batch"], EpochCounters.from_state(mid["counters"])
            saves.start_epoch(epoch + 1, start, mid["point"].n_batches if start else 0)
            try:
                record = run_epoch(loss_module, dataset, optimizer, scheduler, t, epoch=epoch, device=device,
                                   callbacks=cb, dist=dist, start=start, counters=counters,
                                   after_batch=saves.after_batch, stop=stop)
            except StopNow as e:  # during validation: save the epoch's training; validation runs on resume
                saves.stopped_in_validation(e.signum, counters)
            improved = result.best is None or record["valid"]["micro_f1"] > result.best["micro_f1"]  # every rank
            record["best"] = improved
            result.history.append(record)
            result.train_time_s += record["train"]["time_s"]
            if improved:
                result.best = {"epoch": epoch + 1, "micro_f1": record["valid"]["micro_f1"]}
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            saves.epoch_end(improved)
            barrier(dist)  # rank 0's files are complete before anyone moves on
            cb.on_epoch_end(record)
        saves.stop_if_requested()  # a signal during the last validation (torchrun) or its checkpoint
    if best_state is not None:  # leave the best epoch's weights in the model
        model.load_state_dict(best_state)
    cb.on_fit_end(result)
    return result


@contextmanager
def _as_interrupted(saves: "_Checkpoints"):
    """A ``KeyboardInterrupt`` not raised by the stop path (a callback's) becomes :class:`Interrupted`, at once."""
    try:
        yield
    except KeyboardInterrupt as e:
        if isinstance(e, Interrupted):
            raise
        raise Interrupted(signal.SIGINT, saves.last) from e


class _Checkpoints:
    """The checkpoints of a :func:`fit`: at epoch ends, at intervals, on a stop; :attr:`last` is the last point saved.

    Rank 0 writes ``checkpoint.pt`` / ``best.pt``; every rank's RNG states are
    gathered first (a collective: every rank calls each method at the same batch,
    the decisions being agreed by :func:`xmtc.train.distributed.agree`).
    """

    def __init__(self, out: Path | None, model, cfg: RunConfig, dataset, optimizer, scheduler, result: FitResult, *,
                 dist: DistContext, device, callbacks: Callbacks, stop: StopSignals):
        self.out, self.model, self.cfg, self.dataset = out, model, cfg, dataset
        self.optimizer, self.scheduler, self.result = optimizer, scheduler, result
        self.dist, self.device, self.callbacks, self.stop = dist, device, callbacks, stop
        self.timer = IntervalTimer(cfg.train.checkpoint_interval)
        self.last: SavePoint | None = None
        self.epoch, self.start, self.n, self.full, self.rng = 0, 0, 0, None, None

    @property
    def path(self) -> Path | None:
        return None if self.out is None else self.out / "checkpoint.pt"

    def start_epoch(self, epoch: int, start: int, n_batches: int) -> None:
        """Epoch ``epoch`` (1-based) begins after ``start`` global batches (of ``n_batches``, if known)."""
        self.epoch, self.start, self.n, self.full, self.rng = epoch, start, n_batches, None, None

    def _global_end(self) -> int:
        return self.start if self.full is None else global_position(self.full, self.n)

    def after_batch(self, step: int, n: int, counters: EpochCounters, full_loader) -> None:
        """After optimiser step ``step`` of ``n``: an interval checkpoint if due; on a stop request, save and stop."""
        self.n, self.full = n, full_loader
        signum, due = agree([self.stop.requested or 0, self.timer.due() and step < n], self.dist, self.device)
        if step == n and not self.dist.active:  # the RNG states before validation, for a stop there
            self.rng = checkpoint.rng_state()
        if signum or due:
            self.mid_epoch(step, global_position(full_loader, step), counters)
            if not signum and self.last is not None:
                self.callbacks.on_checkpoint(self.last)
        if signum:
            barrier(self.dist)  # rank 0's file is complete before any rank exits
            raise Interrupted(signum, self.last)

    def stop_if_requested(self) -> None:
        """Raise :class:`Interrupted` if any rank got a signal (where everything is saved already)."""
        (signum,) = agree([self.stop.requested or 0], self.dist, self.device)
        if signum:
            raise Interrupted(signum, self.last)

    def stopped_in_validation(self, signum: int, counters: EpochCounters) -> None:
        """Save the epoch's training (all its batches, before validation) and raise :class:`Interrupted`."""
        self.mid_epoch(self.n, self._global_end(), counters, rng=self.rng)
        raise Interrupted(signum, self.last) from None

    def mid_epoch(self, step: int, global_batch: int, counters: EpochCounters, rng: dict | None = None) -> None:
        """``checkpoint.pt`` after batch ``step`` of the epoch; ``rng``: this rank's states to store (default: now)."""
        self.timer.reset()
        if self.out is None:
            return
        ranks = gather(rng if rng is not None else checkpoint.rng_state(), self.dist)
        if self.dist.is_main:
            position = {"epoch": self.epoch, "batch": step, "n_batches": self.n, "global_batch": global_batch}
            checkpoint.save(run_state(self.model, self.cfg, self.dataset, epoch=self.epoch - 1,
                                      history=self.result.history, best=self.result.best, optimizer=self.optimizer,
                                      scheduler=self.scheduler, position=position, counters=counters.to_state(),
                                      rng_ranks=ranks), self.path)
        self.last = SavePoint(self.path, self.epoch, step, self.n, validated=False)

    def epoch_end(self, improved: bool) -> None:
        """:func:`save_epoch` at the end of the epoch."""
        self.timer.reset()
        if self.out is None:
            return
        ranks = gather(checkpoint.rng_state(), self.dist)
        if self.dist.is_main:
            position = {"epoch": self.epoch, "batch": self.n, "n_batches": self.n, "global_batch": self._global_end()}
            save_epoch(self.out, self.model, self.cfg, self.dataset, self.result, improved=improved,
                       optimizer=self.optimizer, scheduler=self.scheduler, rng_ranks=ranks, position=position)
        self.last = SavePoint(self.path, self.epoch, self.n, self.n, validated=True)


#: Fields of ``checkpoint.pt`` that ``best.pt`` leaves out.
_RESUME_ONLY = ("optimizer", "scheduler", "rng", "rng_ranks", "world_size", "position", "counters")


def restore(out_dir: Path | None, model: nn.Module, optimizer, scheduler, cfg: RunConfig, *,
            dist: DistContext | None = None) -> tuple[FitResult, dict | None, dict]:
    """Continue a run: load ``out_dir/checkpoint.pt`` into the model, optimiser, LR schedule and RNG states.

    Each rank takes its own RNG states when the checkpoint was written by as
    many ranks, else rank 0's.

    Returns
    -------
    result : FitResult
        History, best epoch, training time, epochs completed.
    best_state : dict or None
        The best epoch's weights from ``best.pt`` (None when no epoch has ended).
        If ``best.pt`` is missing or stale and ``checkpoint.pt`` was written at the
        end of the best epoch (a stop between the two files), its weights, which
        are then written to ``best.pt`` (rank 0).
    position : dict
        ``{"point": SavePoint, "global_batch": int, "counters": dict or None}``:
        where the checkpoint stands. Not ``point.validated``: in the middle of
        epoch ``point.epoch``, after ``point.batch`` batches (``global_batch``
        global ones) with the epoch's running sums ``counters``. A checkpoint
        without a position (older files) stands at the end of its epoch.
    """
    if out_dir is None:
        raise ConfigError("resume needs a run directory (--out)")
    dist = dist or distributed_context()
    path = out_dir / "checkpoint.pt"
    state = checkpoint.load(path, model_type=cfg.model)
    check_resumable(state, cfg)
    point = save_point(state, path)
    if not point.validated and point.epoch != int(state["epoch"]) + 1:
        raise checkpoint.CheckpointError(f"{path}: position in epoch {point.epoch} after {state['epoch']} "
                                         f"completed epochs; the file is inconsistent")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    ranks = state.get("rng_ranks")
    checkpoint.set_rng_state(ranks[dist.rank] if ranks and len(ranks) == dist.world_size else state["rng"])
    history = list(state["history"])
    result = FitResult(history=history, best=state["best"], resumed_from=int(state["epoch"]),
                       train_time_s=sum(r["train"]["time_s"] for r in history))
    best_state = None
    if result.best is not None:
        best_epoch = result.best["epoch"]
        if (out_dir / "best.pt").is_file():
            saved = checkpoint.load(out_dir / "best.pt", model_type=cfg.model)
            if saved["epoch"] == best_epoch:
                best_state = saved["model"]
        if best_state is None and best_epoch == state["epoch"] and point.validated:
            # stopped after checkpoint.pt, before best.pt (save_epoch's order): the checkpoint's
            # weights are the best epoch's; best.pt gets them now, before a mid-epoch checkpoint
            # replaces checkpoint.pt
            best_state = state["model"]
            if dist.is_main:
                checkpoint.save({k: v for k, v in state.items() if k not in _RESUME_ONLY}, out_dir / "best.pt")
        if best_state is None:
            raise checkpoint.CheckpointError(f"{out_dir}: best.pt does not hold the best epoch ({best_epoch}) "
                                             f"of checkpoint.pt; the best weights are lost")
    position = {"point": point, "global_batch": 0 if point.validated else int(state["position"]["global_batch"]),
                "counters": None if point.validated else state.get("counters")}
    return result, best_state, position


def run_epoch(loss_module: nn.Module, dataset, optimizer, scheduler, train_cfg: TrainConfig, *, epoch: int,
              device: torch.device, callbacks: Callbacks, dist: DistContext, start: int = 0,
              counters: EpochCounters | None = None, after_batch=None, stop: StopSignals | None = None) -> dict:
    """Epoch ``epoch`` (0-based): a training pass, validation, the LR schedule's step.

    ``start``: global batches of the epoch already trained (a mid-epoch
    checkpoint), left out of the pass, which continues ``counters``.
    ``after_batch(step, n_batches, counters, full_loader)`` runs after every
    optimiser step. With ``stop``, a signal during validation raises
    ``xmtc.train.stopping.StopNow`` (one process only), before the LR schedule's step.

    Returns the epoch's record: ``{"epoch" (1-based), "lr", "train"`` (loss
    terms, :func:`train_one_epoch`), ``"valid"`` (metrics), ``"valid_time_s"}``.
    """
    t = train_cfg
    model = unwrap(loss_module)
    full = make_loader(dataset, "train", t, label_order=model.label_order, train=True, epoch=epoch, dist=dist)
    loader = (make_loader(dataset, "train", t, label_order=model.label_order, train=True, epoch=epoch, dist=dist,
                          start=start) if start else full)
    n_batches = len(full)
    done = n_batches - len(loader)  # this rank's batches among the first ``start`` global ones
    callbacks.on_epoch_start(epoch + 1, t.epochs, n_batches)
    if done:
        callbacks.on_epoch_resume(epoch + 1, done, n_batches)
    lr = optimizer.param_groups[0]["lr"]
    after = None if after_batch is None else (lambda step, c: after_batch(step, n_batches, c, full))
    terms = train_one_epoch(loss_module, loader, optimizer, device=device, grad_clip=t.grad_clip, amp=t.amp,
                            epoch=epoch + 1, callbacks=callbacks, log_every=t.log_every, world_size=dist.world_size,
                            max_targets=getattr(model.config, "n_steps", None), start=done, n_batches=n_batches,
                            counters=counters, after_batch=after)
    t0 = time.perf_counter()
    with stop.immediately(not dist.active) if stop is not None else nullcontext():
        val, _ = evaluate(model, dataset, "valid", t, device=device, label_order=model.label_order,
                          callbacks=callbacks, dist=dist)
    with warnings.catch_warnings():
        if not len(loader):  # resumed after the epoch's last batch: no optimiser step in this process yet
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
        scheduler.step()  # after validation (which does not use it): a stop there saves the epoch before the step
    return {"epoch": epoch + 1, "lr": lr, "train": terms, "valid": val, "valid_time_s": time.perf_counter() - t0}


def save_epoch(out_dir: Path, model: nn.Module, cfg: RunConfig, dataset, result: FitResult, *, improved: bool,
               optimizer, scheduler, position: dict | None = None, rng_ranks: list | None = None) -> None:
    """After an epoch: ``checkpoint.pt`` (to resume), then ``best.pt`` (if it improved) and ``metrics.json``.

    In this order a run stopped between the two files resumes with the right best
    weights: those of ``checkpoint.pt`` itself (:func:`restore`). ``position``
    and ``rng_ranks``: see ``xmtc.train.run_state.run_state``.
    """
    epoch = result.history[-1]["epoch"]
    checkpoint.save(run_state(model, cfg, dataset, epoch=epoch, history=result.history, best=result.best,
                              optimizer=optimizer, scheduler=scheduler, position=position, rng_ranks=rng_ranks),
                    out_dir / "checkpoint.pt")
    if improved:
        checkpoint.save(run_state(model, cfg, dataset, epoch=epoch, history=result.history, best=result.best),
                        out_dir / "best.pt")
    write_metrics(out_dir, result.history, result.best)


__all__ = ["Callbacks", "EpochCounters", "evaluate", "fit", "predict", "restore", "run_epoch", "save_epoch",
           "train_one_epoch"]
