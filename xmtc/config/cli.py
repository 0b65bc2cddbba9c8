"""Command line shared by the example scripts.

``examples/train_*.py`` and ``examples/benchmark.py`` build their parser with
:func:`train_parser` (or :func:`add_config_args`), turn the arguments into a
resolved :class:`~xmtc.config.RunConfig` with :func:`config_from_args`, and run
their ``main`` through :func:`run_main`, which turns a user mistake (bad option,
missing data, unreadable embeddings file, checkpoint of another model) into
one line on stderr and exit code 2 instead of a traceback, and an interruption
(SIGINT, SIGTERM; ``xmtc.train.stopping``) into a message that says what was saved and
the command that continues, with exit code 130 or 143. :func:`run_directory`
removes a run directory that a failed or interrupted run created before its
first checkpoint.

Every field of the data / net / train configs is settable: by a named flag made
from the dataclass field (``--dropout 0.1``, ``--no-amp``, ``--bottleneck none``;
:func:`add_config_args`) or by ``--set net.dropout=0.1`` (:mod:`xmtc.config.settings`
parses the value by the field's type). ``--config run/config.json`` starts from
a saved run instead of a preset. Later wins: preset < ``--fast`` < ``--config``
< named flags and ``--set`` in command-line order.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from xmtc.config import settings
from xmtc.config.presets import VARIANTS
from xmtc.config.schema import DATASETS, SECTIONS, ConfigError, RunConfig, field_meta
from xmtc.config.settings import compose, flag_of
from xmtc.data.loading import embeddings_path
from xmtc.train.stopping import Interrupted, SavePoint, save_point


class OneLineParser(argparse.ArgumentParser):
    """``argparse`` that reports a bad argument as one line (``prog: error: ...``) and exits 2.

    No abbreviated flags: the flags are generated from the config fields, so a new field
    could silently change what an abbreviation means.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D401
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _int_at_least(lo: int, what: str):
    """An argparse type: an integer >= ``lo`` (``what`` names it in the error)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"expected {what}, got {v}")
        return v

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "an integer >= 0")


def _non_negative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return v


# --------------------------------------------------------------------------- settings as flags
_GROUPS = {"data": "data", "net": "model", "train": "training"}
PRECEDENCE = ("Settings apply in this order, later wins: the preset of --data (paper Table 2 or ours), its variant "
              "(--fast or --preset cpu), the saved run of --config (instead of --data and the variant; its run "
              "directory becomes --out), then the named flags and --set in command-line order.")


class _Assign(argparse.Action):
    """A named flag: parse its value as its field's type and record ``(key, value)`` in ``settings``."""

    def __init__(self, option_strings, dest, key: str, **kw):
        self.key = key
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        if self.nargs == 0:  # --amp / --no-amp
            values = not option_string.startswith("--no-")
        else:
            try:
                values = settings.parse_value(self.key, values)
            except ConfigError as e:
                raise argparse.ArgumentError(self, str(e)) from None
        namespace.settings = [*(getattr(namespace, "settings", None) or []), (self.key, values)]


class _SetAction(argparse.Action):
    """``--set section.field=value``: any field, parsed by its type."""

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            pair = settings.parse_assignment(values)
        except ConfigError as e:
            raise argparse.ArgumentError(self, str(e)) from None
        namespace.settings = [*(getattr(namespace, "settings", None) or []), pair]


def named_flags(model: str | None) -> dict[str, str]:
    """``flag -> key`` of the named flags a script for ``model`` has (``None``: any model).

    From the fields' declarations (``xmtc.config.schema.setting``): a field declared
    with ``flag=False`` has none, one declared ``only`` for some models has it in their
    scripts only.
    """
    out = {}
    for key in settings.keys():
        flag, only = flag_of(key), field_meta(key)["only"]
        if flag is None or (only is not None and model is not None and model not in only):
            continue
        out[flag] = key
    return out


def add_config_args(p: argparse.ArgumentParser, model: str | None, *, reserved: tuple[str, ...] = ()) -> None:
    """``--data``, ``--fast``, ``--config``, ``--set`` and a named flag for every config field.

    The named flags are made from the dataclasses (:mod:`xmtc.config.settings`): a new field
    gets a flag ``--field-name`` (unless that name is taken, e.g. by ``reserved``,
    a script's own flags), typed by its annotation; ``--set`` reaches every field.
    """
    g = p.add_argument_group("configuration", PRECEDENCE)
    g.add_argument("--data", choices=DATASETS,
                   help="dataset; its preset is the paper's Table 2 or ours (xmtc/config/schema.py)")
    g.add_argument("--fast", action="store_true", default=None,
                   help="small preset that finishes in minutes on a CPU (= --preset fast)")
    g.add_argument("--preset", choices=list(VARIANTS), default=None, dest="variant",
                   help="a variant of the dataset's preset: fast (minutes on a CPU) or cpu (the full data "
                        "sized for a 2-core CPU: eurlex57k, reuters)")
    g.add_argument("--config", metavar="PATH",
                   help="re-run a saved run: its config.json (or run directory); flags given with it override it")
    g.add_argument("--set", action=_SetAction, dest="settings", metavar="SECTION.FIELD=VALUE", default=[],
                   help="set any field of the data / net / train config, e.g. --set net.dropout=0.1 "
                        "(repeatable; 'none' for None, data.options.KEY=VALUE for an option); "
                        "the keys are those in [brackets] below")
    taken = set(reserved) | {"--data", "--fast", "--preset", "--config", "--set", "--help"}
    groups = {s: p.add_argument_group(f"{_GROUPS.get(s, s)} settings [{s}.*]") for s in SECTIONS}
    for flag, key in named_flags(model).items():
        if flag in taken:
            continue
        taken.add(flag)
        section, name = key.split(".")
        tp, meta = settings.field_type(key), field_meta(key)
        text = meta["help"] or settings.describe(tp)
        help_ = f"{text} [{key}]".replace("%", "%%")
        base, optional = settings._base(tp)
        if base is bool:  # --amp / --no-amp (None, where allowed, by --set)
            groups[section].add_argument(flag, "--no-" + flag[2:], action=_Assign, key=key, nargs=0,
                                         dest=f"flag_{section}_{name}", help=help_)
        else:
            groups[section].add_argument(flag, action=_Assign, key=key, dest=f"flag_{section}_{name}", help=help_,
                                         metavar=meta["metavar"] or settings.metavar(tp))


def add_run_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run directory")
    g.add_argument("--out", metavar="DIR", help="run directory (default: runs/<model>-<data>[-<variant>])")
    g.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --out, from the batch after its last checkpoint")
    g.add_argument("--overwrite", action="store_true", help="start afresh in an --out that holds a run")


def add_progress_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("progress")
    g.add_argument("--progress", choices=("auto", "bars", "lines"), default="auto",
                   help="bars: rich progress bars; lines: a plain line at intervals, for log files "
                        "(nohup, cluster jobs); auto (default): bars on a terminal, else lines")
    g.add_argument("--log-interval", type=_non_negative_float, default=60.0, metavar="SECONDS",
                   help="with lines: a progress line at least this often while training or predicting (default 60)")
    g.add_argument("--log-batches", type=_non_negative_int, default=0, metavar="K",
                   help="with lines: also a line every K batches (default 0: by time only); the engine reports every "
                        "--log-every batches, so lines come at multiples of both")


def train_parser(model: str, description: str) -> argparse.ArgumentParser:
    """The parser of ``examples/train_<model>.py``."""
    p = OneLineParser(prog=f"train_{model}.py", description=description)
    add_config_args(p, model, reserved=("--out", "--resume", "--overwrite", "--progress", "--log-interval",
                                        "--log-batches"))
    add_run_args(p)
    add_progress_args(p)
    return p


def config_from_args(args: argparse.Namespace, model: str, *, other_model: bool = False) -> RunConfig:
    """The resolved config of parsed arguments (:func:`xmtc.config.settings.compose`), inputs checked.

    Preset of ``--data`` (+ ``--fast`` / ``--preset``), or the saved run of
    ``--config``; then the named flags and ``--set`` in command-line order; then
    ``--out``. With ``other_model=False`` a ``--config`` of another model is an error.
    """
    pairs = getattr(args, "settings", None) or []
    if getattr(args, "config", None):
        given = Path(args.config)
        saved = settings.read_config(given)
        if args.data is not None and args.data != saved.preset:
            raise ConfigError(f"--data {args.data} with --config of a {saved.preset} run; drop --data "
                              f"(--set data.FIELD=VALUE changes the saved data settings)")
        if args.fast is not None and args.fast != saved.fast:
            raise ConfigError("--fast with --config of a run without it; drop --fast")
        if getattr(args, "variant", None) is not None and args.variant != saved.variant:
            raise ConfigError(f"--preset {args.variant} with --config of a run of preset "
                              f"{saved.variant or 'default'}; drop --preset")
        if saved.model != model and not other_model:
            raise ConfigError(f"--config holds a {saved.model} run, not {model}; use train_{saved.model}.py")
        # the run directory is the one the config was read from, not the "out" saved in it (a
        # copied record, e.g. results/<dataset>/<run>, must not point at another machine's run)
        cfg = compose(model=model, saved=saved.to_dict(), settings=pairs,
                      out=args.out or str(given if given.is_dir() else given.parent))
    elif args.data is None:
        raise ConfigError("give --data NAME (a preset) or --config PATH (a saved run)")
    else:
        variant = getattr(args, "variant", None)
        cfg = compose(args.data, model=model, fast=bool(args.fast), variant=variant, settings=pairs,
                      out=getattr(args, "out", None))
        if cfg.out is None:
            cfg.out = str(Path("runs") / f"{model}-{cfg.preset}{f'-{cfg.variant}' if cfg.variant else ''}")
    check_inputs(cfg)
    return cfg


def check_inputs(cfg: RunConfig) -> None:
    """Fail early, in one line, on a missing data directory or embeddings file."""
    d = cfg.data
    if d.data_dir is not None and d.name != "synthetic" and not Path(d.data_dir).is_dir():
        raise ConfigError(f"data directory {d.data_dir} does not exist")
    if d.embeddings:
        path = embeddings_path(cfg)
        if not path.is_file():
            raise ConfigError(f"embeddings file {d.embeddings} not found (looked as given and in the data directory)")
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
    from xmtc.data.datasets import DataError
    from xmtc.train.checkpoint import CheckpointError

    return (ConfigError, CheckpointError, DataError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
            PermissionError, UnicodeDecodeError)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def _is_rank_zero() -> bool:
    """Rank 0 under torchrun (``RANK``), or no torchrun."""
    return os.environ.get("RANK", "0") == "0"


def _run_checkpoint(ckpt: Path, *, resume: bool, since: float) -> SavePoint | None:
    """What ``ckpt`` holds if a ``--resume`` of this run would continue from it (None: nothing of this run)."""
    if not ckpt.is_file() or not (resume or ckpt.stat().st_mtime >= since):
        return None  # absent, or an older run's (--overwrite) that this run has not replaced yet
    from xmtc.train.checkpoint import CheckpointError, load

    try:
        return save_point(load(ckpt, mmap=True), ckpt)
    except (CheckpointError, KeyError, TypeError, ValueError):
        return None


@contextmanager
def run_directory(cfg: RunConfig, *, resume: bool, overwrite: bool):
    """:func:`check_run_dir` around a whole run (``with ... as out``).

    When the run fails or is interrupted before its first checkpoint, the run
    directory is removed if this run created it (never one that existed before;
    rank 0 under torchrun). An interruption that reaches here without a
    :class:`~xmtc.train.stopping.SavePoint` (Ctrl-C while loading data, or after
    training, during the test evaluation) gets the one of ``checkpoint.pt`` if a
    ``--resume`` of this run continues from it.
    """
    existed = Path(cfg.out).exists()
    since = time.time()
    out = check_run_dir(cfg, resume=resume, overwrite=overwrite)
    ckpt = out / "checkpoint.pt"
    try:
        yield out
    except BaseException as e:
        exc = e
        if isinstance(e, KeyboardInterrupt) and getattr(e, "saved", None) is None:
            exc = Interrupted(getattr(e, "signum", signal.SIGINT), _run_checkpoint(ckpt, resume=resume, since=since))
        if not existed and _is_rank_zero() and not ckpt.is_file():
            shutil.rmtree(out, ignore_errors=True)
            exc.removed_run_dir = out
        if exc is e:
            raise
        raise exc from e


def resume_command(argv=None, prog: str = "") -> str:
    """The command line that continues this run: its arguments with ``--resume`` (and without ``--overwrite``).

    ``argv=None``: ``sys.argv`` (the script as it was started), else ``prog`` with
    ``argv``; under torchrun, launched by ``torchrun --nproc-per-node N``.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    script = sys.argv[0] if argv is None else prog
    args = [a for a in args if a != "--overwrite"] + ([] if "--resume" in args else ["--resume"])
    if "LOCAL_WORLD_SIZE" in os.environ and "TORCHELASTIC_RUN_ID" in os.environ:
        launcher = ["torchrun", f"--nproc-per-node={os.environ['LOCAL_WORLD_SIZE']}"]
    else:
        launcher = ["python"]
    return shlex.join(launcher + [script] + args)


def interrupt_message(prog: str, exc: Interrupted, command: str) -> str:
    """What the script prints when interrupted: the signal, what was saved and where, the command that continues."""
    head = f"{prog}: interrupted by {exc.signal_name}"
    removed = getattr(exc, "removed_run_dir", None)
    if exc.saved is None:
        return (f"{head} before anything was saved: no checkpoint, nothing to resume"
                + (f" (removed the run directory {removed} it had created)" if removed else ""))
    return (f"{head}; saved {exc.saved.describe()} to {exc.saved.path}\n"
            f"{prog}: continue with: {command}")


def _raise_interrupted(signum, frame):  # noqa: ARG001 -- the signal module's signature
    raise Interrupted(signum)


def run_main(fn, argv=None, prog: str | None = None) -> int:
    """Call ``fn(argv)``; map usage errors to exit code 2 with one line on stderr, interruptions to 130 / 143.

    SIGTERM raises :class:`~xmtc.train.stopping.Interrupted` while ``fn`` runs (main
    thread), as Ctrl-C raises ``KeyboardInterrupt``, so that a terminated run is
    reported and cleaned up like an interrupted one (``xmtc.train.engine.fit`` installs
    its own handlers, which finish the batch and save, while it trains).
    """
    prog = prog or Path(sys.argv[0]).name
    command = resume_command(argv, prog)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_interrupted) if main_thread else None
    try:
        code = fn(argv)
    except SystemExit as e:  # argparse: --help (0) or a bad argument (2, already reported)
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except user_errors() as e:
        print(f"{prog}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        exc = e if isinstance(e, Interrupted) else Interrupted(signal.SIGINT)
        if hasattr(e, "removed_run_dir"):
            exc.removed_run_dir = e.removed_run_dir
        if _is_rank_zero():
            print(interrupt_message(prog, exc, command), file=sys.stderr)
        return exc.exit_code
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    return int(code or 0)
