"""Batching: a torch ``Dataset`` over a split, the collate function and a
length-bucketed sampler (the loaders that use them: ``xmtc.data.loading.make_loader``).

A :class:`Batch` carries (``docs/contracts.md``, "Batch")::

    src         LongTensor (B, S)      token ids, 0 = <pad>, 1 = <unk>
    src_mask    BoolTensor (B, S)      True on real tokens; >= 1 per row
    labels      LongTensor (B, n_max)  dataset label ids, chosen order, 0 = pad
    label_mask  BoolTensor (B, n_max)  True on real labels
    index       LongTensor (B,)        position of each document in its split

Sources are cut to ``max_src_len`` tokens (the first ones). Gold labels are put
in file order or frequency-descending order (training counts, ties by label
id); labels outside the training label vocabulary (id >= ``n_labels``, seen
only in validation/test) are left out of ``labels`` / ``label_mask`` (the
evaluation takes gold sets from the split, where they stay and count as
misses). A document left with no tokens (only possible with ``max_src_len=0``;
empty documents are rejected or skipped when the dataset is prepared) gets one
``<unk>``, so every row has a real token.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Sampler

from xmtc.data.text import PAD, UNK


@dataclass
class Batch:
    src: torch.Tensor  # (B, S) long
    src_mask: torch.Tensor  # (B, S) bool
    labels: torch.Tensor  # (B, n_max) long
    label_mask: torch.Tensor  # (B, n_max) bool
    index: torch.Tensor  # (B,) long

    def to(self, device, non_blocking: bool = False) -> "Batch":
        return Batch(*(t.to(device, non_blocking=non_blocking) for t in
                       (self.src, self.src_mask, self.labels, self.label_mask, self.index)))

    def __len__(self) -> int:
        return self.src.shape[0]

    def pin_memory(self) -> "Batch":
        return Batch(*(t.pin_memory() for t in (self.src, self.src_mask, self.labels, self.label_mask, self.index)))


class SplitDataset(torch.utils.data.Dataset):
    """Items ``(index, tokens (l,), labels (n,))`` of a split, ready for :func:`collate`.

    Parameters
    ----------
    split : Split
    n_labels : int
        Training label count; label ids ``>= n_labels`` are dropped from targets.
    label_rank : ndarray, optional
        Rank of every label id (``XMTCDataset.label_order("frequency")``);
        ``None`` keeps file order.
    max_src_len : int, optional
        Keep at most this many (leading) tokens.
    """

    def __init__(self, split, n_labels: int, label_rank: np.ndarray | None = None, max_src_len: int | None = None):
        self.split = split
        self.n_labels = int(n_labels)
        self.label_rank = label_rank
        self.max_src_len = max_src_len

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int):
        toks = self.split.tokens(i)
        if self.max_src_len is not None:
            toks = toks[: self.max_src_len]
        labs = self.split.labels(i)
        labs = labs[labs < self.n_labels]
        if self.label_rank is not None and len(labs) > 1:
            labs = labs[np.argsort(self.label_rank[labs], kind="stable")]
        return i, toks, labs


def collate(items: Sequence[tuple[int, np.ndarray, np.ndarray]]) -> Batch:
    """Pad a list of ``(index, tokens, labels)`` into a :class:`Batch`."""
    B = len(items)
    S = max(1, max(len(t) for _, t, _ in items))
    n_max = max(1, max(len(l) for _, _, l in items))
    src = np.full((B, S), PAD, dtype=np.int64)  # (B, S)
    labels = np.zeros((B, n_max), dtype=np.int64)  # (B, n_max)
    src_len = np.zeros(B, dtype=np.int64)
    lab_len = np.zeros(B, dtype=np.int64)
    for b, (_, t, l) in enumerate(items):
        if len(t) == 0:
            src[b, 0] = UNK
            src_len[b] = 1
        else:
            src[b, : len(t)] = t
            src_len[b] = len(t)
        labels[b, : len(l)] = l
        lab_len[b] = len(l)
    src_mask = np.arange(S)[None, :] < src_len[:, None]  # (B, S)
    label_mask = np.arange(n_max)[None, :] < lab_len[:, None]  # (B, n_max)
    return Batch(
        src=torch.from_numpy(src),
        src_mask=torch.from_numpy(src_mask),
        labels=torch.from_numpy(labels),
        label_mask=torch.from_numpy(label_mask),
        index=torch.tensor([i for i, _, _ in items], dtype=torch.long),
    )


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar-length documents (less padding), in seeded random order.

    Indices are shuffled, cut into pools of ``batch_size * pool_factor``, each
    pool sorted by length and cut into batches; the batches are shuffled. Call
    :meth:`set_epoch` for a new order each epoch (same seed -> same order).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, *, shuffle: bool = True, seed: int = 0,
                 pool_factor: int = 50, drop_last: bool = False):
        self.lengths = np.asarray(lengths)
        self.batch_size = int(batch_size)
        self.shuffle, self.seed, self.pool_factor, self.drop_last = shuffle, seed, pool_factor, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _batches(self) -> list[np.ndarray]:
        n = len(self.lengths)
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        pool = self.batch_size * self.pool_factor
        batches = []
        for s in range(0, n, pool):
            chunk = order[s : s + pool]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches += [chunk[j : j + self.batch_size] for j in range(0, len(chunk), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        for b in self._batches():
            yield b.tolist()

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
