"""xmtc/config/ablation.py: each variant's flags and its ``apply`` give the same model, whatever the preset.

The README's commands use :meth:`Variant.flags` and ``examples/benchmark.py``
uses :meth:`Variant.apply`; both are checked against what the variant says it
is (LightConv on or off, OT loss on or off) in the model's own config, the one
``registry.model_config`` builds the network from, on presets that differ in
those switches: the CPU presets (LightConv on, λ = 8 for OTSeq2Set) and
Amazon-670K's (the authors' final config: λ = 0, no LightConv).
"""

from __future__ import annotations

import pytest

from models.lightconv import LightConv
from xmtc.config import cli
from xmtc.config.ablation import BY_NAME, BY_RUN, VARIANTS, Variant
from xmtc.config import MODEL_NAMES, ConfigError, preset
from xmtc.data.datasets import load
from xmtc.registry import build_model, model_config


@pytest.fixture(scope="module")
def tiny():
    return load("synthetic", n_docs=60, n_labels=7)


def _config(v: Variant, dataset: str, variant: str | None, extra=(), flags=()):
    """The config a training script for ``v.model`` resolves from these arguments."""
    argv = ["--data", dataset, *(["--preset", variant] if variant else []), *extra, *flags]
    return cli.config_from_args(cli.train_parser(v.model, "t").parse_args(argv), v.model)


def _trained_as(cfg, ds) -> tuple[bool, float]:
    """(LightConv, OT weight) of the model this config builds (0 for a sequence model)."""
    mcfg = model_config(cfg, ds)
    return mcfg.use_lightconv, getattr(mcfg, "ot_weight", 0.0)


def test_the_readme_commands_flags():
    net = preset("eurlex57k", variant="cpu").net
    assert {v.run: v.flags(net) for v in VARIANTS} == {
        "seq2seq": (), "mlc2seq": (), "sgm": (), "seq2seq_lc": ("--lightconv",),
        "bm": ("--ot-weight", "0", "--no-lightconv"), "bm_lc": ("--ot-weight", "0"),
        "bm_ot": ("--no-lightconv",), "otseq2set": ()}


@pytest.mark.parametrize("dataset,variant,extra", [("eurlex57k", "cpu", ()), ("reuters", "cpu", ()),
                                                   ("amazon670k", None, ("--set", "net.ot_weight=2"))])
@pytest.mark.parametrize("name", list(BY_NAME))
def test_flags_and_apply_give_the_variant_on_every_preset(dataset, variant, extra, name, tiny, stand_in_data_dir):
    """(The CPU presets name a GloVe file, which resolving the config checks exists: a stand-in.)"""
    v = BY_NAME[name]
    by_flags = _config(v, dataset, variant, extra, v.flags(_config(v, dataset, variant, extra).net))
    by_apply = _config(v, dataset, variant, extra)
    v.apply(by_apply.net)
    for cfg in (by_flags, by_apply):
        lightconv, ot = _trained_as(cfg, tiny)
        assert lightconv is v.lightconv, (name, cfg.net.use_lightconv)
        assert (ot > 0) is v.ot, (name, ot)
    assert _trained_as(by_flags, tiny) == _trained_as(by_apply, tiny)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_the_lightconv_default_is_the_models(model, tiny):
    cfg = preset("synthetic", model=model, fast=True)
    assert cfg.net.use_lightconv is None
    assert cfg.net.lightconv(model) is model_config(cfg, tiny).use_lightconv is (model == "otseq2set")


@pytest.mark.parametrize("name", list(BY_NAME))
def test_apply_reaches_the_built_model(name, tiny):
    v = BY_NAME[name]
    cfg = preset("synthetic", model=v.model, fast=True)
    cfg.net.use_lightconv = not v.lightconv  # the preset says the opposite: the variant wins
    v.apply(cfg.net)
    model = build_model(cfg, tiny)
    assert any(isinstance(m, LightConv) for m in model.modules()) is v.lightconv
    if v.model == "otseq2set":
        assert (model.config.ot_weight > 0) is v.ot


def test_an_ot_variant_on_a_preset_without_ot_is_refused_with_the_flag_to_set():
    net = preset("amazon670k").net  # the authors' final config: λ = 0
    assert net.ot_weight == 0
    for name in ("BM+OT", "BM+OT+LC"):
        with pytest.raises(ConfigError, match="--ot-weight"):
            BY_NAME[name].flags(net)
        with pytest.raises(ConfigError, match="BM"):
            BY_NAME[name].apply(net)
    assert BY_NAME["BM"].flags(net) == ()  # already λ = 0 and no LightConv
    with pytest.raises(ValueError, match="OT loss"):
        Variant("Seq2Seq+OT", "x", "seq2seq", lightconv=False, ot=True)


def test_the_benchmark_refuses_before_training(tmp_path, capsys, load_script):
    bench = load_script("examples/benchmark.py")
    code = bench.main(["--data", "amazon670k", "--data-dir", str(tmp_path), "--models", "BM,BM+OT",
                       "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "BM+OT needs an OT weight" in err and "--set net.ot_weight=X" in err and "--models" in err
    assert not (tmp_path / "out").exists()  # nothing trained, not even BM


def test_run_names_are_unique_and_the_results_tables_use_them():
    from xmtc.reporting import results
    assert len(BY_RUN) == len(BY_NAME) == len(VARIANTS)
    # the paper's variants first, in its order; then the studies and the linear reference
    assert list(results.RUNS)[: len(VARIANTS)] == [v.run for v in VARIANTS]
    assert list(results.RUNS)[len(VARIANTS):] == [*results.STUDIES, results.LINEAR]
    assert all(results.RUNS[v.run][1] == v.model for v in VARIANTS)
    # every pair names known runs; the paper's settings are studies of the full set model
    assert all(a in results.RUNS and b in results.RUNS for a, b in results.PAIRS)
    assert all(results.STUDIES[n][1] == "otseq2set" and "paper's" in results.STUDIES[n][0]
               for n in results.PAPER_SETTINGS)
