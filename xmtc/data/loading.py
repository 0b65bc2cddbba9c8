"""Data for a run: the dataset with its document limits, GloVe embeddings, and DataLoaders.

Training batches are shuffled by generators seeded by ``(seed, epoch)`` (never
the global RNG), so a resumed run sees exactly the batches an uninterrupted
run would have seen: a run resumed in the middle of an epoch regenerates the
epoch's order and skips the batches already trained (``make_loader(start=k)``,
:func:`global_position`). Evaluation batches group documents of similar length.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xmtc.config import RunConfig, TrainConfig
from xmtc.train.distributed import DistContext, ShardedBatchSampler


def load_data(data_cfg, *, seed: int = 0, progress=None):
    """Load (prepare or read from cache) the dataset and apply the document limits.

    ``max_*_docs`` keep the first documents of a split (train after the
    validation hold-out); vocabulary and label numbering stay those of the
    whole training split. ``data_cfg.max_src_len`` (the preset's) becomes the
    dataset's ``max_src_len``, the cut every :func:`make_loader` of it applies.
    """
    from xmtc.data import datasets
    ds = datasets.load(data_cfg.name, data_cfg.data_dir, progress=progress,
                       valid_fraction=data_cfg.valid_fraction, seed=seed, **data_cfg.options)
    ds.max_src_len = data_cfg.max_src_len
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


def embeddings_path(cfg: RunConfig) -> Path | None:
    """``cfg.data.embeddings`` as a path: as given if it exists, else the same name in the data directory.

    So a preset can name ``glove.6B.50d.subset.txt.gz`` and find it beside the dataset files
    (``--data-dir``, else ``$XMTC_DATA``, else ``./data``). ``None`` when no file is configured.
    """
    if not cfg.data.embeddings:
        return None
    path = Path(cfg.data.embeddings)
    if path.exists() or path.is_absolute():
        return path
    from xmtc.data.datasets import resolve_data_dir

    in_data_dir = resolve_data_dir(cfg.data.data_dir) / path
    return in_data_dir if in_data_dir.exists() else path


def load_embeddings(cfg: RunConfig, dataset) -> Embeddings | None:
    """Read ``cfg.data.embeddings`` (GloVe text) for the dataset's words and label names.

    Returns ``None`` when no file is configured. Sets ``cfg.net.embed_dim``
    (and ``label_embed_dim`` when label vectors come from GloVe) to the file's
    dimension so that ``config.json`` shows what was run.
    """
    path = embeddings_path(cfg)
    if path is None:
        return None
    from xmtc.data.embeddings import (
        dataset_label_embeddings,
        glove_words_for,
        input_embeddings,
        read_glove,
    )

    if not Path(path).is_file():
        raise FileNotFoundError(f"embeddings file {path} not found (nor in the data directory)")
    glove = read_glove(path, glove_words_for(dataset))
    if len(glove) == 0:
        from xmtc.data.datasets import DataError

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


class _SkipBatches(torch.utils.data.Sampler):
    """The batches of ``batch_sampler`` after its first ``k`` (only index lists are made for those)."""

    def __init__(self, batch_sampler, k: int):
        self.batch_sampler, self.k = batch_sampler, int(k)

    def set_epoch(self, epoch: int) -> None:
        self.batch_sampler.set_epoch(epoch)

    def __iter__(self):
        return itertools.islice(iter(self.batch_sampler), self.k, None)

    def __len__(self) -> int:
        return max(0, len(self.batch_sampler) - self.k)


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
                train: bool = False, epoch: int = 0, dist: DistContext | None = None, start: int = 0):
    """A ``DataLoader`` of ``xmtc.data.batching.Batch`` over ``dataset.<split>``.

    Training loaders shuffle by ``(seed, epoch)`` (length-bucketed when
    ``train_cfg.bucket``); evaluation loaders batch documents of similar length
    in a fixed order. Under torchrun each rank gets its share of every batch.
    ``start`` (training): leave out the epoch's first ``start`` global batches,
    already trained before a mid-epoch checkpoint (:func:`global_position`).
    """
    from xmtc.data.batching import BucketBatchSampler, SplitDataset, collate

    sp = getattr(dataset, split)
    ds = SplitDataset(sp, dataset.n_labels, dataset.label_order(label_order), dataset.max_src_len)
    lengths = sp.lengths if dataset.max_src_len is None else np.minimum(sp.lengths, dataset.max_src_len)
    seed = train_cfg.seed
    if train:
        if train_cfg.bucket:
            sampler = BucketBatchSampler(lengths, train_cfg.batch_size, shuffle=True, seed=seed)
        else:
            sampler = _SeededBatches(len(sp), train_cfg.batch_size, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        if start:
            sampler = _SkipBatches(sampler, start)
    else:
        sampler = _LengthSortedBatches(lengths, train_cfg.eval_batch_size)
    dist = dist or DistContext()
    if dist.active:
        if train and train_cfg.batch_size < dist.world_size:
            from xmtc.config import ConfigError

            raise ConfigError(f"batch size {train_cfg.batch_size} is smaller than the {dist.world_size} processes: "
                              f"every rank needs a share of each (global) batch")
        sampler = ShardedBatchSampler(sampler, dist.rank, dist.world_size, drop_short=train)
    return torch.utils.data.DataLoader(
        ds, batch_sampler=sampler, collate_fn=collate, num_workers=train_cfg.num_workers,
        generator=torch.Generator().manual_seed(seed),  # never touch the global RNG
    )


def global_position(loader, steps: int) -> int:
    """Global batches of the epoch that a full training ``loader``'s first ``steps`` batches cover.

    ``steps`` itself in one process; under torchrun the global batches left out as
    too short for the ranks count too (``ShardedBatchSampler.base_batches``). A
    mid-epoch checkpoint records this, for ``make_loader(start=...)``.
    """
    sampler = loader.batch_sampler
    return sampler.base_batches(steps) if isinstance(sampler, ShardedBatchSampler) else int(steps)


__all__ = ["Embeddings", "embeddings_path", "global_position", "load_data", "load_embeddings", "make_loader",
           "max_labels", "targets_truncated", "truncate_targets"]
