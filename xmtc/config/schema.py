"""Run configuration: dataclasses, the paper's presets, and how a script composes them.

A run is described by one :class:`RunConfig` made of three parts, each owning
its defaults (DESIGN.md §5, minGPT's ``get_config``):

- :class:`DataConfig` — which dataset, where, how much of it, GloVe file;
- :class:`NetConfig` — network size and the OTSeq2Set switches (LightConv,
  bottleneck, ``N``, matching scheme, loss weights);
- :class:`TrainConfig` — the optimisation recipe of the paper (Section 3.4):
  Adam, cosine annealing over the epochs, gradient norm clipped at 8,
  U(-0.1, 0.1) initialisation, dropout 0.2; seed, device, bf16 autocast.

:data:`PRESETS` holds Table 2 of the paper (DESIGN.md §2) for Eurlex-4K,
Wiki10-31K, AmazonCat-13K and Amazon-670K, and our settings for EURLEX57K,
Reuters-21578 and the synthetic set. :data:`VARIANTS` holds, per dataset, the
changes of each variant of its preset: ``fast`` (:data:`FAST`, minutes on a
laptop CPU) and ``cpu`` (:data:`CPU`, the full data sized for a 2-core CPU:
EURLEX57K and Reuters). :func:`compose`
applies preset, variant and overrides, in that order, and returns the
resolved config that scripts print and save as ``config.json``; the scripts'
command line reaches every field by its key (``--set net.dropout=0.1``, named
flags, a saved ``config.json``) through :mod:`xmtc.config.settings`. :data:`LIMITS`
holds the allowed range of each numeric field (a ``Literal`` field's type lists its
choices), checked by :func:`validate`.

Reuters-21578 (our choice, not in the paper): ``N = 15`` (the largest label
set of a ModApte training document; ``n_steps=None`` reads it from the data),
source cut at 300 tokens (the 90th percentile of document length is 308, the
median 94), 15 epochs of batch 32 at lr 1e-3, matching scheme ``all``
(documents have 1.23 labels on average, so most of the ``N`` steps learn ∅
and ``all`` lets the model place a label at any step), the rest as Eurlex-4K.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Literal

#: Model names the engine knows (``xmtc.train.engine.MODELS``).
MODEL_NAMES = ("otseq2set", "seq2seq", "mlc2seq", "sgm")
#: Dataset names with a preset (same names as ``xmtc.data.datasets.load``).
DATASETS = ("eurlex", "wiki10", "amazoncat", "amazon670k", "eurlex57k", "reuters", "synthetic")


class ConfigError(ValueError):
    """A bad setting (unknown dataset, impossible value); the message is one line."""


@dataclass
class DataConfig:
    """What to read.

    name : dataset name (``xmtc.data.datasets.load``).
    data_dir : directory of the source files; ``None`` = ``$XMTC_DATA``, else ``./data``.
    max_src_len : keep the first tokens of each document (``None`` = the dataset's default).
    max_train_docs, max_valid_docs, max_test_docs : keep only the first documents of
        a split (quick runs and tests); ``None`` keeps all.
    valid_fraction : hold-out of the training split as validation (datasets without a dev split).
    embeddings : GloVe text file; word and label embeddings are initialised from it
        and ``embed_dim`` becomes its dimension.
    options : source options passed to ``xmtc.data.datasets.load`` (e.g. synthetic sizes).
    """

    name: str = "synthetic"
    data_dir: str | None = None
    max_src_len: int | None = None
    max_train_docs: int | None = None
    max_valid_docs: int | None = None
    max_test_docs: int | None = None
    valid_fraction: float = 0.1
    embeddings: str | None = None
    options: dict = field(default_factory=dict)


@dataclass
class NetConfig:
    """Network and loss settings (paper Section 3.4 and Table 2).

    embed_dim, label_embed_dim : word / label embedding widths (``label_embed_dim``
        ``None`` = ``embed_dim``); a GloVe file sets ``embed_dim`` to its dimension.
    hidden_size, encoder_layers, dropout : GRU width (512), encoder depth (2), dropout (0.2).
    use_lightconv : ``None`` = the model's default (on for OTSeq2Set, off for the baselines).
    last_stride : stride of the last LightConv layer (3; 4 for Wiki10-31K).
    bottleneck : output bottleneck size ``b`` (Eq. 10) or ``None``.
    n_steps : decoder steps ``N``; ``None`` = the largest label set of a training document.
    scheme : bipartite matching scheme, ``"all"`` or ``"first_n"`` (Eq. 11-12).
    ot_weight, empty_weight : ``λ`` (Eq. 17) and ``λ_∅`` (Eq. 13).
    ipot_iter : IPOT outer iterations (50).
    label_embeddings_from_names : initialise label embeddings from the GloVe vectors of
        the label names (off for Amazon-670K, whose label names are item ids).
    dropout_sites, lightconv_style, empty_init : where the authors' code and this
        toolkit's first version differ (``models.backbone.BackboneConfig``,
        ``docs/fidelity.md``); the defaults are the authors'.
    """

    embed_dim: int = 300
    label_embed_dim: int | None = None
    hidden_size: int = 512
    encoder_layers: int = 2
    dropout: float = 0.2
    use_lightconv: bool | None = None
    last_stride: int = 3
    bottleneck: int | None = None
    n_steps: int | None = None
    scheme: str = "all"
    ot_weight: float = 8.0
    empty_weight: float = 0.2
    ipot_iter: int = 50
    label_embeddings_from_names: bool = True
    dropout_sites: Literal["authors", "all"] = "authors"
    lightconv_style: Literal["authors", "heads"] = "authors"
    empty_init: Literal["zero", "uniform"] = "zero"

    def lightconv(self, model: str) -> bool:
        """Whether ``model`` trains with LightConv under these settings (``use_lightconv`` or its default)."""
        return self.use_lightconv if self.use_lightconv is not None else model == "otseq2set"


@dataclass
class TrainConfig:
    """Optimisation recipe (paper Section 3.4) and run mechanics.

    epochs, batch_size, lr : Table 2.
    eval_batch_size : batch size for validation / test prediction.
    grad_clip : gradient norm clip (8).
    init_range : weights drawn from U(-init_range, init_range) (0.1).
    seed : seeds python, numpy and torch; the order of training batches depends
        only on (seed, epoch), so a resumed run replays the same batches.
    deterministic : ``torch.use_deterministic_algorithms(True)`` (slower on CUDA).
    device : ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...
    amp : bf16 autocast on CUDA (ignored on CPU). Off by default: the authors train in
        float32, and under bf16 near-ties of the student-forced argmax go to id 0 (∅).
    num_workers : DataLoader workers (0: load in the main process, deterministic).
    bucket : batch documents of similar length (less padding, same epoch order for a seed).
    log_every : batches between progress updates.
    threads : torch CPU threads (``None``: torch's default, one per core). Default 1:
        the decoder runs many small operations for which intra-op threads cost more
        than they give on a CPU (measured on real training, 2-core machine: 1 thread 49.6 docs/s,
        2 threads 9.6, torchrun 2 processes x 1 thread 45.9; README, "Training on a CPU").
    compile : on a CPU, run the decoder's attention compiled by ``torch.compile``
        (``models.attention``; OTSeq2Set's step ~10% faster, after seconds of
        compiling at the start). Off by default: it pays off on long runs only.
    checkpoint_interval : minutes between mid-epoch checkpoints (``checkpoint.pt`` with the
        position in the epoch; ``--resume`` continues from the next batch), so a killed run
        loses at most that much; ``0``: at epoch ends only.
    """

    epochs: int = 20
    batch_size: int = 32
    eval_batch_size: int = 128
    lr: float = 1e-3
    grad_clip: float = 8.0
    init_range: float = 0.1
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    amp: bool = False
    num_workers: int = 0
    bucket: bool = True
    log_every: int = 1
    threads: int | None = 1
    compile: bool = False
    checkpoint_interval: float = 10.0


#: The three parts of a run's config, by the section name of their keys (``net.dropout``).
SECTIONS: dict[str, type] = {"data": DataConfig, "net": NetConfig, "train": TrainConfig}


@dataclass
class RunConfig:
    """Everything a run needs; saved as ``config.json``."""

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

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        d = dict(d)
        if "fast" in d:  # configs written before the cpu variant
            fast = d.pop("fast")
            d.setdefault("variant", "fast" if fast else None)
        kwargs = {}
        for k, v in d.items():
            if k in SECTIONS:
                kwargs[k] = _build(SECTIONS[k], v)
            else:
                kwargs[k] = v
        return _build(cls, kwargs)


def _build(cls, values: dict):
    names = {f.name for f in fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown setting(s) {', '.join(sorted(unknown))}")
    return cls(**values)


# --------------------------------------------------------------------------- presets
# Each preset is {"data": {...}, "net": {...}, "train": {...}} overriding the defaults.
_EURLEX = {
    "data": {"max_src_len": 1000},
    "net": {"n_steps": 24, "last_stride": 3, "bottleneck": None, "scheme": "all"},
    "train": {"epochs": 20, "batch_size": 32, "lr": 1e-3},
}

PRESETS: dict[str, dict] = {
    # Table 2 of the paper
    "eurlex": _EURLEX,
    "wiki10": {
        "data": {"max_src_len": 2000},
        "net": {"n_steps": 30, "last_stride": 4, "bottleneck": 300, "scheme": "first_n"},
        "train": {"epochs": 15, "batch_size": 32, "lr": 1e-3},
    },
    "amazoncat": {
        "data": {"max_src_len": 500},
        "net": {"n_steps": 57, "last_stride": 3, "bottleneck": None, "scheme": "first_n"},
        "train": {"epochs": 5, "batch_size": 64, "lr": 5e-4},
    },
    "amazon670k": {
        "data": {"max_src_len": 500},
        # the authors' final Amazon-670K config: no LightConv and λ = 0 (config/OTSeq2Set.json)
        "net": {"n_steps": 7, "use_lightconv": False, "bottleneck": 512, "scheme": "all", "ot_weight": 0.0,
                "label_embed_dim": 100, "label_embeddings_from_names": False},
        "train": {"epochs": 20, "batch_size": 64, "lr": 5e-4},
    },
    # Eurlex-4K's settings, N = the largest label set in its training split
    "eurlex57k": {
        "data": {"max_src_len": 1000},
        "net": {"n_steps": None, "last_stride": 3, "bottleneck": None, "scheme": "all"},
        "train": {"epochs": 20, "batch_size": 32, "lr": 1e-3},
    },
    # our choice, see the module docstring
    "reuters": {
        "data": {"max_src_len": 300},
        "net": {"n_steps": None, "last_stride": 3, "bottleneck": None, "scheme": "all"},
        "train": {"epochs": 15, "batch_size": 32, "lr": 1e-3},
    },
    # a toy: a small network on the planted-structure generator
    "synthetic": {
        "data": {"max_src_len": 200},
        "net": {"embed_dim": 64, "hidden_size": 128, "n_steps": None, "scheme": "all"},
        "train": {"epochs": 20, "batch_size": 32, "lr": 2e-3},
    },
}

# ``--fast``: small network, fewer tokens / documents / epochs; minutes on a 2-core CPU.
_FAST_BIG = {
    "data": {"max_src_len": 256, "max_train_docs": 4000, "max_valid_docs": 500, "max_test_docs": 1000},
    "net": {"embed_dim": 64, "hidden_size": 128, "ipot_iter": 20},
    "train": {"epochs": 3, "batch_size": 32, "lr": 2e-3},
}

FAST: dict[str, dict] = {
    "eurlex": _FAST_BIG,
    "wiki10": _FAST_BIG,
    "amazoncat": _FAST_BIG,
    "amazon670k": _FAST_BIG,
    # 6,000 documents x 2 epochs of 128 tokens: more documents and shorter texts learn more per
    # minute than 4,000 x 3 of 256 (23.6 micro-F1 in 40 min before the CPU speed-up)
    "eurlex57k": {
        "data": {"max_src_len": 128, "max_train_docs": 6000, "max_valid_docs": 500, "max_test_docs": 1000},
        "net": {"embed_dim": 64, "hidden_size": 128, "ipot_iter": 20},
        "train": {"epochs": 2, "batch_size": 32, "lr": 2e-3},
    },
    "reuters": {
        "data": {"max_src_len": 100},
        "net": {"embed_dim": 64, "hidden_size": 96, "encoder_layers": 1, "ipot_iter": 20},
        "train": {"epochs": 4, "batch_size": 32, "lr": 3e-3},
    },
    "synthetic": {
        "data": {"max_src_len": 80, "options": {"n_docs": 600, "n_labels": 20}},
        "net": {"embed_dim": 32, "hidden_size": 48, "encoder_layers": 1, "ipot_iter": 10},
        # 15 epochs: ~10 s on one CPU thread and test micro-F1 ~0.8 (3 epochs stopped at ~0.4,
        # too early for the zero-setup demo to show that the model learns)
        "train": {"epochs": 15, "batch_size": 32, "lr": 5e-3},
    },
}


# ``--preset cpu``: the full data, sized for this project's 2-core CPU machines (one model
# trains in at most ~3 hours on one thread; continue across sessions with --resume).
CPU: dict[str, dict] = {
    # EURLEX57K: all 45,000 training documents, the release's dev split for model selection, all
    # 6,000 test documents. 200 tokens: the text starts with title, header and recitals, which
    # Chalkidis et al. (2019) found enough for EURLEX57K; the encoder's cost is linear in them
    # (99% of the training documents reach 200 tokens). GloVe 6B 50-d (the shared subset),
    # hidden 128. Measured with two runs side by side, one thread each, nothing else running:
    # OTSeq2Set 29 and MLC2Seq 50-53 training documents/s, so an OTSeq2Set epoch takes ~26 min
    # plus ~1 min of validation, and 5 epochs of cosine annealing ~2.3 h per model.
    "eurlex57k": {
        "data": {"max_src_len": 200, "embeddings": "glove.6B.50d.subset.txt.gz"},
        "net": {"hidden_size": 128},
        "train": {"epochs": 5, "batch_size": 32, "lr": 1e-3},
    },
    # Reuters-21578: the full ModApte training split (7,770; 10% held out for validation),
    # GloVe 50-d, 200 tokens (the median document has 94), hidden 128, 8 epochs: <= 20 min per
    # model on one thread (N = 15 steps, 94 outputs: a cheaper step than EURLEX57K's). Measured
    # beside a EURLEX57K run on the other core: OTSeq2Set 14.6 min of training (+0.5 min of
    # validation), MLC2Seq 8.3 min (README, Results).
    "reuters": {
        "data": {"max_src_len": 200, "embeddings": "glove.6B.50d.subset.txt.gz"},
        "net": {"hidden_size": 128},
        "train": {"epochs": 8, "batch_size": 32, "lr": 1e-3},
    },
}

#: The variants of the presets, by the name ``--preset`` takes.
VARIANTS: dict[str, dict[str, dict]] = {"fast": FAST, "cpu": CPU}


def _apply(cfg: RunConfig, overrides: dict, where: str) -> None:
    for part, values in overrides.items():
        target = getattr(cfg, part, None)
        if not is_dataclass(target):
            raise ConfigError(f"{where}: unknown config part {part!r}")
        names = {f.name for f in fields(target)}
        for k, v in values.items():
            if k not in names:
                raise ConfigError(f"{where}: unknown setting {part}.{k}")
            if k == "options":
                v = {**target.options, **v}
            setattr(target, k, copy.deepcopy(v))


def preset(name: str, *, model: str = "otseq2set", fast: bool = False, variant: str | None = None) -> RunConfig:
    """The preset of a dataset (Table 2 or ours), optionally with the changes of a variant.

    ``variant``: ``"fast"`` or ``"cpu"`` (:data:`VARIANTS`); ``fast=True`` is ``variant="fast"``.
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if model not in MODEL_NAMES:
        raise ConfigError(f"unknown model {model!r}; choose one of {', '.join(MODEL_NAMES)}")
    if fast:
        if variant not in (None, "fast"):
            raise ConfigError(f"--fast and --preset {variant} exclude each other")
        variant = "fast"
    if variant is not None:
        if variant not in VARIANTS:
            raise ConfigError(f"unknown preset variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        if name not in VARIANTS[variant]:
            has = [d for d in DATASETS if d in VARIANTS[variant]]
            raise ConfigError(f"no {variant} preset for {name}; it exists for {', '.join(has)}")
    cfg = RunConfig(model=model, preset=name, variant=variant, data=DataConfig(name=name))
    _apply(cfg, PRESETS[name], f"preset {name}")
    if variant is not None:
        _apply(cfg, VARIANTS[variant][name], f"{variant} preset {name}")
    return cfg


def compose(name: str, *, model: str = "otseq2set", fast: bool = False, variant: str | None = None,
            overrides: dict | None = None) -> RunConfig:
    """Preset + variant + overrides -> the resolved, validated :class:`RunConfig`.

    Parameters
    ----------
    name : dataset preset name.
    model : one of :data:`MODEL_NAMES`.
    fast, variant : apply the changes of the ``--fast`` (or another) variant.
    overrides : ``{"data": {...}, "net": {...}, "train": {...}, "out": ...}``;
        ``None`` values are ignored (an option the user did not give).
    """
    cfg = preset(name, model=model, fast=fast, variant=variant)
    overrides = dict(overrides or {})
    if "out" in overrides:
        out = overrides.pop("out")
        if out is not None:
            cfg.out = str(out)
    clean = {part: {k: v for k, v in vals.items() if v is not None} for part, vals in overrides.items()}
    _apply(cfg, clean, "override")
    validate(cfg)
    return cfg


def _at_least(lo):
    return (lambda v: v is None or v >= lo), f">= {lo}"


def _above(lo):
    return (lambda v: v is None or v > lo), f"> {lo}"


def _fraction():
    return (lambda v: 0 <= v < 1), "in [0, 1)"


#: One-field limits, ``section.field -> (test, what is allowed)``; ``None`` passes where a
#: field allows it. :func:`validate` checks them all; the command line checks each value as
#: it parses it, so the error names the flag (``xmtc.config.settings``).
LIMITS: dict[str, tuple] = {
    "data.max_src_len": _at_least(1),
    "data.max_train_docs": _at_least(1),
    "data.max_valid_docs": _at_least(1),
    "data.max_test_docs": _at_least(1),
    "data.valid_fraction": _fraction(),
    "net.embed_dim": _at_least(1),
    "net.label_embed_dim": _at_least(1),
    "net.hidden_size": _at_least(1),
    "net.encoder_layers": _at_least(1),
    "net.dropout": _fraction(),
    "net.last_stride": _at_least(1),
    "net.bottleneck": _at_least(1),
    "net.n_steps": _at_least(1),
    "net.scheme": ((lambda v: v in ("all", "first_n")), "'all' or 'first_n'"),
    "net.ot_weight": _at_least(0),
    "net.empty_weight": _at_least(0),
    "net.ipot_iter": _at_least(1),
    "train.epochs": _at_least(1),
    "train.seed": _at_least(0),
    "train.batch_size": _at_least(1),
    "train.eval_batch_size": _at_least(1),
    "train.lr": _above(0),
    "train.grad_clip": _above(0),
    "train.init_range": _at_least(0),
    "train.num_workers": _at_least(0),
    "train.log_every": _at_least(1),
    "train.threads": _at_least(1),
    "train.checkpoint_interval": _at_least(0),
}


def check_limit(key: str, value) -> None:
    """Raise :class:`ConfigError` if ``value`` is outside :data:`LIMITS` for ``key`` (``section.field``)."""
    test, allowed = LIMITS.get(key, (None, ""))
    if test is not None and not test(value):
        raise ConfigError(f"{key} must be {allowed}, got {value!r}")


def validate(cfg: RunConfig) -> None:
    """Raise :class:`ConfigError` (one line) on an impossible setting."""
    for key in LIMITS:
        section, name = key.split(".")
        check_limit(key, getattr(getattr(cfg, section), name))
    if cfg.model not in MODEL_NAMES:
        raise ConfigError(f"unknown model {cfg.model!r}; choose one of {', '.join(MODEL_NAMES)}")
    if cfg.data.name != cfg.preset:
        raise ConfigError(f"data.name {cfg.data.name!r} under the {cfg.preset} preset: choose the dataset with "
                          f"--data (its preset comes with it)")


__all__ = ["CPU", "DATASETS", "FAST", "LIMITS", "MODEL_NAMES", "PRESETS", "SECTIONS", "VARIANTS", "ConfigError",
           "DataConfig", "NetConfig", "RunConfig", "TrainConfig", "check_limit", "compose", "preset", "validate"]
