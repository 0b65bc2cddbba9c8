"""Real data from $XMTC_DATA: Reuters-21578 ModApte, EURLEX57K, Amazon-670K sample.

Each dataset is prepared once per session into a temporary cache directory; the
cached reload must not prepare it again, and is compared. EURLEX57K takes tens of
seconds to prepare: its tests are slow, Reuters' are the quick tier's.
"""

import importlib

import numpy as np
import pytest

from xmtc.data import datasets
from xmtc.data.text import UNK, word_tokenize


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("xmtc_cache")


@pytest.fixture(scope="session")
def reuters(data_dir, cache_dir):
    if not (data_dir / "reuters21578.tar.gz").exists():
        pytest.skip("reuters21578.tar.gz not in the data directory")
    return datasets.load("reuters", data_dir, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def eurlex57k(data_dir, cache_dir):
    if not (data_dir / "EURLEX57K.tar.gz").exists():
        pytest.skip("EURLEX57K.tar.gz not in the data directory")
    return datasets.load("eurlex57k", data_dir, cache_dir=cache_dir)


def test_reuters_modapte_numbers(reuters):
    st = reuters.stats()
    # 7,770 from this archive (not the 7,769 many papers quote; see xmtc/data/datasets/reuters.py)
    assert (st["n_train"], st["n_test"], st["n_labels"]) == (7770, 3019, 90)
    assert st["n_labels_total"] == 90
    assert reuters.meta["modapte_documents"] == {"TRAIN": 9603, "TEST": 3299}
    assert len(reuters.train) + len(reuters.valid) == 7770 and len(reuters.valid) == 777
    assert reuters.label_names[0] == "earn" and {"acq", "crude", "money-fx"} <= set(reuters.label_names)
    first = reuters.train_full[0]
    assert first.id == "1" and first.text.startswith("BAHIA COCOA REVIEW")
    assert [reuters.label_names[k] for k in first.labels] == ["cocoa"]


def test_reuters_vocab_from_train_only(reuters):
    """A word that occurs only in test maps to <unk>."""
    vocab = reuters.vocab
    for doc in reuters.test:
        words = word_tokenize(doc.text)
        unseen = [j for j, w in enumerate(words) if w not in vocab]
        if unseen:
            j = unseen[0]
            assert doc.tokens[j] == UNK
            assert not any(words[j] in word_tokenize(d.text) for d in reuters.train_full)
            break
    else:
        pytest.fail("expected some test-only word in Reuters")
    assert all(UNK not in d.tokens for d in reuters.train_full)


@pytest.mark.slow
def test_eurlex57k_numbers(eurlex57k):
    st = eurlex57k.stats()
    assert (st["n_train"], st["n_valid"], st["n_test"]) == (45000, 6000, 6000)
    assert st["n_labels_total"] == 4271 and st["n_labels"] == 4108
    assert st["mean_labels"] == pytest.approx(5.07, abs=0.01)
    assert eurlex57k.valid_source == "dev"
    # label ids: training labels first; test-only labels beyond n_labels
    assert (eurlex57k.label_counts[: st["n_labels"]] > 0).all()
    assert (eurlex57k.label_counts[st["n_labels"] :] == 0).all()
    doc = eurlex57k.test[0]
    assert doc.text and len(doc.tokens) and doc.labels
    assert all(isinstance(n, str) and n for n in eurlex57k.label_names)
    assert "import" in eurlex57k.label_names  # names from EURLEX57K.json, not ids


@pytest.mark.parametrize("name", ["reuters", pytest.param("eurlex57k", marks=pytest.mark.slow)])
def test_cache_hit_equal_and_nothing_rebuilt(name, request, data_dir, cache_dir, monkeypatch):
    first = request.getfixturevalue(name)  # prepared from the archive, written to the cache
    source = importlib.import_module(f"xmtc.data.datasets.{name}")

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the archive was prepared again instead of read from the cache")

    monkeypatch.setattr(source, "build", no_rebuild)
    again = datasets.load(name, data_dir, cache_dir=cache_dir)
    assert again.from_cache
    assert again.label_names == first.label_names and again.vocab.itos == first.vocab.itos
    for i in (0, 123, len(first.test) - 1):
        a, b = again.test[i], first.test[i]
        assert (a.id, a.text, a.labels) == (b.id, b.text, b.labels) and np.array_equal(a.tokens, b.tokens)


def test_amazon670k_sample(data_dir, tmp_path):
    ds = datasets.load("amazon670k", data_dir, cache_dir=tmp_path)
    st = ds.stats()
    assert (st["n_train"], st["n_test"]) == (200, 200)
    assert ds.meta["text"] == "texts"  # pre-tokenised texts preferred
    first_labels = (data_dir / "amazon670k-sample" / "train_labels.txt").read_text().splitlines()[0].split()
    assert [ds.label_names[k] for k in ds.train_full[0].labels] == first_labels
    assert st["n_labels"] == len({k for d in ds.train_full for k in d.labels})
    raw = datasets.load("amazon670k", data_dir, cache_dir=tmp_path, text="raw")
    assert raw.meta["text"] == "raw" and raw.stats()["n_train"] == 200
