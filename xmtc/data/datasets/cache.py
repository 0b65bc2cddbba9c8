"""On-disk cache of prepared datasets.

A prepared dataset (the dict of compact arrays from :func:`base.prepare`) is
pickled to ``<cache_dir>/<name>-<key>.pkl``; the key hashes the source files'
paths, sizes and modification times, the options and the format version, so a
changed source or option prepares afresh. Writes go to a temporary file in the
same directory and are renamed into place (atomic), so a crash never leaves a
half-written cache behind. An unreadable cache file is reported with a warning
and rebuilt; a cache directory that cannot be written is reported with a
warning and the dataset is used from memory.

Cache directory (:func:`default_cache_dir`), the torch hub / Hugging Face
convention: the ``cache_dir`` argument, else ``$XMTC_CACHE``, else
``$XDG_CACHE_HOME/xmtc``, else ``~/.cache/xmtc``. The data directory is never
written: it may be a read-only or shared copy, and loading a dataset leaves it
byte-for-byte unchanged.

The library never prints. :func:`cached` returns a :class:`CacheResult` whose
``path`` and ``written`` say where the entry is and whether this call wrote it;
``xmtc.data.datasets.load`` copies them onto the dataset (``ds.cache_path``,
``ds.cache_written``, ``ds.from_cache``) and :func:`cache_note` turns them into
the one line a script shows once, ``prepared-data cache written to PATH``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from evaluation.report import atomic_write
from xmtc.data.datasets.base import PREPARED_VERSION

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """Where prepared datasets are cached when ``load`` is given no ``cache_dir``.

    Returns
    -------
    Path
        ``$XMTC_CACHE`` if set, else ``$XDG_CACHE_HOME/xmtc`` (an absolute
        ``XDG_CACHE_HOME`` only, as the XDG specification asks), else
        ``~/.cache/xmtc``. Never inside the data directory.
    """
    env = os.environ.get("XMTC_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "xmtc"


def cache_key(name: str, sources: Iterable[Path], options: dict) -> str:
    """A hash of the dataset name, format version, options and the sources' paths, sizes and times."""
    parts = {"name": name, "version": PREPARED_VERSION, "options": options, "sources": []}
    for p in sources:
        st = Path(p).stat()
        parts["sources"].append([str(Path(p).resolve()), st.st_size, st.st_mtime_ns])
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


@dataclass
class CacheResult:
    """What :func:`cached` did.

    Attributes
    ----------
    prepared : dict
        The prepared dataset.
    hit : bool
        Read from the cache.
    path : Path or None
        The cache entry read or written; ``None`` when the cache was off or could not be written.
    written : bool
        This call built the dataset and wrote ``path``.
    """

    prepared: dict
    hit: bool
    path: Path | None
    written: bool


def cached(
    name: str,
    sources: Iterable[Path],
    options: dict,
    build: Callable[[], dict],
    *,
    cache_dir: Path | None,
    enabled: bool = True,
) -> CacheResult:
    """The prepared dataset from the cache when present, else ``build()``, stored in ``cache_dir``.

    Parameters
    ----------
    name : str
        Dataset name (the entry's file name starts with it).
    sources : iterable of Path
        The source files; their paths, sizes and modification times enter the key.
    options : dict
        Preparation options (enter the key).
    build : callable
        ``build() -> dict``, the preparation, called on a miss.
    cache_dir : Path or None
        The cache directory (created when missing); ``None`` builds in memory.
    enabled : bool
        ``False`` builds in memory, reading and writing nothing.

    Returns
    -------
    CacheResult
        A directory that cannot be created or written gives a ``UserWarning`` and
        ``path=None`` (the dataset is built and used from memory).
    """
    if not enabled or cache_dir is None:
        return CacheResult(build(), False, None, False)
    path = Path(cache_dir) / f"{name}-{cache_key(name, sources, options)}.pkl"
    if path.exists():
        try:
            with open(path, "rb") as f:
                prepared = pickle.load(f)
            if prepared.get("version") == PREPARED_VERSION:
                return CacheResult(prepared, True, path, False)
        except Exception as exc:  # corrupt or foreign file: rebuild
            warnings.warn(f"ignoring unreadable cache file {path}: {exc}", stacklevel=3)
    prepared = build()
    try:
        with atomic_write(path, "wb", permissions=0o644) as f:
            pickle.dump(prepared, f, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError as exc:
        warnings.warn(f"could not write dataset cache {path} ({exc}); using the prepared data from memory "
                      f"(set XMTC_CACHE to a writable directory)", stacklevel=3)
        return CacheResult(prepared, False, None, False)
    log.info("prepared-data cache written to %s", path)
    return CacheResult(prepared, False, path, True)


def cache_note(dataset) -> str | None:
    """The line a script shows once after loading: ``"prepared-data cache written to PATH"``.

    ``None`` when this load wrote no cache entry (read from the cache, cache off,
    a dataset without source files, or the directory not writable).
    """
    if getattr(dataset, "cache_written", False) and getattr(dataset, "cache_path", None) is not None:
        return f"prepared-data cache written to {dataset.cache_path}"
    return None
