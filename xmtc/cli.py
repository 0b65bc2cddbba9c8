"""Command line shared by the example scripts.

``examples/train_*.py`` and ``examples/benchmark.py`` build their parser with
:func:`train_parser`, turn the arguments into a resolved
:class:`~xmtc.config.RunConfig` with :func:`config_from_args`, and run their
``main`` through :func:`run_main`, which turns a user mistake (bad option,
missing data, unreadable embeddings file, checkpoint of another model) into
one line on stderr and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import DATASETS, ConfigError, RunConfig, compose


class OneLineParser(argparse.ArgumentParser):
    """``argparse`` that reports a bad argument as one line (``prog: error: ...``) and exits 2."""

    def error(self, message: str):  # noqa: D401
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _non_negative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return v


def _positive_float(text: str) -> float:
    v = _non_negative_float(text)
    if v == 0:
        raise argparse.ArgumentTypeError("expected a number > 0, got 0")
    return v


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", required=True, choices=DATASETS,
                   help="dataset; its preset is the paper's Table 2 or ours (xmtc/config.py)")
    g.add_argument("--data-dir", help="directory with the dataset files (default: $XMTC_DATA, else ./data)")
    g.add_argument("--embeddings", metavar="PATH", help="GloVe text file (.txt or .txt.gz): word and label embeddings")
    g.add_argument("--max-src-len", type=_positive_int, help="tokens kept per document")
    g.add_argument("--max-train-docs", type=_positive_int, metavar="N", help="first N training documents only")
    g.add_argument("--max-valid-docs", type=_positive_int, metavar="N", help="first N validation documents only")
    g.add_argument("--max-test-docs", type=_positive_int, metavar="N", help="first N test documents only")


def add_train_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--fast", action="store_true", help="small preset that finishes in minutes on a CPU")
    g.add_argument("--epochs", type=_positive_int)
    g.add_argument("--batch-size", type=_positive_int)
    g.add_argument("--lr", type=_positive_float, help="learning rate")
    g.add_argument("--seed", type=int, help="random seed (default 0)")
    g.add_argument("--deterministic", action="store_true", default=None,
                   help="deterministic kernels (torch.use_deterministic_algorithms)")
    g.add_argument("--device", help="auto (default: CUDA when present), cpu, cuda, cuda:1, ...")
    g.add_argument("--num-workers", type=int, help="DataLoader worker processes (default 0)")
    g.add_argument("--threads", type=_positive_int, help="CPU threads for torch (default 1)")


def add_model_args(p: argparse.ArgumentParser, model: str | None) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--hidden-size", type=_positive_int, help="GRU width (paper: 512)")
    g.add_argument("--n-steps", type=_positive_int, metavar="N", help="decoder steps (default: max labels/doc)")
    lc = g.add_mutually_exclusive_group()
    lc.add_argument("--no-lightconv", dest="lightconv", action="store_false", default=None, help="drop LightConv")
    lc.add_argument("--lightconv", dest="lightconv", action="store_true", help="add LightConv (e.g. Seq2Seq+LC)")
    if model in (None, "otseq2set"):
        g.add_argument("--scheme", choices=("all", "first_n"), help="bipartite matching scheme (Eq. 11-12)")
        g.add_argument("--ot-weight", type=_non_negative_float, help="λ of Eq. 17 (0 = BM, no OT loss)")


def add_run_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run directory")
    g.add_argument("--out", metavar="DIR", help="run directory (default: runs/<model>-<data>[-fast])")
    g.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    g.add_argument("--overwrite", action="store_true", help="start afresh in an --out that holds a run")


def train_parser(model: str, description: str) -> argparse.ArgumentParser:
    """The parser of ``examples/train_<model>.py``."""
    p = OneLineParser(prog=f"train_{model}.py", description=description)
    add_data_args(p)
    add_model_args(p, model)
    add_train_args(p)
    add_run_args(p)
    return p


def overrides_from_args(args: argparse.Namespace) -> dict:
    """Config overrides from parsed arguments (``None`` = not given)."""
    a = vars(args)
    return {
        "data": {"data_dir": a.get("data_dir"), "embeddings": a.get("embeddings"), "max_src_len": a.get("max_src_len"),
                 "max_train_docs": a.get("max_train_docs"), "max_valid_docs": a.get("max_valid_docs"),
                 "max_test_docs": a.get("max_test_docs")},
        "net": {"hidden_size": a.get("hidden_size"), "n_steps": a.get("n_steps"), "use_lightconv": a.get("lightconv"),
                "scheme": a.get("scheme"), "ot_weight": a.get("ot_weight")},
        "train": {"epochs": a.get("epochs"), "batch_size": a.get("batch_size"), "lr": a.get("lr"),
                  "seed": a.get("seed"), "deterministic": a.get("deterministic"), "device": a.get("device"),
                  "num_workers": a.get("num_workers"), "threads": a.get("threads")},
    }


def config_from_args(args: argparse.Namespace, model: str) -> RunConfig:
    """Preset of ``--data`` (+ ``--fast``) + the given options -> resolved config, inputs checked."""
    cfg = compose(args.data, model=model, fast=args.fast, overrides=overrides_from_args(args))
    cfg.out = args.out or str(Path("runs") / f"{model}-{args.data}{'-fast' if args.fast else ''}")
    check_inputs(cfg)
    return cfg


def check_inputs(cfg: RunConfig) -> None:
    """Fail early, in one line, on a missing data directory or embeddings file."""
    d = cfg.data
    if d.data_dir is not None and d.name != "synthetic" and not Path(d.data_dir).is_dir():
        raise ConfigError(f"data directory {d.data_dir} does not exist")
    if d.embeddings is not None:
        path = Path(d.embeddings)
        if not path.is_file():
            raise ConfigError(f"embeddings file {path} not found")
        try:
            with open(path, "rb") as f:
                f.read(1)
        except OSError as e:
            raise ConfigError(f"embeddings file {path} is not readable: {e.strerror}") from None


def check_run_dir(cfg: RunConfig, *, resume: bool, overwrite: bool) -> Path:
    """The run directory: must hold a checkpoint to resume, must not hold one to start (unless --overwrite)."""
    out = Path(cfg.out)
    ckpt = out / "checkpoint.pt"
    if resume and not ckpt.is_file():
        raise ConfigError(f"--resume: no checkpoint at {ckpt}")
    if not resume and ckpt.is_file() and not overwrite:
        raise ConfigError(f"{out} already holds a run; use --resume to continue it or --overwrite to start afresh")
    out.mkdir(parents=True, exist_ok=True)
    return out


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean a user mistake, reported in one line."""
    from .checkpoint import CheckpointError
    from .datasets import DataError

    return (ConfigError, CheckpointError, DataError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
            PermissionError, UnicodeDecodeError)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def run_main(fn, argv=None, prog: str | None = None) -> int:
    """Call ``fn(argv)``; map usage errors to exit code 2 with one line on stderr."""
    prog = prog or Path(sys.argv[0]).name
    try:
        code = fn(argv)
    except SystemExit as e:  # argparse: --help (0) or a bad argument (2, already reported)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except user_errors() as e:
        print(f"{prog}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; continue with --resume", file=sys.stderr)
        return 130
    return int(code or 0)
