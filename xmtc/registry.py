"""The four models by name: registry, config from a run config, construction, rebuild from a checkpoint."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from xmtc.config import RunConfig
from xmtc.data.loading import Embeddings, max_labels
from xmtc.train import checkpoint
from xmtc.train.distributed import unwrap


def model_registry() -> dict:
    """``name -> (model class, config class)`` for the four models."""
    from baselines import SGM, MLC2Seq, Seq2Seq, Seq2SeqConfig, SGMConfig
    from models import OTSeq2Set, OTSeq2SetConfig

    return {
        "otseq2set": (OTSeq2Set, OTSeq2SetConfig),
        "seq2seq": (Seq2Seq, Seq2SeqConfig),
        "mlc2seq": (MLC2Seq, Seq2SeqConfig),
        "sgm": (SGM, SGMConfig),
    }


def model_type_of(model: nn.Module) -> str:
    """Registry name of a model instance (exact class match)."""
    model = unwrap(model)
    for name, (cls, _) in model_registry().items():
        if type(model) is cls:
            return name
    raise ValueError(f"unknown model class {type(model).__name__}")


def model_config(cfg: RunConfig, dataset):
    """The model's own config dataclass, from the run config and the dataset.

    Built by field name: every field of the model's config that the ``net`` section
    also has is copied from it (``hidden_size``, ``scheme``, ``empty_weight``, ...), so
    a setting added to both reaches the model without a change here. The rest comes
    from the data (vocabulary, labels, ``N``) or is derived: ``label_embed_dim``
    ``None`` is ``embed_dim``, ``use_lightconv`` ``None`` is the model's own default,
    ``init_range`` is the train section's, and a sequence model decodes at most
    ``N + 1`` steps (the labels and ``EOS``).
    """
    _, config_cls = model_registry()[cfg.model]
    n = cfg.net
    model_fields = {f.name for f in dataclasses.fields(config_cls)}
    values = {f.name: getattr(n, f.name) for f in dataclasses.fields(n) if f.name in model_fields}
    if values.get("use_lightconv", False) is None:
        del values["use_lightconv"]
    n_steps = n.n_steps or max_labels(dataset)
    values.update(vocab_size=len(dataset.vocab), n_labels=dataset.n_labels,
                  label_embed_dim=n.label_embed_dim or n.embed_dim, init_range=cfg.train.init_range)
    if "n_steps" in model_fields:  # the set model: N decoder steps
        values["n_steps"] = n_steps
    else:  # a sequence model: the labels and EOS
        values["max_steps"] = n_steps + 1
    return config_cls(**values)


def build_model(cfg: RunConfig, dataset, embeddings: Embeddings | None = None) -> nn.Module:
    """Instantiate ``cfg.model`` for ``dataset`` (weights U(-r, r), GloVe rows copied in).

    ``cfg.train.compile`` selects the compiled attention (``attention_impl="compiled"`` in the
    model's config, a CPU path; see ``models.backbone.BackboneConfig``).
    """
    model_cls, _ = model_registry()[cfg.model]
    mcfg = model_config(cfg, dataset)
    if cfg.train.compile:
        mcfg = dataclasses.replace(mcfg, attention_impl="compiled")
    words = torch.from_numpy(embeddings.words) if embeddings is not None else None
    labels = (torch.from_numpy(embeddings.labels)
              if embeddings is not None and embeddings.labels is not None else None)
    return model_cls(mcfg, embeddings=words, label_embeddings=labels)


def model_from_checkpoint(state: dict) -> nn.Module:
    """Rebuild a model from a checkpoint dict (``checkpoint.load``)."""
    registry = model_registry()
    name = state.get("model_type")
    if name not in registry:
        raise checkpoint.CheckpointError(f"checkpoint holds an unknown model type {name!r}")
    model_cls, config_cls = registry[name]
    from models import BackboneConfig

    mc = {**BackboneConfig.LEGACY_CHOICES, **state["model_config"]}  # older checkpoints lack the switches
    if "lightconv_kernels" in mc:
        mc["lightconv_kernels"] = tuple(mc["lightconv_kernels"])
    model = model_cls(config_cls(**mc))
    model.load_state_dict(state["model"])
    return model


__all__ = ["build_model", "model_config", "model_from_checkpoint", "model_registry", "model_type_of"]
