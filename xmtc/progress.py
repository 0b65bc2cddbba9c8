"""Rich progress display for the example scripts (the library itself never prints).

:class:`RichProgress` implements :class:`xmtc.engine.Callbacks`: a bar for data
preparation, one for the epochs and one for the batches of the current epoch
(with the running loss terms, documents per second and the ETA), a bar for
prediction over a split, and a one-line summary per epoch. ``enabled=False``
(e.g. on ranks other than 0 under torchrun) makes it silent.

Also here: :func:`config_table` and :func:`results_table`, the tables the
scripts print before and after training.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from .engine import Callbacks


def _fmt_terms(terms: dict) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in terms.items())


class RichProgress(Callbacks):
    """Progress bars on a rich console.

    Use as a context manager around data loading and training::

        with RichProgress(console) as progress:
            data = engine.load_data(cfg.data, progress=progress.on_data)
            engine.fit(..., callbacks=progress)
    """

    def __init__(self, console: Console | None = None, *, enabled: bool = True):
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
            disable=not enabled,
        )
        self._data = {}
        self._epochs = None
        self._batches = None
        self._eval = None

    # context manager
    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()
        return False

    def log(self, message: str) -> None:
        if self.enabled:
            self.progress.console.print(message)

    # data
    def on_data(self, stage: str, done: int, total: int | None) -> None:
        task = self._data.get(stage)
        if task is None:
            task = self._data[stage] = self.progress.add_task(stage, total=total, info="")
        self.progress.update(task, completed=done, total=total)

    # training
    def on_fit_start(self, start_epoch: int, epochs: int, n_batches: int) -> None:
        if start_epoch:
            self.log(f"resuming after epoch {start_epoch}")
        self._epochs = self.progress.add_task("epochs", total=epochs, completed=start_epoch, info="")

    def on_epoch_start(self, epoch: int, epochs: int, n_batches: int) -> None:
        if self._batches is None:
            self._batches = self.progress.add_task(f"epoch {epoch}", total=n_batches, info="")
        else:
            self.progress.reset(self._batches, total=n_batches, description=f"epoch {epoch}", info="")

    def on_batch(self, epoch: int, step: int, n_batches: int, terms: dict, docs_per_s: float) -> None:
        self.progress.update(self._batches, completed=step, info=f"{_fmt_terms(terms)} {docs_per_s:,.0f} docs/s")

    def on_eval_start(self, split: str, n_batches: int) -> None:
        if self._eval is None:
            self._eval = self.progress.add_task(f"predict {split}", total=n_batches, info="")
        else:
            self.progress.reset(self._eval, total=n_batches, description=f"predict {split}", info="")

    def on_eval_batch(self, split: str, step: int, n_batches: int) -> None:
        self.progress.update(self._eval, completed=step)

    def on_epoch_end(self, record: dict) -> None:
        self.progress.advance(self._epochs)
        tr, va = record["train"], record["valid"]
        terms = {k: v for k, v in tr.items() if k not in ("grad_norm", "docs", "time_s", "docs_per_s")}
        self.log(
            f"epoch {record['epoch']:>3}  lr {record['lr']:.2e}  {_fmt_terms(terms)}  "
            f"valid micro-F1 {va['micro_f1']:.4f} macro-F1 {va['macro_f1']:.4f}  "
            f"{tr['docs_per_s']:,.0f} docs/s  {tr['time_s']:.1f}s{'  *best*' if record.get('best') else ''}"
        )


def config_table(cfg_dict: dict, title: str = "resolved config") -> Table:
    """Two-column table of a nested config dict (``RunConfig.to_dict()``)."""
    table = Table(title=title, show_header=True)
    table.add_column("setting")
    table.add_column("value")

    def rows(d: dict, prefix: str = ""):
        for k, v in d.items():
            if isinstance(v, dict) and v and k != "options":
                yield from rows(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", repr(v)

    for k, v in rows(cfg_dict):
        table.add_row(k, v)
    return table


def results_table(rows: list[dict], columns: list[tuple[str, str, str]], title: str) -> Table:
    """A table of result rows; ``columns`` are ``(key, heading, format)`` (format ``""`` = ``str``)."""
    table = Table(title=title)
    for _, heading, _ in columns:
        table.add_column(heading, justify="right" if heading not in ("model", "dataset") else "left")
    for r in rows:
        table.add_row(*[(format(r[k], f) if f and isinstance(r.get(k), (int, float)) else str(r.get(k, "")))
                        for k, _, f in columns])
    return table
