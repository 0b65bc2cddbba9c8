"""Presenting a metrics dict: a rich table and an atomic JSON writer.

The library never prints: :func:`render_table` returns a ``rich.table.Table``
for the caller to print (``rich.console.Console().print(table)``), and
:func:`write_json` writes a file through :func:`atomic_write`, the toolkit's one
way to write a file that a reader (or a killed run) never sees half-written:
checkpoints, run directories, caches and models use it too.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Mapping

from rich.table import Table

__all__ = ["atomic_write", "render_table", "write_json", "metric_group"]

_GROUPS = (
    ("set", ("micro_", "macro_precision", "macro_recall", "macro_f1", "weighted_", "example_", "subset_", "hamming_")),
    ("ranking", ("p@", "ndcg@", "psp@")),
    ("counts", ("mean_", "count_", "duplicate_")),
    ("frequency buckets", ()),  # keys ending in _head / _torso / _tail
)


def metric_group(key: str) -> str:
    """Name of the table section a metric key belongs to ("other" if unknown)."""
    if key.endswith(("_head", "_torso", "_tail")):
        return "frequency buckets"
    for name, prefixes in _GROUPS:
        if key.startswith(prefixes):
            return name
    return "other"


def _fmt(key: str, value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if key.startswith("n_labels_"):
            return f"{int(value):,}"
        if key.startswith("mean_"):
            return f"{value:.2f}"
        if key == "hamming_loss":
            return f"{value:.3e}"
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    return str(value)


def render_table(metrics: Mapping[str, float], title: str | None = "Evaluation") -> Table:
    """Render a flat metrics dict as a rich table, grouped by kind of metric.

    Parameters
    ----------
    metrics : mapping str -> float
        Typically the output of :func:`evaluation.evaluate`.
    title : str or None

    Returns
    -------
    rich.table.Table
        Columns "group", "metric", "value"; rows keep the dict's order inside
        each group (set, ranking, counts, frequency buckets, other).
    """
    table = Table(title=title)
    table.add_column("group", style="dim")
    table.add_column("metric")
    table.add_column("value", justify="right")
    order = [name for name, _ in _GROUPS] + ["other"]
    by_group: dict[str, list[str]] = {g: [] for g in order}
    for key in metrics:
        by_group[metric_group(key)].append(key)
    for g in order:
        for i, key in enumerate(by_group[g]):
            table.add_row(g if i == 0 else "", key, _fmt(key, metrics[key]), end_section=i == len(by_group[g]) - 1)
    return table


def _plain(obj: Any) -> Any:
    """numpy / torch scalars and nested mappings to JSON-native types."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (str, bool, int, float)) or obj is None:
        return obj
    if hasattr(obj, "item"):  # numpy / torch 0-d
        return obj.item()
    return obj


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8",
                 permissions: int | None = None):
    """``with atomic_write(path, "wb") as f: ...``: ``path`` appears complete or not at all.

    The file is written to a temporary file beside ``path``, flushed and fsynced,
    renamed onto ``path`` (``os.replace``) and the directory fsynced, so a reader or
    a run killed mid-write sees the old file or the new one, never a part. An
    exception inside the block leaves ``path`` untouched and removes the temporary.
    ``mode``: ``"w"`` (text, ``encoding``) or ``"wb"``; ``permissions``: the file's mode
    bits (default: the temporary file's, owner read/write only).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": encoding} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if permissions is not None:
            os.chmod(tmp, permissions)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json(metrics: Mapping[str, Any], path: str | os.PathLike, *, indent: int = 2) -> Path:
    """Write ``metrics`` as JSON atomically (:func:`atomic_write`).

    Nested mappings (e.g. ``{"test": {...}}``) and numpy scalars are accepted.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    text = json.dumps(_plain(metrics), indent=indent) + "\n"
    with atomic_write(path) as f:
        f.write(text)
    return path
