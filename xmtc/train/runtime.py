"""Where and how a run computes: device, CPU threads, seeds, bf16 autocast.

Reproducibility: every random number comes from the generators seeded here
(dropout, initialisation) or from generators seeded by ``(seed, epoch)``
(the order of training batches, ``xmtc.data.loading``).
"""

from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

from xmtc.config import ConfigError


def select_device(spec: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when present else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:k"``, ``"mps"``.

    Under torchrun, ``"auto"`` and ``"cuda"`` mean this process's GPU (``LOCAL_RANK``).
    """
    if spec in ("auto", "cuda") and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:<index>") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {spec!r} requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {spec!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' requested but it is not available")
    return device


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (all devices); optionally force deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA when ``enabled``; a no-op context elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def set_threads(n: int | None) -> None:
    """Limit torch's CPU threads (``None``: leave torch's default)."""
    if n:
        torch.set_num_threads(int(n))


__all__ = ["autocast", "seed_everything", "select_device", "set_threads"]
