"""Progress display for the example scripts (the library itself never prints).

Two implementations of :class:`xmtc.train.engine.Callbacks`:

- :class:`RichProgress`, for a terminal: a bar for data preparation, one for
  the epochs and one for the batches of the current epoch (with the running
  loss terms, documents per second and the ETA), a bar for prediction over a
  split, and a one-line summary per epoch;
- :class:`LogProgress`, for a log file (``nohup``, a cluster job), where bars
  show nothing until the end: plain time-stamped lines, one per data
  preparation stage, at the start and end of each prediction pass, and while
  training a line at a steady interval (every ``interval`` seconds and/or
  every ``every`` batches) with the epoch, batch/total, docs/s, the epoch's
  ETA and the running loss terms; the same one-line summary per epoch.

Both also log a line when an epoch continues from a mid-epoch checkpoint and
when an interval checkpoint is written (``train.checkpoint_interval``).

:func:`make_progress` picks one (bars on a terminal, lines otherwise).
``enabled=False`` (e.g. on ranks other than 0 under torchrun) makes either silent.

Also here: :func:`config_table` and :func:`results_table`, the tables the
scripts print before and after training.
"""

from __future__ import annotations

import time
from typing import Callable

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

from xmtc.train.engine import Callbacks


def _fmt_terms(terms: dict) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in terms.items())


def _fmt_time(seconds: float) -> str:
    """``3725`` -> ``1h02m05s``; ``65`` -> ``1m05s``; ``4.2`` -> ``4.2s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = int(round(seconds))
    h, m = s // 3600, s // 60 % 60
    return f"{h}h{m:02d}m{s % 60:02d}s" if h else f"{m}m{s % 60:02d}s"


def epoch_line(record: dict) -> str:
    """The one-line summary of an epoch record (``xmtc.train.engine.fit``)."""
    tr, va = record["train"], record["valid"]
    terms = {k: v for k, v in tr.items() if k not in ("grad_norm", "docs", "time_s", "docs_per_s")}
    return (f"epoch {record['epoch']:>3}  lr {record['lr']:.2e}  {_fmt_terms(terms)}  "
            f"valid micro-F1 {va['micro_f1']:.4f} macro-F1 {va['macro_f1']:.4f}  "
            f"{tr['docs_per_s']:,.0f} docs/s  {tr['time_s']:.1f}s{'  *best*' if record.get('best') else ''}")


class RichProgress(Callbacks):
    """Progress bars on a rich console.

    Use as a context manager around data loading and training::

        with RichProgress(console) as progress:
            data = loading.load_data(cfg.data, progress=progress.on_data)
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

    def on_message(self, text: str) -> None:
        self.log(text)

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

    def on_epoch_resume(self, epoch: int, batch: int, n_batches: int) -> None:
        self.log(f"epoch {epoch} continues after batch {batch}/{n_batches}")
        self.progress.update(self._batches, completed=batch)

    def on_batch(self, epoch: int, step: int, n_batches: int, terms: dict, docs_per_s: float) -> None:
        self.progress.update(self._batches, completed=step, info=f"{_fmt_terms(terms)} {docs_per_s:,.0f} docs/s")

    def on_checkpoint(self, saved) -> None:
        self.log(f"checkpoint: {saved.describe()} -> {saved.path}")

    def on_eval_start(self, split: str, n_batches: int) -> None:
        if self._eval is None:
            self._eval = self.progress.add_task(f"predict {split}", total=n_batches, info="")
        else:
            self.progress.reset(self._eval, total=n_batches, description=f"predict {split}", info="")

    def on_eval_batch(self, split: str, step: int, n_batches: int) -> None:
        self.progress.update(self._eval, completed=step)

    def on_epoch_end(self, record: dict) -> None:
        self.progress.advance(self._epochs)
        self.log(epoch_line(record))


class LogProgress(Callbacks):
    """Plain progress lines for a log file (stdout not a terminal).

    Parameters
    ----------
    console : where the lines go (a rich console that is not a terminal prints
        them as plain text and flushes after each, so ``tail -f`` shows them).
    interval : seconds between progress lines while training or predicting
        (``0``: a line for every update the engine reports).
    every : also a line every ``every`` training batches (``0``: by time only).
    enabled : ``False`` prints nothing (ranks other than 0).
    clock : monotonic seconds (a fake one in tests).
    timestamps : start each line with the local date and time.

    Lines (``interval`` apart; the first batch of a run also gets one, to show the rate early)::

        2024-05-02 10:31:07 data: tokenise train 45,000/45,000 done in 1m12s
        2024-05-02 10:32:40 epoch 1/20 batch 421/1407 (30%) 25.3 docs/s eta 20m04s loss=4.1021 match=3.9 ...
        2024-05-02 10:52:50 predict valid: 47 batches
    """

    def __init__(self, console: Console | None = None, *, interval: float = 60.0, every: int = 0,
                 enabled: bool = True, clock: Callable[[], float] = time.monotonic, timestamps: bool = True):
        self.console = console or Console(stderr=True)
        self.interval = float(interval)
        self.every = int(every)
        self.enabled = enabled
        self.clock = clock
        self.timestamps = timestamps
        self._last = None  # clock of the last progress line
        self._stages: dict[str, float] = {}  # data stage -> start
        self._epoch_t0 = 0.0
        self._epochs: int | None = None
        self._eval_t0 = 0.0
        self._batch_lines = 0
        self._first_step = 0  # batches of the epoch trained before this process (a resumed epoch)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def log(self, message: str) -> None:
        if self.enabled:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S ") if self.timestamps else ""
            self.console.print(stamp + message, markup=False, highlight=False, emoji=False, soft_wrap=True)

    def _due(self, now: float) -> bool:
        return self._last is None or now - self._last >= self.interval

    def _emit(self, message: str, now: float) -> None:
        self._last = now
        self.log(message)

    def on_message(self, text: str) -> None:
        self.log(text)

    # data
    def on_data(self, stage: str, done: int, total: int | None) -> None:
        now = self.clock()
        first = stage not in self._stages
        if first:
            self._stages[stage] = now
        of = f"/{total:,}" if total else ""
        if total is not None and done >= total:
            self._emit(f"data: {stage} {done:,}{of} done in {_fmt_time(now - self._stages[stage])}", now)
        elif first or self._due(now):
            self._emit(f"data: {stage} {done:,}{of}", now)

    # training
    def on_fit_start(self, start_epoch: int, epochs: int, n_batches: int) -> None:
        now = self.clock()
        resumed = f" (resuming after epoch {start_epoch})" if start_epoch else ""
        self._emit(f"training: epochs {start_epoch + 1}-{epochs}, {n_batches:,} batches each{resumed}", now)

    def on_epoch_start(self, epoch: int, epochs: int, n_batches: int) -> None:
        self._epoch_t0 = self.clock()
        self._epochs = epochs
        self._first_step = 0

    def on_epoch_resume(self, epoch: int, batch: int, n_batches: int) -> None:
        self._first_step = batch
        self._emit(f"epoch {epoch}/{self._epochs or '?'} continues after batch {batch:,}/{n_batches:,} "
                   f"(mid-epoch checkpoint)", self.clock())

    def on_batch(self, epoch: int, step: int, n_batches: int, terms: dict, docs_per_s: float) -> None:
        now = self.clock()
        by_count = self.every > 0 and step % self.every == 0
        if not (self._batch_lines == 0 or by_count or self._due(now)):
            return
        self._batch_lines += 1
        elapsed = now - self._epoch_t0
        eta = elapsed / max(step - self._first_step, 1) * (n_batches - step)
        self._emit(f"epoch {epoch}/{self._epochs or '?'} batch {step:,}/{n_batches:,} ({100 * step / n_batches:.0f}%) "
                   f"{docs_per_s:,.1f} docs/s elapsed {_fmt_time(elapsed)} eta {_fmt_time(eta)} "
                   f"{_fmt_terms(terms)}", now)

    def on_checkpoint(self, saved) -> None:
        self._emit(f"checkpoint: {saved.describe()} -> {saved.path}", self.clock())

    def on_eval_start(self, split: str, n_batches: int) -> None:
        self._eval_t0 = now = self.clock()
        self._emit(f"predict {split}: {n_batches:,} batch{'es' if n_batches != 1 else ''}", now)

    def on_eval_batch(self, split: str, step: int, n_batches: int) -> None:
        now = self.clock()
        elapsed = now - self._eval_t0
        if step >= n_batches:
            self._emit(f"predict {split}: done in {_fmt_time(elapsed)}", now)
        elif self._due(now):
            eta = elapsed / step * (n_batches - step)
            self._emit(f"predict {split}: batch {step:,}/{n_batches:,} eta {_fmt_time(eta)}", now)

    def on_epoch_end(self, record: dict) -> None:
        self._emit(epoch_line(record), self.clock())

    def on_fit_end(self, result) -> None:
        best = result.best or {}
        n = len(result.history)
        self._emit(f"training done: {n} epoch{'s' if n != 1 else ''}, best epoch {best.get('epoch')} "
                   f"(valid micro-F1 {best.get('micro_f1', float('nan')):.4f}), "
                   f"training time {_fmt_time(result.train_time_s)}", self.clock())


def make_progress(console: Console, mode: str = "auto", *, interval: float = 60.0, every: int = 0,
                  enabled: bool = True) -> RichProgress | LogProgress:
    """Bars on a terminal, lines otherwise: ``mode`` is ``"auto"``, ``"bars"`` or ``"lines"``."""
    if mode not in ("auto", "bars", "lines"):
        raise ValueError(f"progress mode must be auto, bars or lines, got {mode!r}")
    if mode == "bars" or (mode == "auto" and console.is_terminal):
        return RichProgress(console, enabled=enabled)
    return LogProgress(console, interval=interval, every=every, enabled=enabled)


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
