"""Dataset registry: ``load(name, data_dir=None, **options)``.

==============  ==============================================================
name            source
==============  ==============================================================
``eurlex``      Eurlex-4K, AttentionXML layout (``attentionxml.py``)
``wiki10``      Wiki10-31K, AttentionXML layout, label ids through ``Y.txt``
``amazoncat``   AmazonCat-13K, AttentionXML layout, label ids through ``Yf.txt``
``amazon670k``  Amazon-670K, AttentionXML layout, numeric label ids
``eurlex57k``   EURLEX57K release, ``EURLEX57K.tar.gz`` or folder (``eurlex57k.py``)
``reuters``     Reuters-21578 ModApte, ``reuters21578.tar.gz`` (``reuters.py``)
``synthetic``   seeded generator with planted label structure (``synthetic.py``)
==============  ==============================================================

``data_dir=None`` means ``$XMTC_DATA``, else ``./data``. The prepared dataset is
cached on disk, outside the data directory (``$XMTC_CACHE``, else
``$XDG_CACHE_HOME/xmtc``, else ``~/.cache/xmtc``; ``cache.py``); pass
``cache=False`` to rebuild in memory.
Label ids, splits and documents follow ``docs/contracts.md``.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from xmtc.data.datasets.base import DataError, Document, Split, XMTCDataset  # noqa: F401  (light: numpy only)
from xmtc.data.datasets.cache import cache_note  # noqa: F401  (the "cache written" line for scripts)
from xmtc.data.datasets.stats import compute_stats  # noqa: F401

# name -> module; each module has resolve(name, data_dir, options) and build(...)
REGISTRY = {
    "eurlex": "attentionxml",
    "wiki10": "attentionxml",
    "amazoncat": "attentionxml",
    "amazon670k": "attentionxml",
    "eurlex57k": "eurlex57k",
    "reuters": "reuters",
    "synthetic": "synthetic",
}

def available() -> list[str]:
    """Registered dataset names."""
    return sorted(REGISTRY)


def resolve_data_dir(data_dir=None) -> Path:
    """``data_dir`` if given, else ``$XMTC_DATA``, else ``./data``."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get("XMTC_DATA")
    return Path(env) if env else Path("data")


def load(
    name: str,
    data_dir=None,
    *,
    cache: bool = True,
    cache_dir=None,
    progress=None,
    valid_fraction: float = 0.1,
    seed: int = 0,
    **options,
) -> XMTCDataset:
    """Load (prepare or read from cache) a dataset by name.

    Parameters
    ----------
    name : str
        One of :func:`available`.
    data_dir : path, optional
        Directory holding the source files; ``None`` means ``$XMTC_DATA``,
        else ``./data``.
    cache : bool
        Read / write the prepared dataset on disk (see ``cache.py``).
    cache_dir : path, optional
        Where the cache lives; default ``$XMTC_CACHE``, else
        ``$XDG_CACHE_HOME/xmtc``, else ``~/.cache/xmtc``
        (:func:`cache.default_cache_dir`). The data directory is never
        written. A directory that cannot be written gives a ``UserWarning``
        and the dataset is used from memory.
    progress : callable, optional
        ``progress(stage: str, done: int, total: int | None)`` during a long
        preparation; the library itself never prints.
    valid_fraction, seed : float, int
        Seeded hold-out of the training split as validation, for datasets
        without a dev split (EURLEX57K uses its own dev split).
    **options
        Source options, e.g. ``max_vocab`` (500,000), ``on_empty`` /
        ``on_unlabelled`` (``"error"`` / ``"skip"``), ``text`` (AttentionXML:
        ``"texts"`` or ``"raw"``), synthetic ``n_docs``, ``n_labels``, ...

    Returns
    -------
    XMTCDataset
        With the cache's outcome as attributes: ``from_cache`` (read from the
        cache), ``cache_written`` (this call wrote the entry) and
        ``cache_path`` (the entry, or ``None`` without one);
        :func:`cache.cache_note` gives the line a script shows once.
    """
    if name not in REGISTRY:
        raise KeyError(f"unknown dataset {name!r}; available: {', '.join(available())}")
    module = importlib.import_module(f"{__name__}.{REGISTRY[name]}")
    root = resolve_data_dir(data_dir)
    paths, opts = module.resolve(name, root, dict(options))

    def build() -> dict:
        return module.build(name, root, paths, opts, progress)

    if paths and cache:
        from xmtc.data.datasets.cache import cached, default_cache_dir

        cdir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        res = cached(name, paths, opts, build, cache_dir=cdir)
        prepared, hit, cache_path, written = res.prepared, res.hit, res.path, res.written
    else:
        prepared, hit, cache_path, written = build(), False, None, False
    ds = XMTCDataset(prepared, valid_fraction=valid_fraction, seed=seed)
    ds.from_cache = hit
    ds.cache_written = written
    ds.cache_path = cache_path
    return ds
