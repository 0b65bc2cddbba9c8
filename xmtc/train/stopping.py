"""Stopping a training run without losing it: signals, interval checkpoints, and what was saved.

``xmtc.train.engine.fit`` runs inside :class:`StopSignals`. SIGINT (Ctrl-C) and
SIGTERM (``kill``, a cluster's time limit) then do not kill the run in the
middle of an optimiser step: the signal is only recorded; the engine finishes
the batch it is training, writes a checkpoint with the position in the epoch
(``checkpoint.pt``: weights, optimiser, LR schedule, RNG states, batches done,
running loss sums) and raises :class:`Interrupted`, which says what was saved
(a :class:`SavePoint`) and carries the exit status of a process killed by
that signal (130 for SIGINT, 143 for SIGTERM). ``--resume`` continues at the
next batch and ends exactly where an uninterrupted run ends.

- Further signals while the batch finishes or the checkpoint is written are
  ignored, so a second Ctrl-C cannot leave a half-written file (the write is
  atomic anyway, ``xmtc.train.checkpoint.save``). SIGKILL (or Ctrl-\\, SIGQUIT) still
  stops at once.
- During validation (one process) a signal stops at once: the epoch's training
  is saved and its validation runs again on resume. Under torchrun the ranks
  validate different numbers of batches, so there the stop waits for the end of
  the epoch's checkpoint.
- Under torchrun the ranks agree after every batch, by an all-reduce of the
  stop request (:func:`xmtc.train.distributed.agree`), so all stop at the same batch;
  rank 0 writes.
- The handlers exist only inside the ``with`` block and only in the main thread
  (Python delivers signals there); the previous handlers come back after.

:class:`IntervalTimer` says when ``train.checkpoint_interval`` minutes have
passed since the last checkpoint, so that a run killed without warning loses at
most that much.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from time import monotonic

#: The signals that stop training cleanly.
SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class SavePoint:
    """What a checkpoint holds: ``batch`` of the ``n_batches`` batches of epoch ``epoch`` (1-based) trained.

    ``validated``: the epoch ended (validation and the LR schedule's step done);
    else the next run continues the epoch after batch ``batch``. ``batch`` and
    ``n_batches`` are ``None`` for a checkpoint written before positions were
    recorded (always at an epoch's end).
    """

    path: Path
    epoch: int
    batch: int | None
    n_batches: int | None
    validated: bool

    def describe(self) -> str:
        """``epoch 2, batch 37/125`` (+ ``, end of the epoch`` or ``, before its validation``)."""
        if self.batch is None:
            return f"end of epoch {self.epoch}"
        where = f"epoch {self.epoch}, batch {self.batch}/{self.n_batches}"
        if self.validated:
            return where + ", end of the epoch"
        return where + (", before its validation" if self.batch >= (self.n_batches or 0) else "")


def save_point(state: dict, path: Path) -> SavePoint:
    """The :class:`SavePoint` of a checkpoint's ``state`` (``epoch`` and, if recorded, ``position``)."""
    pos = state.get("position")
    if pos is None:
        return SavePoint(Path(path), int(state["epoch"]), None, None, True)
    return SavePoint(Path(path), int(pos["epoch"]), int(pos["batch"]), int(pos["n_batches"]),
                     int(pos["epoch"]) == int(state["epoch"]))


class Interrupted(KeyboardInterrupt):
    """Training stopped by a signal.

    Attributes
    ----------
    signum : int
        The signal (``signal.SIGINT`` or ``signal.SIGTERM``).
    saved : SavePoint or None
        The checkpoint a ``--resume`` continues from (written now or earlier in
        the run, or the one it resumed from); ``None``: nothing was saved.
    """

    def __init__(self, signum: int = signal.SIGINT, saved: SavePoint | None = None):
        self.signum = int(signum)
        self.saved = saved
        super().__init__(f"{self.signal_name}; " + (f"saved {saved.describe()} to {saved.path}" if saved
                                                    else "nothing saved"))

    @property
    def signal_name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    @property
    def exit_code(self) -> int:
        """``128 + signum``: 130 for SIGINT, 143 for SIGTERM (a shell's code for a process killed by it)."""
        return 128 + self.signum


class StopNow(BaseException):
    """Raised by the handler itself while :attr:`StopSignals.immediate` (validation outside torchrun)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = int(signum)


class StopSignals:
    """SIGINT / SIGTERM handlers for the duration of a ``with`` block: a signal sets :attr:`requested`.

    Use::

        with StopSignals() as stop:
            for batch in ...:
                train(batch)
                if stop.requested:   # (all_reduced under torchrun)
                    save(); raise Interrupted(stop.requested, ...)

    :meth:`request` is the same stop path without a signal (tests, or a caller's
    own stop condition). Outside the main thread nothing is installed.
    """

    def __init__(self):
        self.requested: int | None = None  # the first signal received
        self.immediate = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> bool:
        for s, handler in self._previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        self._previous.clear()
        return False

    def request(self, signum: int = signal.SIGINT) -> None:
        """Ask to stop, as if ``signum`` had been received."""
        first = self.requested is None
        if first:
            self.requested = int(signum)
        if first and self.immediate:
            raise StopNow(signum)

    def _handle(self, signum, frame) -> None:  # noqa: ARG002 -- the signal module's signature
        self.request(signum)

    @contextmanager
    def immediately(self, enabled: bool = True):
        """Inside: a signal raises :class:`StopNow` at once (a request already pending raises on entry)."""
        if not enabled:
            yield
            return
        if self.requested is not None:
            raise StopNow(self.requested)
        self.immediate = True
        try:
            yield
        finally:
            self.immediate = False


class IntervalTimer:
    """Due every ``minutes`` minutes since the last :meth:`reset` (``0``: never).

    The clock is :func:`time.monotonic`, read through this module (tests replace
    ``xmtc.train.stopping.monotonic``).
    """

    def __init__(self, minutes: float):
        self.seconds = float(minutes) * 60.0
        self.last = monotonic()

    def due(self) -> bool:
        return self.seconds > 0 and monotonic() - self.last >= self.seconds

    def reset(self) -> None:
        self.last = monotonic()


__all__ = ["IntervalTimer", "Interrupted", "SIGNALS", "SavePoint", "StopNow", "StopSignals", "save_point"]
