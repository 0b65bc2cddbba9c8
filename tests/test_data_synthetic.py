"""The synthetic dataset and the dataset contract (docs/contracts.md, "Datasets")."""

from pathlib import Path

import numpy as np
import pytest

from xmtc.data import datasets
from xmtc.data.text import UNK


@pytest.fixture(scope="module")
def syn():
    return datasets.load("synthetic", n_docs=600, n_labels=20, seed=3)


def test_contract_fields(syn):
    assert len(syn.train) + len(syn.valid) == 600 and len(syn.test) == 150
    doc = next(iter(syn.train))
    assert isinstance(doc.id, str) and isinstance(doc.text, str)
    assert doc.tokens.dtype == np.int32 and len(doc.tokens) > 0
    assert all(0 <= k < len(syn.label_names) for k in doc.labels)
    st = syn.stats()
    for key in ("n_train", "n_test", "n_labels", "mean_labels", "max_labels", "vocab_size",
                "mean_docs_per_label", "mean_words_train", "mean_words_test"):
        assert key in st
    assert st["n_train"] == 600 and st["n_test"] == 150 and st["n_labels"] == syn.n_labels
    assert 1 <= st["max_labels"] <= 6
    assert st["mean_labels"] == pytest.approx(np.mean([len(d.labels) for d in syn.train_full]))


def test_seeded():
    # (how fast it is belongs in a benchmark, not in an assert that fails on a busy machine)
    a = datasets.load("synthetic", n_docs=2000, seed=1)
    b = datasets.load("synthetic", n_docs=2000, seed=1)
    c = datasets.load("synthetic", n_docs=2000, seed=2)
    assert [d.text for d in a.train] == [d.text for d in b.train]
    assert [d.labels for d in a.test] == [d.labels for d in b.test]
    assert [d.text for d in a.train] != [d.text for d in c.train]


def test_planted_structure_is_learnable(syn):
    """Each label's characteristic words occur far more often with it than without it."""
    tr = syn.train_full
    X = np.zeros((len(tr), len(syn.vocab)), dtype=bool)
    Y = np.zeros((len(tr), len(syn.label_names)), dtype=bool)
    for i in range(len(tr)):
        X[i, tr.tokens(i)] = True
        Y[i, tr.labels(i)] = True
    # the best single word predicts the label with high precision and recall, for most labels
    good = 0
    for k in range(syn.n_labels):
        pos = Y[:, k]
        if pos.sum() < 5:
            continue
        p_in = X[pos].mean(0)
        p_out = X[~pos].mean(0)
        good += bool((p_in - p_out).max() > 0.3)
    assert good >= 0.8 * sum(Y[:, k].sum() >= 5 for k in range(syn.n_labels))
    # variable label counts and co-occurrence
    counts = Y.sum(1)
    assert counts.min() == 1 and counts.max() >= 4


def test_label_ids_training_first_and_counts(syn):
    n = syn.n_labels
    counts = syn.label_counts
    assert (counts[:n] > 0).all() and (counts[n:] == 0).all()
    assert (np.diff(counts[:n]) <= 0).all()  # numbered by training count, descending
    recount = np.bincount([k for d in syn.train_full for k in d.labels],
                          minlength=len(counts))
    assert (recount == counts).all()


def test_validation_split_seeded_and_disjoint():
    a = datasets.load("synthetic", n_docs=500, seed=0, valid_fraction=0.1)
    b = datasets.load("synthetic", n_docs=500, seed=0, valid_fraction=0.1)
    c = datasets.load("synthetic", n_docs=500, seed=5, valid_fraction=0.1)
    ta, va = set(a.train.ids), set(a.valid.ids)
    assert len(va) == 50 and len(ta) == 450 and not ta & va
    assert ta | va == set(a.train_full.ids)
    assert va == set(b.valid.ids) and va != set(c.valid.ids)
    assert a.stats()["n_train"] == 500


def test_unknown_name_and_option():
    with pytest.raises(KeyError, match="available"):
        datasets.load("nope")
    with pytest.raises(TypeError, match="unknown option"):
        datasets.load("synthetic", n_dogs=3)


def test_data_dir_resolution(monkeypatch, tmp_path):
    from xmtc.data.datasets import resolve_data_dir

    monkeypatch.setenv("XMTC_DATA", str(tmp_path))
    assert resolve_data_dir() == tmp_path
    assert resolve_data_dir("x") == Path("x")
    monkeypatch.delenv("XMTC_DATA")
    assert str(resolve_data_dir()) == "data"


def test_unk_never_in_training_vocab_built_from_train_only(syn):
    assert UNK == 1 and syn.vocab.itos[:2] == ["<pad>", "<unk>"]
    assert all(UNK not in d.tokens for d in syn.train_full)  # every training word is in the vocab
