"""One policy for code run through ``torch.compile``: where the compiler fails, warn once and run eagerly.

Two fast paths of this toolkit are compiled: the IPOT loop (:func:`losses.ipot.ipot_fused`)
and the CPU attention (``models/attention.py``, ``attention_impl="compiled"``). Both
wrap their function in :class:`Compiled`, so they fall back alike:

* **made on first use.** ``torch.compile`` runs when the function is first
  called, not when the module is imported: code that never runs never compiles.
* **only the compiler's failures fall back** (:func:`compiler_errors`): dynamo's
  ``BackendCompilerFailed`` (inductor's ``InductorError`` is one: a missing C++
  compiler reaches the caller as that, wrapping ``InvalidCxxCompiler``), inductor's
  ``CppCompileError`` and ``InvalidCxxCompiler`` raised bare (a graph compiled
  outside dynamo's wrapper), ``OSError`` (the compiler binary cannot be run), and
  any ``RuntimeError`` of ``torch.compile`` itself (an unsupported Python or
  platform: it raises before any data is seen). Every other error (a wrong shape,
  a dtype mismatch) is the caller's and is raised as it is; compiling stays on.
* **one warning, then eager for that function only.** After a failure the
  function's :attr:`Compiled.failed` is set, one ``UserWarning`` names the error,
  and every later call returns ``None`` at once so the caller runs its eager
  path; other compiled functions (the IPOT loop of another device type, the
  attention) keep compiling. Library code warns, it never prints.

``models`` may import this module (``models`` already imports ``losses``; the
reverse never happens), which is why the policy lives here and not in ``models/``.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import torch

__all__ = ["Compiled", "compiler_errors"]


def compiler_errors() -> tuple[type[BaseException], ...]:
    """The exceptions of a failing compiler (toolchain missing or broken, backend unsupported)."""
    from torch._dynamo.exc import BackendCompilerFailed  # also inductor's InductorError
    from torch._inductor.exc import CppCompileError, InvalidCxxCompiler

    return BackendCompilerFailed, CppCompileError, InvalidCxxCompiler, OSError


class Compiled:
    """``fn`` through ``torch.compile`` where the compiler works; ``None`` (eager) where it does not.

    Parameters
    ----------
    fn : callable
        The function to compile; its eager form is the caller's fallback.
    name : str
        What the warning calls it (``"attention"``, ``"IPOT loop"``).
    **options
        Passed to ``torch.compile`` (``dynamic``, ``mode``, ...).

    Attributes
    ----------
    failed : bool
        True once compiling failed: the caller's eager path runs from then on.
    """

    def __init__(self, fn: Callable, name: str, **options: Any):
        self.fn, self.name, self.options = fn, name, options
        self.failed = False
        self._compiled: Callable | None = None

    def __call__(self, *args: Any) -> Any:
        """``fn(*args)`` compiled; ``None`` where compiling fails (now, with one warning, or before).

        Arguments and result: those of ``fn``.
        """
        if self.failed:
            return None
        if self._compiled is None:
            try:
                self._compiled = torch.compile(self.fn, **self.options)
            except RuntimeError as exc:  # torch.compile itself: an unsupported Python or platform
                return self._give_up(exc)
        try:
            return self._compiled(*args)
        except compiler_errors() as exc:
            return self._give_up(exc)

    def _give_up(self, exc: BaseException) -> None:
        """Eager from now on, with one warning naming ``exc``."""
        self.failed = True
        warnings.warn(f"compiled {self.name} unavailable ({exc!r}); running it eagerly from now on", stacklevel=3)
        return None
