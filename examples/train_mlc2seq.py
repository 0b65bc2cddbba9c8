"""Train and evaluate MLC2Seq (Nam et al., 2017): Seq2Seq over labels sorted from frequent to rare.

    python examples/train_mlc2seq.py --data reuters --fast           # minutes on a CPU
    python examples/train_mlc2seq.py --data eurlex --embeddings glove.840B.300d.txt
    python examples/train_mlc2seq.py --data reuters --fast --resume  # continue an interrupted run

The steps, top to bottom: config -> data -> model -> loss -> loop ->
evaluation -> save. The run directory (``--out``, default
``runs/mlc2seq-<data>[-fast]``) receives ``config.json``, ``metrics.json``
(every epoch; the test metrics under ``test``), ``predictions.tsv``,
``checkpoint.pt`` (last epoch, for ``--resume``) and ``best.pt`` (best
validation micro-F1, for ``examples/predict.py``).
"""

from __future__ import annotations

import sys

from rich.console import Console

from evaluation import render_table
from xmtc import cli, engine
from xmtc.progress import RichProgress, config_table

MODEL = "mlc2seq"


def _main(argv) -> int:
    # 1. config: the dataset's preset (paper Table 2), --fast, then the command line
    args = cli.train_parser(MODEL, __doc__.splitlines()[0]).parse_args(argv)
    cfg = cli.config_from_args(args, MODEL)
    out = cli.check_run_dir(cfg, resume=args.resume, overwrite=args.overwrite)
    dist = engine.init_distributed()  # under torchrun: one process per GPU (or CPU slot); rank 0 reports
    engine.set_threads(cfg.train.threads)
    device = engine.select_device(cfg.train.device)
    engine.seed_everything(cfg.train.seed, cfg.train.deterministic)
    console = Console(quiet=not dist.is_main)
    console.print(config_table(cfg.to_dict(), title=f"{MODEL} on {cfg.data.name} (device {device}"
                                                    f"{f', {dist.world_size} processes' if dist.active else ''})"))

    with RichProgress(console, enabled=dist.is_main) as progress:
        # 2. data: tokenised splits, vocabulary and label ids from the training split
        data = engine.load_data(cfg.data, seed=cfg.train.seed, progress=progress.on_data)
        embeddings = engine.load_embeddings(cfg, data)  # GloVe words + label names, if --embeddings
        progress.log(f"data: {data}")
        if embeddings is not None:
            progress.log(f"GloVe {embeddings.path}: words {embeddings.word_coverage}, "
                         f"labels {embeddings.label_coverage}")

        # 3. model: BiGRU encoder + attention GRU decoder (LightConv with --lightconv), greedy until EOS
        model = engine.build_model(cfg, data, embeddings).to(device)
        progress.log(f"model: {type(model).__name__}, at most {model.config.max_steps} steps, "
                     f"LightConv {'on' if model.config.use_lightconv else 'off'}, "
                     f"{model.num_parameters():,} parameters")
        if dist.is_main:
            engine.write_config(out, cfg, engine.run_info(model, data, device))

        # 4. loss: model.compute_loss(batch) = token cross-entropy, labels frequent to rare, then EOS (teacher forcing)
        # 5. loop: Adam, cosine annealing, clip 8; validation each epoch, best.pt by micro-F1
        result = engine.fit(model, data, cfg, device=device, out_dir=out, resume=args.resume, callbacks=progress)

        # 6. evaluation of the best epoch on the test split
        test, prediction = engine.evaluate(model, data, "test", cfg.train, device=device,
                                           label_order=model.label_order, callbacks=progress)

    # 7. save: metrics.json (every epoch + "test") and predictions.tsv
    if dist.is_main:
        engine.write_metrics(out, result.history, result.best, test, engine.summary(model, result))
        engine.write_predictions(out, data.test, prediction, data.label_names)
    console.print(render_table(test, title=f"{MODEL} on {cfg.data.name}: test (best epoch {result.best['epoch']})"))
    console.print(f"training time {result.train_time_s:.1f}s; run directory {out}")
    return 0


def main(argv=None) -> int:
    """Entry point; returns the exit code (2 with one line on stderr for a usage error)."""
    return cli.run_main(_main, argv, prog="train_mlc2seq.py")


if __name__ == "__main__":
    sys.exit(main())
