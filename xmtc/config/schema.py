"""What a run is: the dataclasses of its config, each field with its help, limits and choices.

A run is described by one :class:`RunConfig` made of three sections, each
owning its defaults (DESIGN.md §5, minGPT's ``get_config``):

- :class:`DataConfig` — which dataset, where, how much of it, GloVe file;
- :class:`NetConfig` — network size and the OTSeq2Set switches (LightConv,
  bottleneck, ``N``, matching scheme, loss weights);
- :class:`TrainConfig` — the optimisation recipe of the paper (Section 3.4):
  Adam, cosine annealing over the epochs, gradient norm clipped at 8,
  U(-0.1, 0.1) initialisation; seed, device, threads, checkpoints.

Every field is declared once, with :func:`setting`: its default, its help, its
allowed range (:class:`Limit`) and, for a ``Literal`` annotation, its choices
(the way Hugging Face's argument dataclasses carry their metadata). The command
line's named flags and their help (:mod:`xmtc.config.cli`), ``--set`` and a
saved ``config.json`` (:mod:`xmtc.config.settings`) and the error messages
(:func:`check_limit`, :func:`validate`) are generated from these declarations,
so a field added here is documented, settable and checked everywhere.

The presets (the paper's Table 2 and ours) live in :mod:`xmtc.config.presets`;
one function, :func:`xmtc.config.settings.compose`, builds a run's config from
preset, variant, saved config and overrides.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Literal

#: Model names the engine knows (``xmtc.registry.model_registry``).
MODEL_NAMES = ("otseq2set", "seq2seq", "mlc2seq", "sgm")
#: Dataset names with a preset (same names as ``xmtc.data.datasets.load``).
DATASETS = ("eurlex", "wiki10", "amazoncat", "amazon670k", "eurlex57k", "reuters", "synthetic")


class ConfigError(ValueError):
    """A bad setting (unknown dataset, impossible value); the message is one line."""


@dataclass(frozen=True)
class Limit:
    """The allowed range of a numeric field: ``low <= v`` (``low < v`` if ``low_open``), ``v < high``.

    ``None`` passes wherever the field's annotation allows it.
    """

    low: float | None = None
    low_open: bool = False
    high: float | None = None

    def __call__(self, v) -> bool:
        if v is None:
            return True
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        return self.high is None or v < self.high

    def __str__(self) -> str:
        if self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low}, {self.high})"
        return f"{'>' if self.low_open else '>='} {self.low}"


AT_LEAST_1 = Limit(1)
AT_LEAST_0 = Limit(0)
POSITIVE = Limit(0, low_open=True)
FRACTION = Limit(0, high=1)


def setting(default=MISSING, help: str = "", *, factory=MISSING, limit: Limit | None = None,  # noqa: A002
            flag: str | bool | None = None, metavar: str | None = None, only: tuple[str, ...] | None = None):
    """A config field declared with everything the command line and the checks need.

    Parameters
    ----------
    default, factory : the default value (``factory``: a callable, for a ``dict``).
    help : one line for ``--help`` (the annotation's type is added by the CLI).
    limit : the allowed range (:class:`Limit`); choices come from a ``Literal`` annotation.
    flag : the named flag; ``None``: ``--field-name``; a string: that flag; ``False``: none
        (``--set section.field=VALUE`` still reaches it).
    metavar : the placeholder of the flag's value when clearer than the type's (``DIR``).
    only : the models whose scripts have the named flag (``None``: every model).
    """
    metadata = {"help": help, "limit": limit, "flag": flag, "metavar": metavar, "only": only}
    return field(default=default, default_factory=factory, metadata=metadata)


@dataclass
class DataConfig:
    """What to read: the dataset, its directory, how much of it, the GloVe file."""

    name: str = setting("synthetic", "dataset name (xmtc.data.datasets.load); chosen with --data", flag=False)
    data_dir: str | None = setting(None, "directory with the dataset files (default: $XMTC_DATA, else ./data)",
                                   metavar="DIR")
    # every preset sets it (xmtc.config.presets); xmtc.data.loading.load_data hands it to the loaders
    max_src_len: int | None = setting(None, "tokens kept per document, the first ones (none = all)",
                                      limit=AT_LEAST_1)
    max_train_docs: int | None = setting(None, "first N training documents only", limit=AT_LEAST_1)
    max_valid_docs: int | None = setting(None, "first N validation documents only", limit=AT_LEAST_1)
    max_test_docs: int | None = setting(None, "first N test documents only", limit=AT_LEAST_1)
    valid_fraction: float = setting(0.1, "hold-out of the training split for validation (datasets without a dev "
                                         "split)", limit=FRACTION)
    embeddings: str | None = setting(None, "GloVe text file (.txt or .txt.gz): word and label embeddings; sets "
                                           "--embed-dim", metavar="PATH")
    options: dict = setting(help="source options of xmtc.data.datasets.load (e.g. the synthetic sizes); "
                                 "--set data.options.KEY=VALUE", factory=dict, flag=False)


#: Settings of the set model's loss: named flags in the scripts that train one.
_SET_MODEL = ("otseq2set",)


@dataclass
class NetConfig:
    """Network and loss settings (paper Section 3.4 and Table 2)."""

    embed_dim: int = setting(300, "word embedding width (a GloVe file sets it to its dimension)", limit=AT_LEAST_1)
    label_embed_dim: int | None = setting(None, "label embedding width (none = --embed-dim)", limit=AT_LEAST_1)
    hidden_size: int = setting(512, "GRU width (paper: 512)", limit=AT_LEAST_1)
    encoder_layers: int = setting(2, "encoder GRU layers (paper: 2)", limit=AT_LEAST_1)
    dropout: float = setting(0.2, "dropout probability (paper: 0.2)", limit=FRACTION)
    use_lightconv: bool | None = setting(None, "add / drop LightConv (default: on for OTSeq2Set, off for the "
                                               "baselines)", flag="--lightconv")
    last_stride: int = setting(3, "stride of the last LightConv layer (paper: 3; 4 for Wiki10-31K)",
                               limit=AT_LEAST_1)
    bottleneck: int | None = setting(None, "output bottleneck size b (Eq. 10); none = no bottleneck",
                                     limit=AT_LEAST_1)
    n_steps: int | None = setting(None, "decoder steps N (none = the largest label set of a training document)",
                                  limit=AT_LEAST_1)
    scheme: Literal["all", "first_n"] = setting("all", "bipartite matching scheme (Eq. 11-12)", only=_SET_MODEL)
    ot_weight: float = setting(8.0, "λ of Eq. 17 (0 = BM, no OT loss)", limit=AT_LEAST_0, only=_SET_MODEL)
    # the paper's λ_∅; losses.set_loss.EMPTY_WEIGHT is the same value as the loss's own default
    empty_weight: float = setting(0.2, "λ_∅, weight of the empty label in the matching loss (Eq. 13; paper: 0.2)",
                                  limit=AT_LEAST_0, only=_SET_MODEL)
    ipot_iter: int = setting(50, "IPOT outer iterations (paper: 50)", limit=AT_LEAST_1, only=_SET_MODEL)
    label_embeddings_from_names: bool = setting(True, "label embeddings from the GloVe vectors of the label names "
                                                      "(off for Amazon-670K, whose label names are item ids)")
    # where the authors' code and this toolkit's first version differ (models.backbone.BackboneConfig,
    # docs/fidelity.md); the defaults are the authors'
    dropout_sites: Literal["authors", "all"] = setting(
        "authors", "authors (default): dropout on word embeddings, between encoder GRU layers and on the decoder's "
                   "input label embedding; all: also encoder outputs, LightConv, the output layer's input "
                   "(docs/fidelity.md)")
    lightconv_style: Literal["authors", "heads"] = setting(
        "authors", "authors (default): one kernel per channel, no padding, ReLU after every layer; heads: shared "
                   "kernels, 'same' padding (docs/fidelity.md)")
    empty_init: Literal["zero", "uniform"] = setting(
        "zero", "zero (default): the empty label's embedding starts at 0, as the authors'; uniform: U(-r, r) like "
                "the other rows (docs/fidelity.md)")

    def lightconv(self, model: str) -> bool:
        """Whether ``model`` trains with LightConv under these settings (``use_lightconv`` or its default)."""
        return self.use_lightconv if self.use_lightconv is not None else model == "otseq2set"


@dataclass
class TrainConfig:
    """Optimisation recipe (paper Section 3.4) and run mechanics."""

    epochs: int = setting(20, "training epochs", limit=AT_LEAST_1)
    batch_size: int = setting(32, "training batch size (the global batch under torchrun)", limit=AT_LEAST_1)
    eval_batch_size: int = setting(128, "batch size for validation / test prediction", limit=AT_LEAST_1)
    lr: float = setting(1e-3, "learning rate (Adam, cosine annealing over the epochs)", limit=POSITIVE)
    grad_clip: float = setting(8.0, "gradient norm clip (paper: 8)", limit=POSITIVE)
    init_range: float = setting(0.1, "weights drawn from U(-r, r) (paper: 0.1)", limit=AT_LEAST_0)
    # the order of training batches depends only on (seed, epoch), so a resumed run replays the same batches
    seed: int = setting(0, "random seed of python, numpy and torch (default 0)", limit=AT_LEAST_0)
    deterministic: bool = setting(False, "deterministic kernels (torch.use_deterministic_algorithms; slower on "
                                         "CUDA)")
    device: str = setting("auto", "auto (default: CUDA when present), cpu, cuda, cuda:1, ...", metavar="DEVICE")
    # off by default: the authors train in float32, and under bf16 near-ties of the student-forced
    # argmax go to id 0 (∅)
    amp: bool = setting(False, "bf16 autocast on CUDA (ignored on CPU; default off: float32 as the authors)")
    num_workers: int = setting(0, "DataLoader worker processes (default 0: load in the main process, "
                                  "deterministic)", limit=AT_LEAST_0)
    bucket: bool = setting(True, "batch documents of similar length (less padding, same epoch order for a seed)")
    log_every: int = setting(1, "batches between progress updates", limit=AT_LEAST_1)
    # the decoder runs many small operations for which intra-op threads cost more than they give
    # on a CPU (real training, 2-core machine: 1 thread 49.6 docs/s, 2 threads 9.6, torchrun 2
    # processes x 1 thread 45.9; docs/cpu.md)
    threads: int | None = setting(1, "CPU threads for torch (default 1; none = torch's default)", limit=AT_LEAST_1)
    compile: bool = setting(False, "CPU: the decoder attention compiled by torch.compile (~10% faster OTSeq2Set "
                                   "steps after seconds of compiling; default off, for long runs)")
    checkpoint_interval: float = setting(
        10.0, "minutes between mid-epoch checkpoints, so a killed run loses at most that (default 10; 0 = at "
              "epoch ends only); Ctrl-C / SIGTERM always save one", limit=AT_LEAST_0, metavar="MINUTES")


#: The three parts of a run's config, by the section name of their keys (``net.dropout``).
SECTIONS: dict[str, type] = {"data": DataConfig, "net": NetConfig, "train": TrainConfig}


@dataclass
class RunConfig:
    """Everything a run needs; saved as ``config.json``.

    Build one with :func:`xmtc.config.settings.compose` (preset + variant + saved
    config + overrides); ``compose(saved=cfg.to_dict())`` reads back what
    :meth:`to_dict` wrote.
    """

    model: str = "otseq2set"
    preset: str = "synthetic"
    variant: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    net: NetConfig = field(default_factory=NetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str | None = None

    @property
    def fast(self) -> bool:
        """The ``--fast`` variant (``variant == "fast"``)."""
        return self.variant == "fast"

    def to_dict(self) -> dict:
        """Plain nested dict (JSON-ready, checkpoint-safe)."""
        return asdict(self)


# --------------------------------------------------------------------------- limits and checks
def field_meta(key: str) -> dict:
    """The :func:`setting` metadata of ``section.field``."""
    section, name = key.split(".")
    for f in fields(SECTIONS[section]):
        if f.name == name:
            return dict(f.metadata)
    raise KeyError(key)


def limits() -> dict[str, Limit]:
    """``section.field -> Limit`` of every field declared with one."""
    return {f"{s}.{f.name}": f.metadata["limit"] for s, cls in SECTIONS.items() for f in fields(cls)
            if f.metadata.get("limit") is not None}


def check_limit(key: str, value) -> None:
    """Raise :class:`ConfigError` if ``value`` is outside the limit of ``key`` (``section.field``)."""
    limit = field_meta(key).get("limit") if key.count(".") == 1 else None
    if limit is None:
        return
    if isinstance(value, float) and not math.isfinite(value) or not limit(value):
        raise ConfigError(f"{key} must be {limit}, got {value!r}")


def validate(cfg: RunConfig) -> None:
    """Raise :class:`ConfigError` (one line) on an impossible setting."""
    from typing import get_args, get_type_hints

    for section, cls in SECTIONS.items():
        hints = get_type_hints(cls)
        for f in fields(cls):
            key, value = f"{section}.{f.name}", getattr(getattr(cfg, section), f.name)
            check_limit(key, value)
            choices = get_args(hints[f.name]) if getattr(hints[f.name], "__origin__", None) is Literal else ()
            if choices and value not in choices:
                raise ConfigError(f"{key} must be one of {', '.join(map(str, choices))}, got {value!r}")
    if cfg.model not in MODEL_NAMES:
        raise ConfigError(f"unknown model {cfg.model!r}; choose one of {', '.join(MODEL_NAMES)}")
    if cfg.data.name != cfg.preset:
        raise ConfigError(f"data.name {cfg.data.name!r} under the {cfg.preset} preset: choose the dataset with "
                          f"--data (its preset comes with it)")


__all__ = ["DATASETS", "MODEL_NAMES", "SECTIONS", "ConfigError", "DataConfig", "Limit", "NetConfig", "RunConfig",
           "TrainConfig", "check_limit", "field_meta", "limits", "setting", "validate"]
