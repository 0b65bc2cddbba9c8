"""Where the prepared-data cache goes (issue 23): never into the data directory.

Default: ``$XMTC_CACHE``, else ``$XDG_CACHE_HOME/xmtc``, else ``~/.cache/xmtc``;
an explicit ``cache_dir=`` wins. Loading leaves a writable data directory
byte-for-byte unchanged, the library prints nothing (the "cache written" line is
:func:`xmtc.data.datasets.cache_note`'s, for scripts), and a cache directory that
cannot be written degrades to the dataset in memory with a warning.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import pytest

from xmtc.data import datasets
from xmtc.data.datasets.cache import default_cache_dir


def snapshot(root: Path) -> dict:
    """Every entry under ``root`` (itself included): kind, size, mtime (ns) and, for files, a content hash."""
    out = {}
    for path in [root, *sorted(root.rglob("*"))]:
        st = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        out[str(path.relative_to(root))] = (path.is_dir(), st.st_size, st.st_mtime_ns, digest)
    return out


@pytest.fixture
def env(tmp_path, monkeypatch):
    """No cache variable set, HOME and XDG_CACHE_HOME pointing into tmp_path."""
    monkeypatch.delenv("XMTC_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_data_dir_unchanged_and_cache_under_xmtc_cache(write_axml, tmp_path, env, capsys):
    data = tmp_path / "data"
    write_axml(data)
    before = snapshot(data)
    assert len(before) == 6  # data/, Amazon-670K/, four files
    env.setenv("XMTC_CACHE", str(tmp_path / "cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about
        first = datasets.load("amazon670k", data)
        again = datasets.load("amazon670k", data)
    assert snapshot(data) == before
    entries = sorted((tmp_path / "cache").iterdir())
    assert [p.suffix for p in entries] == [".pkl"] and entries[0].name.startswith("amazon670k-")
    assert (first.cache_written, first.from_cache, first.cache_path) == (True, False, entries[0])
    assert (again.cache_written, again.from_cache, again.cache_path) == (False, True, entries[0])
    assert datasets.cache_note(first) == f"prepared-data cache written to {entries[0]}"
    assert datasets.cache_note(again) is None
    assert capsys.readouterr() == ("", "")  # the library prints nothing
    assert not (tmp_path / "home").exists()


def test_xdg_cache_home_then_home_fallback(write_axml, tmp_path, env):
    data = tmp_path / "data"
    write_axml(data)
    before = snapshot(data)
    env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "xmtc"
    ds = datasets.load("amazon670k", data)
    assert ds.cache_path.parent == tmp_path / "xdg" / "xmtc"
    env.setenv("XDG_CACHE_HOME", "relative/dir")  # the XDG specification: relative paths are ignored
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "xmtc"
    env.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "xmtc"
    ds = datasets.load("amazon670k", data)
    assert ds.cache_written and ds.cache_path.parent == tmp_path / "home" / ".cache" / "xmtc"
    assert snapshot(data) == before


def test_explicit_cache_dir_wins_over_the_environment(write_axml, tmp_path, env):
    data = tmp_path / "data"
    write_axml(data)
    env.setenv("XMTC_CACHE", str(tmp_path / "env"))
    ds = datasets.load("amazon670k", data, cache_dir=tmp_path / "mine")
    assert ds.cache_path.parent == tmp_path / "mine"
    assert not (tmp_path / "env").exists()


def test_unwritable_cache_dir_builds_in_memory_with_a_warning(write_axml, tmp_path, env):
    data = tmp_path / "data"
    write_axml(data)
    before = snapshot(data)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env.setenv("XMTC_CACHE", str(blocker / "cache"))  # cannot be created, even by root
    with pytest.warns(UserWarning, match=r"could not write dataset cache .*using the prepared data from memory"):
        ds = datasets.load("amazon670k", data)
    ref = datasets.load("amazon670k", data, cache=False)
    assert (ds.from_cache, ds.cache_written, ds.cache_path) == (False, False, None)
    assert datasets.cache_note(ds) is None
    assert ds.label_names == ref.label_names and ds.vocab.itos == ref.vocab.itos
    assert [d.labels for d in ds.train_full] == [d.labels for d in ref.train_full]
    assert snapshot(data) == before and blocker.read_text() == "not a directory"


def test_cache_off_and_synthetic_write_nothing(write_axml, tmp_path, env):
    env.setenv("XMTC_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    write_axml(data)
    off = datasets.load("amazon670k", data, cache=False)
    synth = datasets.load("synthetic", n_docs=50, n_labels=5)
    for ds in (off, synth):
        assert (ds.from_cache, ds.cache_written, ds.cache_path) == (False, False, None)
    assert not (tmp_path / "cache").exists()
    assert sorted(os.listdir(tmp_path)) == ["data"]
