"""On-disk cache of prepared datasets.

A prepared dataset (the dict of compact arrays from :func:`base.prepare`) is
pickled to ``<cache_dir>/<name>-<key>.pkl``; the key hashes the source files'
paths, sizes and modification times, the options and the format version, so a
changed source or option prepares afresh. Writes go to a temporary file in the
same directory and are renamed into place (atomic), so a crash never leaves a
half-written cache behind. An unreadable cache file is reported with a warning
and rebuilt.

Cache directory: the ``cache_dir`` argument, else ``$XMTC_CACHE``, else
``<data_dir>/.xmtc_cache`` when the data directory is writable (permission
bits, so a read-only share is respected even by root), else
``$XDG_CACHE_HOME/xmtc`` (``~/.cache/xmtc``).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from .base import PREPARED_VERSION


def default_cache_dir(data_dir: Path) -> Path:
    env = os.environ.get("XMTC_CACHE")
    if env:
        return Path(env)
    cand = Path(data_dir) / ".xmtc_cache"
    if _writable(cand) or (not cand.exists() and _writable(Path(data_dir))):
        return cand
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "xmtc"


def _writable(path: Path) -> bool:
    """A directory we may write: write permission bits set (also for root) and access granted."""
    try:
        return path.is_dir() and bool(path.stat().st_mode & 0o222) and os.access(path, os.W_OK)
    except OSError:
        return False


def cache_key(name: str, sources: Iterable[Path], options: dict) -> str:
    parts = {"name": name, "version": PREPARED_VERSION, "options": options, "sources": []}
    for p in sources:
        st = Path(p).stat()
        parts["sources"].append([str(Path(p).resolve()), st.st_size, st.st_mtime_ns])
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def cached(
    name: str,
    sources: Iterable[Path],
    options: dict,
    build: Callable[[], dict],
    *,
    cache_dir: Path | None,
    enabled: bool = True,
) -> tuple[dict, bool]:
    """Return ``(prepared, hit)``: from the cache when present, else ``build()`` and store."""
    if not enabled or cache_dir is None:
        return build(), False
    path = Path(cache_dir) / f"{name}-{cache_key(name, sources, options)}.pkl"
    if path.exists():
        try:
            with open(path, "rb") as f:
                prepared = pickle.load(f)
            if prepared.get("version") == PREPARED_VERSION:
                return prepared, True
        except Exception as exc:  # corrupt or foreign file: rebuild
            warnings.warn(f"ignoring unreadable cache file {path}: {exc}", stacklevel=3)
    prepared = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(prepared, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        warnings.warn(f"could not write dataset cache {path}: {exc}", stacklevel=3)
    return prepared, False
