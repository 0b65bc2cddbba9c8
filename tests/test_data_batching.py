"""Batching (xmtc/data/batching.py): collate shapes and masks, label orders, sampler; the loaders of
xmtc/data/loading.py over a dataset (the ones training uses)."""

import numpy as np
import pytest
import torch

from xmtc.data import datasets
from xmtc.config import TrainConfig
from xmtc.data.batching import Batch, BucketBatchSampler, SplitDataset, collate
from xmtc.data.datasets.base import RawSplit, XMTCDataset, prepare
from xmtc.data.loading import make_loader as run_loader


def make_loader(dataset, split, *, batch_size=32, label_order="file", seed=0, bucket=False):
    """``xmtc.data.loading.make_loader`` with the train settings spelled as arguments."""
    cfg = TrainConfig(batch_size=batch_size, eval_batch_size=batch_size, seed=seed, bucket=bucket)
    return run_loader(dataset, split, cfg, label_order=label_order, train=split == "train")


@pytest.fixture(scope="module")
def syn():
    return datasets.load("synthetic", n_docs=400, n_labels=15, seed=0)


def _tiny():
    """Hand-made dataset: counts a:3, b:2, c:2, d:1 in train; e only in test."""
    tr, te = RawSplit(), RawSplit()
    for i, (text, labs) in enumerate([("w x", ["d", "b", "a"]), ("x y z", ["c", "a"]), ("y", ["a", "c", "b"])]):
        tr.add(f"t{i}", text, labs, f"mem:{i}")
    te.add("s0", "w q", ["e", "c", "a"], "mem:t0")
    return XMTCDataset(prepare("tiny", {"train": tr, "test": te}), valid_fraction=0.0)


def test_tiny_label_layout_and_orders():
    ds = _tiny()
    # training labels first by count desc, ties by key; then test-only
    assert ds.label_keys == ["a", "b", "c", "d", "e"] and ds.n_labels == 4
    assert ds.label_counts.tolist() == [3, 2, 2, 1, 0]
    assert [ds.label_keys[k] for k in ds.train[0].labels] == ["d", "b", "a"]  # file order kept
    rank = ds.label_order("frequency")
    items = [SplitDataset(ds.train, ds.n_labels, rank)[i] for i in range(3)]
    assert [ds.label_keys[k] for k in items[0][2]] == ["a", "b", "d"]
    assert [ds.label_keys[k] for k in items[2][2]] == ["a", "b", "c"]  # tie b/c broken by id
    # test-only label "e" is dropped from targets but stays in the gold set
    it = SplitDataset(ds.test, ds.n_labels, None)[0]
    assert [ds.label_keys[k] for k in it[2]] == ["c", "a"]
    assert 4 in ds.test[0].labels
    # "q" occurs only in test: it maps to <unk>
    assert ds.test[0].tokens.tolist() == [ds.vocab["w"], 1]


def test_collate_shapes_masks_and_padding():
    items = [(5, np.array([4, 5, 6], np.int32), np.array([2, 0], np.int32)),
             (9, np.array([7], np.int32), np.array([3], np.int32)),
             (2, np.array([], np.int32), np.array([], np.int32))]
    b = collate(items)
    assert isinstance(b, Batch) and len(b) == 3
    assert b.src.shape == (3, 3) and b.src.dtype == torch.long
    assert b.src.tolist() == [[4, 5, 6], [7, 0, 0], [1, 0, 0]]  # empty -> one <unk>
    assert b.src_mask.tolist() == [[True] * 3, [True, False, False], [True, False, False]]
    assert b.labels.tolist() == [[2, 0], [3, 0], [0, 0]]
    assert b.label_mask.tolist() == [[True, True], [True, False], [False, False]]
    assert b.index.tolist() == [5, 9, 2]
    assert (b.src_mask.sum(1) >= 1).all()
    c = b.to("cpu")
    assert torch.equal(c.src, b.src) and c.labels.dtype == torch.long and c.src_mask.dtype == torch.bool


def test_loader_over_split_matches_documents(syn, monkeypatch):
    monkeypatch.setattr(syn, "max_src_len", 10)  # as load_data sets it from data.max_src_len
    dl = make_loader(syn, "valid", batch_size=16, label_order="file")
    seen = []
    for b in dl:
        assert b.src.shape[1] <= 10 and b.src.shape == b.src_mask.shape
        assert b.labels.shape == b.label_mask.shape
        for row in range(len(b)):
            i = int(b.index[row])
            doc = syn.valid[i]
            n = int(b.src_mask[row].sum())
            assert b.src[row, :n].tolist() == doc.tokens[:10].tolist()
            assert (b.src[row, n:] == 0).all()
            kept = [k for k in doc.labels if k < syn.n_labels]
            assert b.labels[row][b.label_mask[row]].tolist() == kept
            assert (b.labels[row][~b.label_mask[row]] == 0).all()
            seen.append(i)
    assert sorted(seen) == list(range(len(syn.valid)))  # no shuffle for valid, all docs once


def test_frequency_order_deterministic_and_sorted(syn):
    a = [b.labels.clone() for b in make_loader(syn, "test", batch_size=32, label_order="frequency")]
    b_ = [b.labels.clone() for b in make_loader(syn, "test", batch_size=32, label_order="frequency")]
    assert all(torch.equal(x, y) for x, y in zip(a, b_))
    counts = syn.label_counts
    for b in make_loader(syn, "test", batch_size=32, label_order="frequency"):
        for row in range(len(b)):
            labs = b.labels[row][b.label_mask[row]].numpy()
            key = list(zip(-counts[labs], labs))
            assert key == sorted(key)  # count descending, ties by id
    with pytest.raises(ValueError):
        syn.label_order("random")


def test_train_loader_seeded_shuffle(syn):
    idx = lambda seed: torch.cat([b.index for b in make_loader(syn, "train", batch_size=50, seed=seed)])  # noqa: E731
    assert torch.equal(idx(0), idx(0)) and not torch.equal(idx(0), idx(1))
    assert sorted(idx(0).tolist()) == list(range(len(syn.train)))


def test_bucket_sampler_covers_all_once_and_groups_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 500, size=1000)
    s = BucketBatchSampler(lengths, batch_size=10, seed=0)
    batches = list(s)
    assert len(batches) == len(s) == 100
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 0.2 * np.ptp(lengths)  # much tighter than random batches
    assert [list(b) for b in BucketBatchSampler(lengths, 10, seed=0)] == batches
    s.set_epoch(1)
    assert list(s) != batches


def test_bucket_loader(syn):
    dl = make_loader(syn, "train", batch_size=8, bucket=True)
    total = sum(len(b) for b in dl)
    assert total == len(syn.train)
