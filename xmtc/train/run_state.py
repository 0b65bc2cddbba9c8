"""What a checkpoint holds: the run's state (:func:`run_state`) and the check that it can be resumed.

``xmtc.train.checkpoint`` writes and reads the file (atomically, ``weights_only``);
this module decides its contents: the model's type, config and weights, the
run's config, the data's label names and vocabulary, the history so far and,
for ``checkpoint.pt`` (resuming), the optimiser, LR schedule and RNG states and the
position in the epoch (a mid-epoch checkpoint also holds the epoch's running sums).
:func:`check_resumable` compares a checkpoint's run config with the current
one (device, workers and similar settings may change on resume).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from xmtc.config import RunConfig, compose
from xmtc.registry import model_type_of
from xmtc.train import checkpoint
from xmtc.train.distributed import unwrap

#: Settings that do not make another run: a checkpoint resumes under new values of them, and a results
#: record may be replaced by a run that differs only in them.
MAY_CHANGE_ON_RESUME = {"out", "train.device", "train.num_workers", "train.log_every", "train.eval_batch_size",
                        "train.amp", "train.deterministic", "train.threads", "train.compile", "data.data_dir",
                        "train.checkpoint_interval"}


def flat_settings(d: dict, prefix: str = "") -> dict:
    """``{"net": {"empty_weight": 0.2}}`` -> ``{"net.empty_weight": 0.2}`` (a dataset's ``options`` stay one value)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k != "options":
            out.update(flat_settings(v, key + "."))
        else:
            out[key] = v
    return out


def run_state(model: nn.Module, cfg: RunConfig, dataset, *, epoch: int, history: list, best: dict | None,
              optimizer=None, scheduler=None, position: dict | None = None, counters: dict | None = None,
              rng_ranks: list | None = None) -> dict:
    """Everything a checkpoint holds (tensors and plain containers only; ``xmtc.train.checkpoint`` lists the fields).

    With ``optimizer`` (``checkpoint.pt``): also its state, the LR schedule's, the
    RNG states (``rng_ranks``: every rank's, rank 0's first; default: this
    process's now), ``position`` and, in the middle of an epoch, ``counters``.
    """
    model = unwrap(model)
    state = {
        "model_type": model_type_of(model),
        "model_config": _plain(model.config.to_dict()),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "epoch": int(epoch),
        "config": _plain(cfg.to_dict()),
        "label_names": list(dataset.label_names),
        "vocab": list(dataset.vocab.itos),
        "tokenizer": str(dataset.meta.get("tokenizer", "word")),
        "max_src_len": cfg.data.max_src_len,
        "history": _plain(history),
        "best": _plain(best),
    }
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
        state["scheduler"] = scheduler.state_dict()
        ranks = list(rng_ranks) if rng_ranks else [checkpoint.rng_state()]
        state["rng"] = ranks[0]
        state["rng_ranks"] = ranks
        state["world_size"] = len(ranks)
        if position is not None:
            state["position"] = {k: int(v) for k, v in position.items()}
        if counters is not None:
            state["counters"] = _plain(counters)
    return state


def _plain(obj):
    """JSON-like copy: numpy / torch scalars to python, tuples kept."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, torch.Tensor) and obj.dim() == 0:
        return obj.item()
    return obj


def check_resumable(state: dict, cfg: RunConfig) -> None:
    """The checkpoint was made by the same run settings (device, workers, compiling may change).

    A setting added to the config since the checkpoint was written counts as its default.
    """
    try:
        saved = flat_settings(_plain(compose(saved=state["config"]).to_dict()))
    except Exception:  # noqa: BLE001 -- a setting since removed: compare as saved, the diff names it
        saved = flat_settings(state["config"])
    now = flat_settings(_plain(cfg.to_dict()))
    diffs = [f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(saved) | set(now))
             if k not in MAY_CHANGE_ON_RESUME and _norm(saved.get(k)) != _norm(now.get(k))]
    if diffs:  # e.g. a preset changed since the run started: --config takes the run's own settings
        raise checkpoint.CheckpointError(
            f"cannot resume: the checkpoint was made with other settings ({'; '.join(diffs[:3])}"
            f"{'; ...' if len(diffs) > 3 else ''}); to continue it with its own settings: "
            f"--config {cfg.out or 'RUN_DIR'} --resume")


def _norm(v):
    return list(v) if isinstance(v, tuple) else v


__all__ = ["MAY_CHANGE_ON_RESUME", "check_resumable", "flat_settings", "run_state"]
