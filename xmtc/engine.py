"""Training engine: build, train, evaluate, checkpoint, predict — for any model.

The paper's recipe (Section 3.4): Adam, cosine annealing of the learning rate
over the epochs, gradient norm clipped at 8, weights from U(-0.1, 0.1),
dropout 0.2, validation after every epoch keeping the best checkpoint by
validation micro-F1, which is then evaluated on the test split.

Pieces, used top to bottom by ``examples/train_*.py``::

    cfg     = xmtc.config.compose(...)                  # resolved RunConfig
    device  = select_device(cfg.train.device); seed_everything(...)
    data    = load_data(cfg.data, seed=..., progress=...)
    words   = load_embeddings(cfg, data)                # GloVe, optional
    model   = build_model(cfg, data, words)
    result  = fit(model, data, cfg, device=device, callbacks=...)
    test    = evaluate(model, data, "test", cfg.train, device=device)
    save_run(cfg.out, ...)

The library never prints: progress goes to a :class:`Callbacks` object
(``xmtc.progress.RichProgress`` draws it). Loss terms come from each model's
``compute_loss(batch)`` (the set loss of Eq. 17 for OTSeq2Set, token
cross-entropy for the baselines).

Reproducibility: every random number comes from the seeded global generators
(dropout, initialisation) or from generators seeded by ``(seed, epoch)``
(the order of training batches). A checkpoint stores the global generators'
states after each epoch, so ``--resume`` replays exactly the epochs an
uninterrupted run would have run.

Distributed training (torchrun): when ``torch.distributed`` is initialised,
:func:`fit` wraps the model in ``DistributedDataParallel``, each rank takes its
share of every global batch (:class:`ShardedBatchSampler`), evaluation gathers
every rank's predictions (each document once), and only rank 0 writes files
and reports progress (see :func:`distributed_context`).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import checkpoint
from .config import ConfigError, RunConfig, TrainConfig

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


# --------------------------------------------------------------------------- models
def model_registry() -> dict:
    """``name -> (model class, config class)`` for the four models."""
    from baselines import SGM, MLC2Seq, Seq2Seq, Seq2SeqConfig, SGMConfig
    from models import OTSeq2Set, OTSeq2SetConfig

    return {
        "otseq2set": (OTSeq2Set, OTSeq2SetConfig),
        "seq2seq": (Seq2Seq, Seq2SeqConfig),
        "mlc2seq": (MLC2Seq, Seq2SeqConfig),
        "sgm": (SGM, SGMConfig),
    }


def model_type_of(model: nn.Module) -> str:
    """Registry name of a model instance (exact class match)."""
    model = unwrap(model)
    for name, (cls, _) in model_registry().items():
        if type(model) is cls:
            return name
    raise ValueError(f"unknown model class {type(model).__name__}")


def unwrap(model: nn.Module) -> nn.Module:
    """The user model inside a DDP / loss wrapper."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    return model


# --------------------------------------------------------------------------- device, seeds
def select_device(spec: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when present else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:k"``, ``"mps"``.

    Under torchrun, ``"auto"`` and ``"cuda"`` mean this process's GPU (``LOCAL_RANK``).
    """
    if spec in ("auto", "cuda") and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:<index>") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {spec!r} requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {spec!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' requested but it is not available")
    return device


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (all devices); optionally force deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when ``enabled``; a no-op context elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# --------------------------------------------------------------------------- distributed
@dataclass
class DistContext:
    """Rank and world size; ``world_size == 1`` outside torchrun."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def init_distributed() -> DistContext:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1).

    NCCL on CUDA, gloo on CPU; a CUDA process uses the GPU ``LOCAL_RANK``.
    Outside torchrun (or when already initialised) this only reports the context.
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    return distributed_context()


def distributed_context() -> DistContext:
    """Current rank / world size from ``torch.distributed`` (initialised by the caller)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size())
    return DistContext()


class ShardedBatchSampler(torch.utils.data.Sampler):
    """Rank ``rank``'s share of each global batch: positions ``rank, rank + world, ...``.

    All ranks iterate the same global batches (same seed and epoch), so the
    global batch of a K-process run is the batch of a 1-process run.
    """

    def __init__(self, batch_sampler, rank: int = 0, world_size: int = 1):
        self.batch_sampler, self.rank, self.world_size = batch_sampler, rank, world_size

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(epoch)

    def __iter__(self):
        for batch in self.batch_sampler:
            part = list(batch)[self.rank :: self.world_size]
            if part:
                yield part

    def __len__(self) -> int:
        return len(self.batch_sampler)


class _SeededBatches(torch.utils.data.Sampler):
    """Shuffled (seed, epoch) or sequential batches of positions, no length bucketing."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int = 0):
        self.n, self.batch_size, self.shuffle, self.seed, self.epoch = n, batch_size, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(self.n) if self.shuffle
                 else np.arange(self.n))
        for s in range(0, self.n, self.batch_size):
            yield order[s : s + self.batch_size].tolist()

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)


class _LengthSortedBatches(torch.utils.data.Sampler):
    """Evaluation batches of documents sorted by length (fast; order restored by ``Batch.index``)."""

    def __init__(self, lengths: np.ndarray, batch_size: int):
        self.order = np.argsort(-np.asarray(lengths), kind="stable")
        self.batch_size = batch_size

    def __iter__(self):
        for s in range(0, len(self.order), self.batch_size):
            yield self.order[s : s + self.batch_size].tolist()

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)


def make_loader(dataset, split: str, train_cfg: TrainConfig, *, label_order: str = "file",
                train: bool = False, epoch: int = 0, dist: DistContext | None = None):
    """A ``DataLoader`` of ``xmtc.batching.Batch`` over ``dataset.<split>``.

    Training loaders shuffle by ``(seed, epoch)`` (length-bucketed when
    ``train_cfg.bucket``); evaluation loaders batch documents of similar length
    in a fixed order. Under torchrun each rank gets its share of every batch.
    """
    from .batching import BucketBatchSampler, SplitDataset, collate

    sp = getattr(dataset, split)
    ds = SplitDataset(sp, dataset.n_labels, dataset.label_order(label_order), dataset.max_src_len)
    lengths = np.minimum(sp.lengths, dataset.max_src_len)
    seed = train_cfg.seed
    if train:
        if train_cfg.bucket:
            sampler = BucketBatchSampler(lengths, train_cfg.batch_size, shuffle=True, seed=seed)
        else:
            sampler = _SeededBatches(len(sp), train_cfg.batch_size, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
    else:
        sampler = _LengthSortedBatches(lengths, train_cfg.eval_batch_size)
    dist = dist or DistContext()
    if dist.active:
        sampler = ShardedBatchSampler(sampler, dist.rank, dist.world_size)
    return torch.utils.data.DataLoader(
        ds, batch_sampler=sampler, collate_fn=collate, num_workers=train_cfg.num_workers,
        generator=torch.Generator().manual_seed(seed),  # never touch the global RNG
    )


# --------------------------------------------------------------------------- data
def load_data(data_cfg, *, seed: int = 0, progress=None):
    """Load (prepare or read from cache) the dataset and apply the document limits.

    ``max_*_docs`` keep the first documents of a split (train after the
    validation hold-out); vocabulary and label numbering stay those of the
    whole training split.
    """
    from . import datasets

    ds = datasets.load(data_cfg.name, data_cfg.data_dir, progress=progress,
                       valid_fraction=data_cfg.valid_fraction, seed=seed,
                       max_src_len=data_cfg.max_src_len, **data_cfg.options)
    for split, limit in (("train", data_cfg.max_train_docs), ("valid", data_cfg.max_valid_docs),
                         ("test", data_cfg.max_test_docs)):
        sp = getattr(ds, split)
        if limit is not None and limit < len(sp):
            setattr(ds, split, sp.subset(np.arange(limit), split))
    if len(ds.valid) == 0:
        ds.valid = ds.test  # no hold-out requested: select the best epoch on test (reported)
        ds.valid_source = "test (valid_fraction=0)"
    return ds


def truncate_targets(batch, n: int):
    """Keep at most ``n`` gold labels per document (the first ones in the batch's order).

    The set loss matches ``n <= N`` labels to ``N`` steps; a training document
    with more labels than the preset's ``N`` keeps its first ``N``
    (:func:`targets_truncated` counts them; evaluation always uses every gold label).
    """
    if batch.labels.shape[1] <= n:
        return batch
    return type(batch)(batch.src, batch.src_mask, batch.labels[:, :n], batch.label_mask[:, :n], batch.index)


def targets_truncated(dataset, n: int) -> int:
    """Training documents with more than ``n`` labels."""
    return int((dataset.train.n_labels_per_doc > n).sum())


def max_labels(dataset) -> int:
    """Largest label set of a training document (the paper's ``N``)."""
    counts = dataset.train.n_labels_per_doc  # training documents carry training labels only
    return max(1, int(counts.max())) if len(counts) else 1


@dataclass
class Embeddings:
    """Word and label embedding matrices from a GloVe file (numpy, float32)."""

    words: np.ndarray  # (vocab, E)
    labels: np.ndarray | None  # (n_labels, E') or None
    path: str
    word_coverage: str
    label_coverage: str


def load_embeddings(cfg: RunConfig, dataset) -> Embeddings | None:
    """Read ``cfg.data.embeddings`` (GloVe text) for the dataset's words and label names.

    Returns ``None`` when no file is configured. Sets ``cfg.net.embed_dim``
    (and ``label_embed_dim`` when label vectors come from GloVe) to the file's
    dimension so that ``config.json`` shows what was run.
    """
    path = cfg.data.embeddings
    if not path:
        return None
    from .embeddings import dataset_label_embeddings, glove_words_for, input_embeddings, read_glove

    if not Path(path).is_file():
        raise FileNotFoundError(f"embeddings file {path} not found")
    glove = read_glove(path, glove_words_for(dataset))
    if len(glove) == 0:
        from .datasets import DataError

        raise DataError(f"{path}: no vector for any word of {dataset.name} (is it a GloVe text file?)")
    words, wcov = input_embeddings(dataset.vocab, glove, seed=cfg.train.seed, scale=cfg.train.init_range)
    cfg.net.embed_dim = int(words.shape[1])
    labels, lcov = None, "-"
    if cfg.net.label_embeddings_from_names:
        labels, cov = dataset_label_embeddings(dataset, glove, seed=cfg.train.seed)
        labels = labels[: dataset.n_labels]
        cfg.net.label_embed_dim = int(labels.shape[1])
        lcov = str(cov)
    return Embeddings(words, labels, str(path), str(wcov), lcov)


def model_config(cfg: RunConfig, dataset):
    """The model's own config dataclass, from the run config and the dataset."""
    _, config_cls = model_registry()[cfg.model]
    n = cfg.net
    n_steps = n.n_steps or max_labels(dataset)
    common = dict(
        vocab_size=len(dataset.vocab), n_labels=dataset.n_labels, embed_dim=n.embed_dim,
        label_embed_dim=n.label_embed_dim or n.embed_dim, hidden_size=n.hidden_size,
        encoder_layers=n.encoder_layers, dropout=n.dropout, last_stride=n.last_stride,
        bottleneck=n.bottleneck, init_range=cfg.train.init_range,
    )
    if n.use_lightconv is not None:
        common["use_lightconv"] = n.use_lightconv
    if cfg.model == "otseq2set":
        return config_cls(**common, n_steps=n_steps, scheme=n.scheme, empty_weight=n.empty_weight,
                          ot_weight=n.ot_weight, ipot_iter=n.ipot_iter)
    return config_cls(**common, max_steps=n_steps + 1)  # the labels and EOS


def build_model(cfg: RunConfig, dataset, embeddings: Embeddings | None = None) -> nn.Module:
    """Instantiate ``cfg.model`` for ``dataset`` (weights U(-r, r), GloVe rows copied in)."""
    model_cls, _ = model_registry()[cfg.model]
    mcfg = model_config(cfg, dataset)
    words = torch.from_numpy(embeddings.words) if embeddings is not None else None
    labels = (torch.from_numpy(embeddings.labels)
              if embeddings is not None and embeddings.labels is not None else None)
    return model_cls(mcfg, embeddings=words, label_embeddings=labels)


def model_from_checkpoint(state: dict) -> nn.Module:
    """Rebuild a model from a checkpoint dict (``checkpoint.load``)."""
    registry = model_registry()
    name = state.get("model_type")
    if name not in registry:
        raise checkpoint.CheckpointError(f"checkpoint holds an unknown model type {name!r}")
    model_cls, config_cls = registry[name]
    mc = dict(state["model_config"])
    if "lightconv_kernels" in mc:
        mc["lightconv_kernels"] = tuple(mc["lightconv_kernels"])
    model = model_cls(config_cls(**mc))
    model.load_state_dict(state["model"])
    return model


# --------------------------------------------------------------------------- training
class _LossModule(nn.Module):
    """``forward(batch) = model.compute_loss(batch)``, so DDP sees the loss computation."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.module = model

    def forward(self, batch):
        return self.module.compute_loss(batch)


def train_one_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer, *, device: torch.device,
                    grad_clip: float = 8.0, amp: bool = True, epoch: int = 1,
                    callbacks: Callbacks | None = None, log_every: int = 1, world_size: int = 1,
                    max_targets: int | None = None) -> dict:
    """One pass over ``loader``: forward, loss, backward, clip, Adam step.

    Parameters
    ----------
    model : nn.Module
        A model with ``compute_loss(batch)`` or a wrapper whose ``forward(batch)``
        returns the loss dict (DDP around :class:`_LossModule`).
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
    model.train()
    run_loss = (lambda b: model(b)) if isinstance(model, (_LossModule, nn.parallel.DistributedDataParallel)) \
        else (lambda b: model.compute_loss(b))
    sums: dict[str, float] = {}
    n_docs, gnorm_sum, n_steps = 0, 0.0, 0
    n_batches = len(loader)
    t0 = time.perf_counter()
    for step, batch in enumerate(loader, start=1):
        if max_targets is not None:
            batch = truncate_targets(batch, max_targets)
        batch = batch.to(device)
        with autocast(device, amp):
            terms = run_loss(batch)
        loss = terms["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"epoch {epoch}, batch {step}: loss is {loss.item()}; "
                                     f"try a smaller learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
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


@dataclass
class SplitPrediction:
    """Predictions over a split, in split order."""

    labels: list[set[int]]  # dataset label ids per document
    top_ids: np.ndarray  # (D, k) best-scoring label ids
    top_scores: np.ndarray  # (D, k)


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
        import torch.distributed as tdist

        gathered = [None] * dist.world_size
        tdist.all_gather_object(gathered, (index, label_parts, ids, scores))
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


# --------------------------------------------------------------------------- checkpoints
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


# --------------------------------------------------------------------------- fit
@dataclass
class FitResult:
    """What :func:`fit` returns."""

    history: list = field(default_factory=list)  # one record per epoch
    best: dict | None = None  # {"epoch", "micro_f1"}
    train_time_s: float = 0.0  # training passes only (no evaluation), summed over epochs, resume included
    resumed_from: int = 0  # epochs completed before this call


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
    history: list = []
    best: dict | None = None
    start = 0
    if resume:
        if out is None:
            raise ConfigError("resume needs a run directory (--out)")
        state = checkpoint.load(out / "checkpoint.pt", model_type=cfg.model)
        check_resumable(state, cfg)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        checkpoint.set_rng_state(state["rng"])
        start, history, best = int(state["epoch"]), list(state["history"]), state["best"]
    label_order = unwrap(model).label_order
    runner: nn.Module = model
    if dist.active:
        runner = nn.parallel.DistributedDataParallel(_LossModule(model),
                                                     device_ids=[device.index] if device.type == "cuda" else None)
    result = FitResult(history=history, best=best, resumed_from=start,
                       train_time_s=sum(r["train"]["time_s"] for r in history))
    best_state = None  # the best epoch's weights, kept in memory on every rank
    if resume and best is not None and (out / "best.pt").is_file():
        best_state = checkpoint.load(out / "best.pt", model_type=cfg.model)["model"]
    n_batches = len(make_loader(dataset, "train", t, label_order=label_order, train=True, dist=dist))
    cb.on_fit_start(start, t.epochs, n_batches)
    for epoch in range(start, t.epochs):
        loader = make_loader(dataset, "train", t, label_order=label_order, train=True, epoch=epoch, dist=dist)
        cb.on_epoch_start(epoch + 1, t.epochs, len(loader))
        lr = optimizer.param_groups[0]["lr"]
        terms = train_one_epoch(runner, loader, optimizer, device=device, grad_clip=t.grad_clip, amp=t.amp,
                                epoch=epoch + 1, callbacks=cb, log_every=t.log_every, world_size=dist.world_size,
                                max_targets=getattr(unwrap(model).config, "n_steps", None))
        scheduler.step()
        t0 = time.perf_counter()
        val, _ = evaluate(model, dataset, "valid", t, device=device, label_order=label_order, callbacks=cb, dist=dist)
        record = {"epoch": epoch + 1, "lr": lr, "train": terms, "valid": val,
                  "valid_time_s": time.perf_counter() - t0}
        history.append(record)
        improved = best is None or val["micro_f1"] > best["micro_f1"]  # same on every rank (gathered metrics)
        if improved:
            best = {"epoch": epoch + 1, "micro_f1": val["micro_f1"]}
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        record["best"] = improved
        result.train_time_s += terms["time_s"]
        if out is not None and dist.is_main:
            if improved:
                checkpoint.save(run_state(model, cfg, dataset, epoch=epoch + 1, history=history, best=best),
                                out / "best.pt")
            checkpoint.save(run_state(model, cfg, dataset, epoch=epoch + 1, history=history, best=best,
                                      optimizer=optimizer, scheduler=scheduler), out / "checkpoint.pt")
            write_metrics(out, history, best)
        if dist.active:
            import torch.distributed as tdist

            tdist.barrier()  # rank 0's files are complete before anyone moves on
        cb.on_epoch_end(record)
    result.history, result.best = history, best
    if best_state is not None:  # leave the best epoch's weights in the model
        model.load_state_dict(best_state)
    cb.on_fit_end(result)
    return result


# --------------------------------------------------------------------------- run directory
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


# --------------------------------------------------------------------------- one whole run
@dataclass
class RunResult:
    """Outcome of :func:`train_run`."""

    config: RunConfig
    test: dict  # test metrics of the best epoch
    fit: FitResult
    parameters: int
    stats: dict
    out_dir: Path | None


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
    if out is not None and dist.is_main:
        write_config(out, cfg, run_info(model, data, device))
    result = fit(model, data, cfg, device=device, out_dir=out, resume=resume, callbacks=cb, dist=dist)
    test, pred = evaluate(model, data, "test", cfg.train, device=device, label_order=model.label_order,
                          callbacks=cb, dist=dist)
    if out is not None and dist.is_main:
        write_metrics(out, result.history, result.best, test, summary(model, result))
        write_predictions(out, data.test, pred, data.label_names)
    return RunResult(cfg, test, result, unwrap(model).num_parameters(), stats, out)


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


def set_threads(n: int | None) -> None:
    """Limit torch's CPU threads (``None``: leave torch's default)."""
    if n:
        torch.set_num_threads(int(n))


__all__ = [
    "RunResult", "train_run", "run_info", "summary", "Callbacks", "Embeddings", "init_distributed", "FitResult",
    "Run", "SplitPrediction", "ShardedBatchSampler", "DistContext",
    "build_model", "distributed_context", "truncate_targets", "targets_truncated", "evaluate", "fit", "load_data", "load_embeddings", "load_run",
    "make_loader", "max_labels", "model_config", "model_from_checkpoint", "model_registry", "predict",
    "predict_texts", "run_state", "seed_everything", "select_device", "train_one_epoch", "write_config",
    "write_metrics", "write_predictions",
]
