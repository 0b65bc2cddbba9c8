"""Checkpoints: atomic, safe to load, enough to resume or to predict.

A checkpoint is a dict of tensors and plain containers only (str, int, float,
bool, None, list, tuple, dict), so it loads with
``torch.load(path, weights_only=True)``: a file from the internet cannot run
code. It holds

========================  =====================================================
``format``                :data:`FORMAT` (a version string)
``model_type``            ``"otseq2set"``, ``"seq2seq"``, ``"mlc2seq"`` or ``"sgm"``
``model_config``          the model's config dataclass as a dict
``model``                 ``state_dict`` of the model
``optimizer``             ``state_dict`` of Adam (absent in prediction-only files)
``scheduler``             ``state_dict`` of the LR schedule
``rng``                   python, numpy, torch (and CUDA) random states (rank 0's) at the checkpoint's position
``rng_ranks``             every rank's random states, in rank order (one entry outside torchrun)
``world_size``            processes that trained (1 outside torchrun)
``epoch``                 epochs completed
``position``              ``{"epoch", "batch", "n_batches", "global_batch"}``: ``batch`` of the
                          ``n_batches`` batches of epoch ``epoch`` (1-based) trained; at an epoch's
                          end ``epoch`` is the epochs completed and ``batch == n_batches``; in the
                          middle of one it is ``epoch + 1`` (``global_batch``: the position in the
                          global order under torchrun). Older files: absent (an epoch's end)
``counters``              in the middle of an epoch: its running sums (loss terms weighted by
                          documents, documents, gradient norms, steps, seconds)
``config``                the run's :class:`~xmtc.config.RunConfig` as a dict
``label_names``           the label vocabulary (dataset label id -> name)
``vocab``                 the token vocabulary (token id -> token)
``tokenizer``             ``"word"`` or ``"whitespace"``
``max_src_len``           tokens kept per document
``history``               per-epoch metrics so far (rebuilds ``metrics.json``)
``best``                  ``{"epoch", "micro_f1"}`` of the best validation epoch
========================  =====================================================

``optimizer``, ``scheduler``, ``rng*``, ``world_size``, ``position`` and
``counters`` are in ``checkpoint.pt`` only (``xmtc.train.run_state``).

Writes go to a temporary file in the same directory, are flushed and fsynced,
then renamed over the target (``os.replace``) and the directory fsynced: an
interrupted run (or a second Ctrl-C while saving) never leaves a half-written
checkpoint, and a power cut after :func:`save` returns keeps the new one.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from evaluation.report import atomic_write

FORMAT = "xmtc-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used here (unreadable, other model type, ...); one-line message."""


def save(state: dict, path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically (``evaluation.atomic_write``: temporary file, fsync, rename)."""
    path = Path(path)
    with atomic_write(path, "wb") as f:
        torch.save({"format": FORMAT, **state}, f)
    return path


def load(path: str | os.PathLike, *, model_type: str | None = None, map_location="cpu", mmap: bool = False) -> dict:
    """Read a checkpoint with ``weights_only=True``.

    Parameters
    ----------
    path : checkpoint file.
    model_type : if given, the checkpoint must hold this model type.
    map_location : where tensors go (default CPU; the engine moves the model).
    mmap : map the tensors instead of reading them (fast when only the plain fields are needed).

    Raises
    ------
    CheckpointError
        Missing or unreadable file, not one of ours, or another model type.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as e:  # a damaged or foreign file can fail anywhere in the unpickler
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {first}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an xmtc checkpoint (format {FORMAT!r} expected)")
    if model_type is not None and state.get("model_type") != model_type:
        raise CheckpointError(
            f"checkpoint {path} holds a {state.get('model_type')!r} model, not {model_type!r}; "
            f"use the matching script or another --out directory"
        )
    return state


# --------------------------------------------------------------------------- RNG states
def rng_state() -> dict:
    """Python, numpy (legacy global), torch and CUDA random states, as tensors and primitives."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured (CUDA states only where CUDA is present)."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda = [s.cpu() for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
