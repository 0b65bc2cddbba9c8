"""One whole training run: config -> data -> model -> loop -> test -> calibrated set size -> run directory.

:func:`train_run` is the one way the toolkit runs a model: the training scripts
(``examples/train_<model>.py``) and ``examples/benchmark.py`` call it with a
resolved config (:func:`xmtc.config.compose` or the command line) and a
:class:`~xmtc.train.engine.Callbacks` object that draws progress; the library
never prints, so what a script shows of the run (the cache used, the GloVe
coverage, the model's size) reaches it as ``callbacks.on_message(text)``.

The steps, top to bottom::

    dist, threads, device, seeds                  # xmtc.train.distributed, xmtc.train.runtime
    data       = load_data(cfg.data)              # xmtc.data.loading
    embeddings = load_embeddings(cfg, data)       # GloVe words + label names, optional
    model      = build_model(cfg, data, ...)      # xmtc.registry
    write_config(out, cfg)                        # before fit; after it when resuming
    fit(model, data, cfg)                         # xmtc.train.engine: epochs, best.pt, checkpoint.pt
    test       = evaluate(model, data, "test")    # the best epoch on the test split
    calibrated = calibrate(model, data)           # beyond the paper: one dev-chosen threshold τ
    write_metrics(out, ...); write_predictions(out, ...)
"""

from __future__ import annotations

from pathlib import Path

from xmtc import calibration
from xmtc.config import RunConfig
from xmtc.data import datasets
from xmtc.data.loading import load_data, load_embeddings
from xmtc.registry import build_model
from xmtc.train.distributed import init_distributed, unwrap
from xmtc.train.engine import Callbacks, evaluate, fit
from xmtc.train.outcomes import RunResult
from xmtc.train.rundir import (
    run_info,
    summary,
    write_config,
    write_metrics,
    write_predictions,
)
from xmtc.train.runtime import seed_everything, select_device, set_threads


def describe_model(model) -> str:
    """One line on a built model: its class, decoder steps, LightConv, parameters."""
    mc = model.config
    steps = f"N = {mc.n_steps}" if hasattr(mc, "n_steps") else f"at most {mc.max_steps} steps"
    return (f"model: {type(model).__name__}, {steps}, LightConv {'on' if mc.use_lightconv else 'off'}, "
            f"{model.num_parameters():,} parameters")


def train_run(cfg: RunConfig, *, out_dir=None, resume: bool = False, callbacks: Callbacks | None = None,
              calibrate: bool = True) -> RunResult:
    """Train ``cfg.model`` as ``cfg`` says, evaluate its best epoch on test, write the run directory.

    Parameters
    ----------
    cfg : the resolved run config.
    out_dir : the run directory (``config.json``, ``metrics.json``, ``predictions.tsv``,
        ``checkpoint.pt``, ``best.pt``); ``None``: nothing is written.
    resume : continue the run in ``out_dir`` from its ``checkpoint.pt``.
    callbacks : progress hooks (``xmtc.reporting.progress``); default: none.
    calibrate : choose the calibrated set size on dev (``metrics.json["calibrated"]``).

    Under torchrun every rank calls it; rank 0 writes the files.
    """
    cb = callbacks or Callbacks()
    dist = init_distributed()
    set_threads(cfg.train.threads)
    device = select_device(cfg.train.device)
    seed_everything(cfg.train.seed, cfg.train.deterministic)

    data = load_data(cfg.data, seed=cfg.train.seed, progress=cb.on_data)
    if note := datasets.cache_note(data):
        cb.on_message(note)
    if cfg.data.embeddings:
        cb.on_message(f"reading embeddings {cfg.data.embeddings}")
    embeddings = load_embeddings(cfg, data)
    cb.on_message(f"data: {data}")
    if embeddings is not None:
        cb.on_message(f"GloVe {embeddings.path}: words {embeddings.word_coverage}, labels {embeddings.label_coverage}")

    model = build_model(cfg, data, embeddings).to(device)
    cb.on_message(describe_model(model))
    out = Path(out_dir) if out_dir is not None else None
    write = out is not None and dist.is_main
    # resuming: config.json is rewritten only once fit has accepted the settings (a refused
    # resume leaves the run's record as it was)
    if write and not resume:
        write_config(out, cfg, run_info(model, data, device))
    result = fit(model, data, cfg, device=device, out_dir=out, resume=resume, callbacks=cb, dist=dist)
    if write and resume:
        write_config(out, cfg, run_info(model, data, device))

    test, prediction = evaluate(model, data, "test", cfg.train, device=device, label_order=model.label_order,
                                callbacks=cb, dist=dist)
    calibrated = None
    if calibrate and dist.is_main:
        cb.on_message("calibrating the set size: a threshold on the label scores, chosen on the dev split")
        calibrated = calibration.calibrate(unwrap(model), data, cfg.train, device=device)
    if write:
        write_metrics(out, result.history, result.best, test, {**summary(model, result), "calibrated": calibrated})
        write_predictions(out, data.test, prediction, data.label_names)
    stats = {k: v for k, v in data.stats().items() if k != "skipped"}
    return RunResult(cfg, test, result, unwrap(model).num_parameters(), stats, out, calibrated)


__all__ = ["describe_model", "train_run"]
