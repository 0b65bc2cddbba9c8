"""Train and evaluate OTSeq2Set (Cao & Zhang, EMNLP 2022) on one dataset.

    python examples/train_otseq2set.py --data reuters --fast           # minutes on a CPU
    python examples/train_otseq2set.py --data eurlex --embeddings glove.840B.300d.txt
    python examples/train_otseq2set.py --data reuters --fast --resume  # continue an interrupted run
    python examples/train_otseq2set.py --data reuters --fast --dropout 0.1 --set net.empty_weight=0.5
    python examples/train_otseq2set.py --config runs/otseq2set-reuters-fast/config.json --seed 1 --out runs/seed1
    nohup python examples/train_otseq2set.py --data eurlex57k > train.log 2>&1 &  # progress lines every 60 s

Every field of the data / net / train configs is settable: a named flag per field
(``--help`` lists them) or ``--set section.field=value``; ``--config`` starts from a
saved run's ``config.json``. Later wins: preset < ``--fast`` < ``--config`` < flags.

The steps, top to bottom: config -> data -> model -> loss -> loop ->
evaluation -> calibrated set size -> save; the config is built here from the
command line, the rest is one call of ``xmtc.run.train_run`` (which
``examples/benchmark.py`` makes too). The run directory (``--out``, default
``runs/otseq2set-<data>[-fast]``) receives ``config.json``, ``metrics.json``
(every epoch; the test metrics under ``test``), ``predictions.tsv``,
``checkpoint.pt`` (for ``--resume``: the last epoch's end, or a batch within an
epoch: every ``--checkpoint-interval`` minutes, and where Ctrl-C or SIGTERM
stopped the run) and ``best.pt`` (best validation micro-F1, for
``examples/predict.py``).

The baselines' scripts (``train_seq2seq.py``, ``train_mlc2seq.py``,
``train_sgm.py``) run these same steps through :func:`run` with their model.
"""

from __future__ import annotations

import sys

from rich.console import Console

from evaluation import render_table
from xmtc.run import train_run
from xmtc.config import cli
from xmtc.reporting.progress import config_table, make_progress
from xmtc.train import distributed, runtime

MODEL = "otseq2set"


def train(name: str, argv, description: str) -> int:
    """The eight steps for any registered model (``otseq2set``, ``seq2seq``, ``mlc2seq``, ``sgm``)."""
    # 1. config: the dataset's preset (paper Table 2), --fast, then the command line
    args = cli.train_parser(name, description).parse_args(argv)
    cfg = cli.config_from_args(args, name)
    # the run directory; removed again if this run created it and fails or is interrupted before
    # its first checkpoint. Ctrl-C / SIGTERM while training: the engine finishes the batch, saves
    # checkpoint.pt and raises xmtc.train.stopping.Interrupted; cli.run_main prints what was saved and
    # the command that continues, and exits 130 / 143
    with cli.run_directory(cfg, resume=args.resume, overwrite=args.overwrite) as out:
        return _train(name, args, cfg, out)


def _train(name: str, args, cfg, out) -> int:
    """Steps 2 to 8 in the run directory ``out``, through ``xmtc.run.train_run``."""
    dist = distributed.init_distributed()  # under torchrun: one process per GPU (or CPU slot); rank 0 reports
    device = runtime.select_device(cfg.train.device)
    console = Console(quiet=not dist.is_main)
    console.print(config_table(cfg.to_dict(), title=f"{name} on {cfg.data.name} (device {device}"
                                                    f"{f', {dist.world_size} processes' if dist.active else ''})"))

    # progress: rich bars on a terminal, plain time-stamped lines in a log file (--progress)
    with make_progress(console, args.progress, interval=args.log_interval, every=args.log_batches,
                       enabled=dist.is_main) as progress:
        # 2. data: tokenised splits, vocabulary and label ids from the training split; GloVe if --embeddings
        # 3. model: BiGRU encoder + attention GRU decoder. OTSeq2Set adds LightConv and
        #    decodes N steps (student forcing); the baselines decode greedily until EOS
        # 4. loss: model.compute_loss(batch); for OTSeq2Set bipartite matching NLL + λ·OT (Eq. 17),
        #    for the baselines token cross-entropy over their label order, then EOS (teacher forcing)
        # 5. loop: Adam, cosine annealing, clip 8; validation each epoch, best.pt by micro-F1
        # 6. evaluation of the best epoch on the test split
        # 7. beyond the paper: the set size re-decided by one threshold τ chosen on dev (score >= τ)
        # 8. save: metrics.json (every epoch, "test" and "calibrated") and predictions.tsv
        res = train_run(cfg, out_dir=out, resume=args.resume, callbacks=progress)

    test, calibrated = res.test, res.calibrated
    console.print(render_table(test, title=f"{name} on {cfg.data.name}: test (best epoch {res.fit.best['epoch']})"))
    if calibrated is not None:
        tau = calibrated["tau"]
        rule = "decoded sets kept (no threshold did better on dev)" if tau is None else f"score >= {tau:g}"
        console.print(f"test micro-P/R/F1 decoded {100 * test['micro_precision']:.2f} / "
                      f"{100 * test['micro_recall']:.2f} / {100 * test['micro_f1']:.2f}; calibrated ({rule}) "
                      f"{100 * calibrated['test']['micro_precision']:.2f} / "
                      f"{100 * calibrated['test']['micro_recall']:.2f} / {100 * calibrated['test']['micro_f1']:.2f}")
    console.print(f"training time {res.fit.train_time_s:.1f}s; run directory {out}")
    return 0


def run(name: str, argv=None, doc: str = __doc__) -> int:
    """Train ``name``; ``doc``'s first line is the ``--help`` description.

    Returns the exit code (2 with one line on stderr for a usage error).
    """
    return cli.run_main(lambda a: train(name, a, doc.splitlines()[0]), argv, prog=f"train_{name}.py")


def main(argv=None) -> int:
    """Entry point; returns the exit code (2 with one line on stderr for a usage error)."""
    return run(MODEL, argv)


if __name__ == "__main__":
    sys.exit(main())
