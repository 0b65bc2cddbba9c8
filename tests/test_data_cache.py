"""The on-disk cache of prepared datasets (xmtc/data/datasets/cache.py)."""

import os
import time

import numpy as np
import pytest

from xmtc.data import datasets
from xmtc.data.datasets.cache import default_cache_dir


def same(a, b):
    assert a.label_names == b.label_names and a.vocab.itos == b.vocab.itos
    for sa, sb in ((a.train_full, b.train_full), (a.test, b.test)):
        assert len(sa) == len(sb)
        for x, y in zip(sa, sb):
            assert (x.id, x.text, x.labels) == (y.id, y.text, y.labels) and np.array_equal(x.tokens, y.tokens)


def test_cache_hit_equal_and_keyed_by_options_and_sources(write_axml, tmp_path):
    folder = write_axml(tmp_path / "d")
    cdir = tmp_path / "c"
    a = datasets.load("amazon670k", tmp_path / "d", cache_dir=cdir)
    b = datasets.load("amazon670k", tmp_path / "d", cache_dir=cdir)
    assert not a.from_cache and b.from_cache
    assert a.cache_written and not b.cache_written and a.cache_path == b.cache_path and a.cache_path.parent == cdir
    same(a, b)
    c = datasets.load("amazon670k", tmp_path / "d", cache_dir=cdir, max_vocab=3)  # other option: new entry
    assert not c.from_cache and len(c.vocab) == 3
    assert len(list(cdir.glob("*.pkl"))) == 2 and not list(cdir.glob("*.tmp"))
    # a changed source file invalidates the entry
    (folder / "train_texts.txt").write_text("a b c\nb c\nc e\n")
    os.utime(folder / "train_texts.txt", ns=(time.time_ns(), time.time_ns() + 10**9))
    d = datasets.load("amazon670k", tmp_path / "d", cache_dir=cdir)
    assert not d.from_cache and "e" in d.vocab
    # validation split options do not need a new cache entry
    e = datasets.load("amazon670k", tmp_path / "d", cache_dir=cdir, valid_fraction=0.5, seed=3)
    assert e.from_cache and len(e.valid) == 2


def test_corrupt_cache_is_rebuilt_with_warning(write_axml, tmp_path):
    write_axml(tmp_path / "d")
    cdir = tmp_path / "c"
    datasets.load("amazon670k", tmp_path / "d", cache_dir=cdir)
    (entry,) = cdir.glob("*.pkl")
    entry.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable cache"):
        ds = datasets.load("amazon670k", tmp_path / "d", cache_dir=cdir)
    assert not ds.from_cache
    assert datasets.load("amazon670k", tmp_path / "d", cache_dir=cdir).from_cache


def test_default_cache_dir_never_in_the_data_directory(write_axml, tmp_path, monkeypatch):
    """The default ignores the data directory: $XMTC_CACHE, else $XDG_CACHE_HOME/xmtc, else ~/.cache/xmtc."""
    monkeypatch.delenv("XMTC_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "xmtc"
    monkeypatch.setenv("XMTC_CACHE", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    write_axml(tmp_path / "d")
    ds = datasets.load("amazon670k", tmp_path / "d")
    assert ds.cache_written and ds.cache_path.parent == tmp_path / "env"
    assert not (tmp_path / "d" / ".xmtc_cache").exists()
