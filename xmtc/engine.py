"""Training engine: the training loop, validation and test evaluation — for any model.

The paper's recipe (Section 3.4): Adam, cosine annealing of the learning rate
over the epochs, gradient norm clipped at 8, weights from U(-0.1, 0.1),
dropout 0.2, validation after every epoch keeping the best checkpoint by
validation micro-F1, which is then evaluated on the test split.

Pieces, used top to bottom by ``examples/train_otseq2set.py`` (each imported
from the module that defines it)::

    cfg     = xmtc.config.compose(...)                  # resolved RunConfig
    device  = select_device(cfg.train.device); seed_everything(...)   # xmtc.runtime
    data    = load_data(cfg.data, seed=..., progress=...)              # xmtc.loading
    words   = load_embeddings(cfg, data)                # GloVe, optional  (xmtc.loading)
    model   = build_model(cfg, data, words)                            # xmtc.registry
    result  = fit(model, data, cfg, device=device, callbacks=...)      # here
    test    = evaluate(model, data, "test", cfg.train, device=device)  # here
    write_metrics(cfg.out, ...); write_predictions(...)                # xmtc.rundir

:func:`fit` is three named steps around the epoch loop: :func:`restore`
(``--resume``), :func:`run_epoch` (a training pass, the LR schedule's step,
validation) and :func:`save_epoch` (``best.pt``, ``checkpoint.pt``,
``metrics.json``). Every model is trained through ``xmtc.distributed.LossModule``
(``forward(batch) = model.compute_loss(batch)``), with or without
``DistributedDataParallel`` around it, so :func:`train_one_epoch` always calls
it the same way.

The library never prints: progress goes to a :class:`Callbacks` object
(``xmtc.progress.RichProgress`` draws it). Loss terms come from each model's
``compute_loss(batch)`` (the set loss of Eq. 17 for OTSeq2Set, token
cross-entropy for the baselines).

Reproducibility: every random number comes from the seeded global generators
(dropout, initialisation) or from generators seeded by ``(seed, epoch)``
(the order of training batches). A checkpoint stores the global generators'
states after each epoch, so ``--resume`` replays exactly the epochs an
uninterrupted run would have run.

Distributed training (torchrun, ``xmtc.distributed``): when
``torch.distributed`` is initialised, :func:`fit` wraps the model in
``DistributedDataParallel``, each rank takes its share of every global batch
(``ShardedBatchSampler``), evaluation gathers every rank's predictions (each
document once), and only rank 0 writes files and reports progress.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import checkpoint
from .config import ConfigError, RunConfig, TrainConfig
from .distributed import DistContext, LossModule, barrier, distributed_context, gather, init_distributed, unwrap
from .loading import load_data, load_embeddings, make_loader, truncate_targets
from .outcomes import FitResult, RunResult, SplitPrediction
from .registry import build_model
from .run_state import check_resumable, run_state
from .rundir import run_info, summary, write_config, write_metrics, write_predictions
from .runtime import autocast, seed_everything, select_device, set_threads

# --------------------------------------------------------------------------- callbacks


class Callbacks:
    """Hooks the engine calls; the default does nothing (library code never prints).

    Subclass and override what you need (``xmtc.progress.RichProgress``).
    """

    def on_data(self, stage: str, done: int, total: int | None) -> None:
        """Data preparation progress (``xmtc.datasets.load``'s ``progress``)."""

    def on_fit_start(self, start_epoch: int, epochs: int, n_batches: int) -> None:
        """Training starts at ``start_epoch`` (0-based; > 0 when resumed)."""

    def on_epoch_start(self, epoch: int, epochs: int, n_batches: int) -> None:
        """Epoch ``epoch`` (1-based) of ``epochs`` starts."""

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


# --------------------------------------------------------------------------- training

def train_one_epoch(loss_module: nn.Module, loader, optimizer: torch.optim.Optimizer, *, device: torch.device,
                    grad_clip: float = 8.0, amp: bool = True, epoch: int = 1,
                    callbacks: Callbacks | None = None, log_every: int = 1, world_size: int = 1,
                    max_targets: int | None = None) -> dict:
    """One pass over ``loader``: forward, loss, backward, clip, Adam step.

    Parameters
    ----------
    loss_module : nn.Module
        ``forward(batch)`` returns the dict of loss terms:
        ``xmtc.distributed.LossModule(model)``, or ``DistributedDataParallel``
        around it.
    loader : iterable of ``Batch``
    optimizer : torch optimizer
    grad_clip : float
        Gradient norm clip (paper: 8).
    amp : bool
        bf16 autocast on CUDA.
    world_size : int
        Processes training together; documents and docs/s are reported for all of them.
    max_targets : int, optional
        Keep at most this many gold labels per document (the set model's ``N``).

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
    sums: dict[str, float] = {}
    n_docs, gnorm_sum, n_steps = 0, 0.0, 0
    n_batches = len(loader)
    t0 = time.perf_counter()
    for step, batch in enumerate(loader, start=1):
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
        n_docs += B * world_size
        n_steps += 1
        gnorm_sum += float(gnorm)
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach()) * B * world_size
        if step % log_every == 0 or step == n_batches:
            elapsed = time.perf_counter() - t0
            cb.on_batch(epoch, step, n_batches, {k: s / n_docs for k, s in sums.items()},
                        n_docs / max(elapsed, 1e-9))
    elapsed = time.perf_counter() - t0
    out = {k: s / max(n_docs, 1) for k, s in sums.items()}
    out.update(grad_norm=gnorm_sum / max(n_steps, 1), docs=n_docs, time_s=elapsed,
               docs_per_s=n_docs / max(elapsed, 1e-9))
    return out


@torch.no_grad()
def predict(model: nn.Module, loader, *, device: torch.device, n_docs: int, amp: bool = True, top_k: int = 5,
            split: str = "test", callbacks: Callbacks | None = None,
            dist: DistContext | None = None) -> SplitPrediction:
    """Predict label sets and top-``k`` scores for every document a loader yields.

    Under torchrun every rank predicts its share and the results are gathered
    (each document exactly once, by its position in the split).
    """
    cb = callbacks or Callbacks()
    model = unwrap(model)
    was_training = model.training
    model.eval()
    n_labels = model.config.n_labels
    k = min(top_k, n_labels)
    idx_parts, label_parts, id_parts, score_parts = [], [], [], []
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
        cb.on_eval_batch(split, step, len(loader))
    model.train(was_training)
    index = np.concatenate(idx_parts) if idx_parts else np.zeros(0, np.int64)
    ids = np.concatenate(id_parts) if id_parts else np.zeros((0, k), np.int64)
    scores = np.concatenate(score_parts) if score_parts else np.zeros((0, k), np.float32)
    dist = dist or DistContext()
    if dist.active:
        gathered = gather((index, label_parts, ids, scores), dist)
        index = np.concatenate([g[0] for g in gathered])
        label_parts = [s for g in gathered for s in g[1]]
        ids = np.concatenate([g[2] for g in gathered])
        scores = np.concatenate([g[3] for g in gathered])
    labels: list[set[int] | None] = [None] * n_docs
    out_ids = np.full((n_docs, k), -1, dtype=np.int64)
    out_scores = np.zeros((n_docs, k), dtype=np.float32)
    for j, i in enumerate(index.tolist()):
        labels[i] = set(label_parts[j])
        out_ids[i], out_scores[i] = ids[j], scores[j]
    missing = [i for i, s in enumerate(labels) if s is None]
    if missing:
        raise RuntimeError(f"{split}: no prediction for {len(missing)} document(s), e.g. position {missing[0]}")
    return SplitPrediction(labels, out_ids, out_scores)


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
    every epoch (atomically; rank 0 only). On return the model holds the best
    epoch's weights (kept in memory on every rank, so nodes need no shared disk
    except to resume).

    Parameters
    ----------
    model : nn.Module, on ``device``.
    dataset : XMTCDataset
    cfg : RunConfig
    out_dir : run directory or None (nothing written).
    resume : continue from ``out_dir/checkpoint.pt``.
    dist : rank / world size (default: from ``torch.distributed``).
    """
    cb = callbacks or Callbacks()
    dist = dist or distributed_context()
    t = cfg.train
    out = Path(out_dir) if out_dir is not None else None
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=t.epochs)
    result, best_state = FitResult(), None  # best_state: the best epoch's weights, in memory on every rank
    if resume:
        result, best_state = restore(out, model, optimizer, scheduler, cfg)
    loss_module: nn.Module = LossModule(model)  # forward(batch) = model.compute_loss(batch)
    if dist.active:
        loss_module = nn.parallel.DistributedDataParallel(
            loss_module, device_ids=[device.index] if device.type == "cuda" else None)
    n_batches = len(make_loader(dataset, "train", t, label_order=unwrap(model).label_order, train=True, dist=dist))
    cb.on_fit_start(result.resumed_from, t.epochs, n_batches)
    for epoch in range(result.resumed_from, t.epochs):
        record = run_epoch(loss_module, dataset, optimizer, scheduler, t, epoch=epoch, device=device, callbacks=cb,
                           dist=dist)
        improved = result.best is None or record["valid"]["micro_f1"] > result.best["micro_f1"]  # same on every rank
        record["best"] = improved
        result.history.append(record)
        result.train_time_s += record["train"]["time_s"]
        if improved:
            result.best = {"epoch": epoch + 1, "micro_f1": record["valid"]["micro_f1"]}
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if out is not None and dist.is_main:
            save_epoch(out, model, cfg, dataset, result, improved=improved, optimizer=optimizer, scheduler=scheduler)
        barrier(dist)  # rank 0's files are complete before anyone moves on
        cb.on_epoch_end(record)
    if best_state is not None:  # leave the best epoch's weights in the model
        model.load_state_dict(best_state)
    cb.on_fit_end(result)
    return result


def restore(out_dir: Path | None, model: nn.Module, optimizer, scheduler,
            cfg: RunConfig) -> tuple[FitResult, dict | None]:
    """Continue a run: load ``out_dir/checkpoint.pt`` into the model, optimiser, LR schedule and RNG states.

    Returns the :class:`FitResult` so far (history, best epoch, training time,
    epochs completed) and the best epoch's weights from ``best.pt`` (None when
    there is no such file).
    """
    if out_dir is None:
        raise ConfigError("resume needs a run directory (--out)")
    state = checkpoint.load(out_dir / "checkpoint.pt", model_type=cfg.model)
    check_resumable(state, cfg)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    checkpoint.set_rng_state(state["rng"])
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
        if best_state is None and best_epoch == state["epoch"]:
            # stopped after checkpoint.pt, before best.pt (save_epoch's order): the checkpoint's
            # weights are the best epoch's
            best_state = state["model"]
        if best_state is None:
            raise checkpoint.CheckpointError(f"{out_dir}: best.pt does not hold the best epoch ({best_epoch}) "
                                             f"of checkpoint.pt; the best weights are lost")
    return result, best_state


def run_epoch(loss_module: nn.Module, dataset, optimizer, scheduler, train_cfg: TrainConfig, *, epoch: int,
              device: torch.device, callbacks: Callbacks, dist: DistContext) -> dict:
    """Epoch ``epoch`` (0-based): a training pass, the LR schedule's step, validation.

    Returns the epoch's record: ``{"epoch" (1-based), "lr", "train"`` (loss
    terms, :func:`train_one_epoch`), ``"valid"`` (metrics), ``"valid_time_s"}``.
    """
    t = train_cfg
    model = unwrap(loss_module)
    loader = make_loader(dataset, "train", t, label_order=model.label_order, train=True, epoch=epoch, dist=dist)
    callbacks.on_epoch_start(epoch + 1, t.epochs, len(loader))
    lr = optimizer.param_groups[0]["lr"]
    terms = train_one_epoch(loss_module, loader, optimizer, device=device, grad_clip=t.grad_clip, amp=t.amp,
                            epoch=epoch + 1, callbacks=callbacks, log_every=t.log_every, world_size=dist.world_size,
                            max_targets=getattr(model.config, "n_steps", None))
    scheduler.step()
    t0 = time.perf_counter()
    val, _ = evaluate(model, dataset, "valid", t, device=device, label_order=model.label_order, callbacks=callbacks,
                      dist=dist)
    return {"epoch": epoch + 1, "lr": lr, "train": terms, "valid": val, "valid_time_s": time.perf_counter() - t0}


def save_epoch(out_dir: Path, model: nn.Module, cfg: RunConfig, dataset, result: FitResult, *, improved: bool,
               optimizer, scheduler) -> None:
    """After an epoch: ``checkpoint.pt`` (to resume), then ``best.pt`` (if it improved) and ``metrics.json``.

    In this order a run stopped between the two files resumes with the right best
    weights: those of ``checkpoint.pt`` itself (:func:`restore`).
    """
    epoch = result.history[-1]["epoch"]
    checkpoint.save(run_state(model, cfg, dataset, epoch=epoch, history=result.history, best=result.best,
                              optimizer=optimizer, scheduler=scheduler), out_dir / "checkpoint.pt")
    if improved:
        checkpoint.save(run_state(model, cfg, dataset, epoch=epoch, history=result.history, best=result.best),
                        out_dir / "best.pt")
    write_metrics(out_dir, result.history, result.best)


# --------------------------------------------------------------------------- one whole run
def train_run(cfg: RunConfig, *, out_dir=None, resume: bool = False, callbacks: Callbacks | None = None) -> RunResult:
    """config -> data -> model -> loop -> test evaluation -> run directory, without printing.

    The same steps as ``examples/train_otseq2set.py``, as one call (used by
    ``examples/benchmark.py``).
    """
    cb = callbacks or Callbacks()
    dist = init_distributed()
    set_threads(cfg.train.threads)
    device = select_device(cfg.train.device)
    seed_everything(cfg.train.seed, cfg.train.deterministic)
    data = load_data(cfg.data, seed=cfg.train.seed, progress=cb.on_data)
    embeddings = load_embeddings(cfg, data)
    model = build_model(cfg, data, embeddings).to(device)
    out = Path(out_dir) if out_dir is not None else None
    stats = {k: v for k, v in data.stats().items() if k != "skipped"}
    # resuming: config.json is rewritten only once fit has accepted the settings (a refused
    # resume leaves the run's record as it was)
    if out is not None and dist.is_main and not resume:
        write_config(out, cfg, run_info(model, data, device))
    result = fit(model, data, cfg, device=device, out_dir=out, resume=resume, callbacks=cb, dist=dist)
    if out is not None and dist.is_main and resume:
        write_config(out, cfg, run_info(model, data, device))
    test, pred = evaluate(model, data, "test", cfg.train, device=device, label_order=model.label_order,
                          callbacks=cb, dist=dist)
    if out is not None and dist.is_main:
        write_metrics(out, result.history, result.best, test, summary(model, result))
        write_predictions(out, data.test, pred, data.label_names)
    return RunResult(cfg, test, result, unwrap(model).num_parameters(), stats, out)


__all__ = ["Callbacks", "evaluate", "fit", "predict", "restore", "run_epoch", "save_epoch", "train_one_epoch",
           "train_run"]
