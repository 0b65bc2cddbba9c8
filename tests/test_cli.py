"""Every setting from the command line (``--set``, named flags, ``--config``) and progress lines for logs.

Checked: each annotation type parses (int, float, bool, str, ``X | None``,
``Literal``, dict); every field of the data / net / train configs is
reachable by ``--set`` and (but ``data.name``, ``data.options``) by a named flag
that maps to it, a field added to a dataclass included; bad keys and values
give one line naming the flag or key and exit 2; a saved ``config.json``
re-run gives the same config, and flags given with it override it;
:class:`xmtc.reporting.progress.LogProgress` writes its lines at the interval with the
promised fields (fake clock).
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import typing
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from xmtc.config import (
    SECTIONS,
    ConfigError,
    NetConfig,
    check_limit,
    cli,
    field_meta,
    limits,
    preset,
    setting,
    settings,
)
from xmtc.config.schema import AT_LEAST_1
from xmtc.data.loading import embeddings_path
from xmtc.reporting.progress import LogProgress, RichProgress, make_progress
from xmtc.train import rundir


def parse(argv, model="otseq2set"):
    """Parsed arguments and the resolved config, as the training scripts make them."""
    args = cli.train_parser(model, "test").parse_args(argv)
    return args, cli.config_from_args(args, model)


def one_line_error(capsys, argv, model="otseq2set") -> str:
    """Run the argument handling of a training script; it must exit 2 with one line on stderr."""
    code = cli.run_main(lambda a: (parse(a, model), 0)[1], argv, prog=f"train_{model}.py")
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# --------------------------------------------------------------------------- parsing by type
@pytest.mark.parametrize("tp, text, value", [
    (int, "32", 32), (int, " -3 ", -3),
    (float, "1e-3", 1e-3), (float, "8", 8.0),
    (bool, "true", True), (bool, "No", False), (bool, "on", True), (bool, "0", False),
    (str, "cuda:1", "cuda:1"),
    (int | None, "none", None), (int | None, "NULL", None), (int | None, "512", 512),
    (str | None, "None", None), (float | None, "0.5", 0.5),
    (typing.Literal["zero", "random"], "zero", "zero"),
    (dict, '{"n_docs": 600}', {"n_docs": 600}),
])
def test_parse_text_by_annotation(tp, text, value):
    got = settings.parse_text(text, tp, "net.x")
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("tp, text", [
    (int, "3.5"), (int, "none"), (float, "abc"), (float, "nan"), (bool, "maybe"),
    (typing.Literal["zero", "random"], "one"), (dict, "[1, 2]"), (dict, "{bad"),
])
def test_parse_text_rejects_with_the_key_and_the_type(tp, text):
    with pytest.raises(ConfigError) as e:
        settings.parse_text(text, tp, "net.x")
    msg = str(e.value)
    assert msg.startswith("net.x: expected ") and repr(text) in msg and "\n" not in msg


def test_every_annotation_of_the_configs_is_understood():
    for key in settings.keys():
        settings.describe(settings.field_type(key))  # raises TypeError on an annotation without a parser
        settings.metavar(settings.field_type(key))


# --------------------------------------------------------------------------- every field settable
def _other_value(key: str, current) -> tuple[str, object]:
    """Text of a valid value of ``key`` different from ``current``, and that value."""
    tp = settings.field_type(key)
    base, optional = settings._base(tp)
    origin = typing.get_origin(base) or base
    candidates = {
        bool: [str(not current).lower()], int: ["3", "7"], float: ["0.5", "0.25"], str: ["first_n", "all", "x"],
        dict: ['{"a": 1}'],
    }.get(origin, [str(a) for a in typing.get_args(base)] if origin is typing.Literal else [])
    if optional:
        candidates = candidates + ["none"]
    for text in candidates:
        value = settings.parse_text(text, tp, key)
        try:
            check_limit(key, value)
        except ConfigError:
            continue
        if value != current:
            return text, value
    raise AssertionError(f"no test value for {key} ({tp})")


def test_every_field_is_settable_with_set():
    keys = settings.keys()
    assert keys == [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)]
    cfg = preset("reuters", fast=True)
    for key in keys:
        section, name = key.split(".")
        text, value = _other_value(key, getattr(getattr(cfg, section), name))
        args = cli.train_parser("otseq2set", "test").parse_args(["--data", "reuters", "--set", f"{key}={text}"])
        assert args.settings == [(key, value)], key
        settings.assign(cfg, key, value)
        assert getattr(getattr(cfg, section), name) == value, key


def test_named_flags_map_to_their_fields(load_script):
    flags = cli.named_flags(None)
    no_flag = {k for k in settings.keys() if field_meta(k)["flag"] is False}
    assert no_flag == {"data.name", "data.options"}
    assert set(flags.values()) == set(settings.keys()) - no_flag  # every field but data.name/options
    assert len(set(flags)) == len(flags)
    cfg = preset("reuters", fast=True)
    for flag, key in flags.items():
        section, name = key.split(".")
        text, value = _other_value(key, getattr(getattr(cfg, section), name))
        if settings._base(settings.field_type(key))[0] is bool:
            argv = [flag] if value else ["--no-" + flag[2:]]
        else:
            argv = [flag, text]
        parser = cli.train_parser("otseq2set", "test")
        assert parser.parse_args(["--data", "reuters", *argv]).settings == [(key, value)], flag
    # the benchmark has them too, but for the switches its variants set
    assert _flags_of(_benchmark_parser(load_script)) >= set(flags) - {"--lightconv", "--ot-weight"}
    assert not {"--lightconv", "--ot-weight"} & _flags_of(_benchmark_parser(load_script))
    # the names users know
    for flag, key in {"--embed-dim": "net.embed_dim", "--encoder-layers": "net.encoder_layers",
                      "--dropout": "net.dropout", "--bottleneck": "net.bottleneck",
                      "--empty-weight": "net.empty_weight", "--ipot-iter": "net.ipot_iter",
                      "--last-stride": "net.last_stride", "--lightconv": "net.use_lightconv",
                      "--amp": "train.amp", "--epochs": "train.epochs", "--lr": "train.lr",
                      "--max-src-len": "data.max_src_len", "--data-dir": "data.data_dir"}.items():
        assert flags[flag] == key


def _flags_of(parser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def _benchmark_parser(load_script):
    return load_script("examples/benchmark.py").parser()


def test_specific_flags_and_set_values():
    _, cfg = parse(["--data", "reuters", "--fast", "--no-amp", "--bottleneck", "300", "--bottleneck", "none",
                    "--no-lightconv", "--threads", "none", "--dropout", "0.1", "--set", "train.lr=1e-3",
                    "--set", "data.options.n_docs=50", "--set", "data.options.name=x"])
    assert cfg.train.amp is False and cfg.net.bottleneck is None and cfg.net.use_lightconv is False
    assert cfg.train.threads is None and cfg.net.dropout == 0.1 and cfg.train.lr == 1e-3
    assert cfg.data.options == {"n_docs": 50, "name": "x"}
    _, cfg = parse(["--data", "synthetic", "--fast", "--set", "data.options.n_docs=50"])
    assert cfg.data.options == {"n_docs": 50, "n_labels": 20}  # one entry changed, the preset's kept
    _, cfg = parse(["--data", "synthetic", "--set", "net.use_lightconv=none", "--lightconv"])
    assert cfg.net.use_lightconv is True


def test_named_flags_and_set_apply_in_command_line_order():
    assert parse(["--data", "reuters", "--dropout", "0.3", "--set", "net.dropout=0.1"])[1].net.dropout == 0.1
    assert parse(["--data", "reuters", "--set", "net.dropout=0.1", "--dropout", "0.3"])[1].net.dropout == 0.3


def test_set_model_flags_only_in_the_set_model_script_but_set_reaches_them():
    assert "--scheme" in _flags_of(cli.train_parser("otseq2set", "t"))
    assert "--scheme" not in _flags_of(cli.train_parser("seq2seq", "t"))
    assert parse(["--data", "reuters", "--set", "net.scheme=first_n"], model="seq2seq")[1].net.scheme == "first_n"


def test_a_new_field_gets_a_flag_and_set(monkeypatch):
    @dataclasses.dataclass
    class NetPlus(NetConfig):
        lightconv_heads: int = setting(16, "LightConv heads", limit=AT_LEAST_1)
        empty_init: typing.Literal["zero", "random"] = setting("zero", "the empty label's first embedding")

    monkeypatch.setitem(SECTIONS, "net", NetPlus)
    parser = cli.train_parser("otseq2set", "t")
    args = parser.parse_args(["--data", "reuters", "--lightconv-heads", "8", "--set", "net.lightconv_heads=4",
                              "--empty-init", "random"])
    assert args.settings == [("net.lightconv_heads", 8), ("net.lightconv_heads", 4), ("net.empty_init", "random")]
    assert "net.lightconv_heads" in settings.keys()
    assert "LightConv heads [net.lightconv_heads]" in " ".join(parser.format_help().split())  # help from the field
    with pytest.raises(ConfigError, match=r"net.lightconv_heads must be >= 1, got 0"):  # limit from the field
        settings.parse_value("net.lightconv_heads", "0")
    saved = {"preset": "reuters", "model": "otseq2set", "net": {"lightconv_heads": 2}}
    assert settings.compose(saved=saved).net.lightconv_heads == 2


# --------------------------------------------------------------------------- errors: one line, exit 2
@pytest.mark.parametrize("argv, expected", [
    (["--set", "model.dropout=0.1"], ["--set", "unknown section 'model'", "data, net, train"]),
    (["--set", "net.dropot=0.1"], ["--set", "unknown setting net.dropot", "did you mean net.dropout"]),
    (["--set", "net.dropout=abc"], ["--set", "net.dropout", "expected a number", "'abc'"]),
    (["--set", "net.dropout=1.5"], ["--set", "net.dropout must be in [0, 1)", "1.5"]),
    (["--set", "net.dropout"], ["--set", "SECTION.FIELD=VALUE"]),
    (["--set", "net.dropout.x=1"], ["--set", "net.dropout is not a dictionary"]),
    (["--set", "train.amp=maybe"], ["--set", "train.amp", "true or false"]),
    (["--set", "net.bottleneck=big"], ["--set", "net.bottleneck", "an integer or none"]),
    (["--dropout", "abc"], ["--dropout", "net.dropout", "expected a number"]),
    (["--epochs", "0"], ["--epochs", "train.epochs must be >= 1"]),
    (["--scheme", "some"], ["--scheme", "expected one of all, first_n", "'some'"]),
    (["--epochs", "none"], ["--epochs", "expected an integer"]),
])
def test_bad_keys_and_values(capsys, argv, expected):
    err = one_line_error(capsys, ["--data", "reuters", *argv])
    for part in expected:
        assert part in err, (part, err)


def test_data_or_config_is_required(capsys):
    assert "--data" in one_line_error(capsys, []) and "--config" in one_line_error(capsys, ["--epochs", "2"])


# --------------------------------------------------------------------------- --config
def _saved(tmp_path, argv, model="otseq2set", name="run") -> tuple[Path, object]:
    """A run directory's config.json as the training scripts write it (with the run_info extras)."""
    _, cfg = parse([*argv, "--out", str(tmp_path / name)], model)
    rundir.write_config(tmp_path / name, cfg, {"model_config": {"n_labels": 90, "lightconv_kernels": (3, 7)},
                                               "parameters": 123, "device": "cpu", "dataset": {"n_train": 7770}})
    return tmp_path / name / "config.json", cfg


def test_config_round_trip(tmp_path):
    path, cfg = _saved(tmp_path, ["--data", "synthetic", "--fast", "--epochs", "3", "--bottleneck", "16",
                                  "--set", "data.options.n_docs=99", "--no-amp", "--dropout", "0.1",
                                  "--set", "net.label_embed_dim=none"])
    assert parse(["--config", str(path)])[1] == cfg
    assert parse(["--config", str(path.parent)])[1] == cfg  # the run directory works too
    assert settings.read_config(path) == cfg
    # flags given with --config override it, in command-line order; the rest stays
    _, again = parse(["--config", str(path), "--epochs", "5", "--set", "net.dropout=0.3", "--out", "elsewhere"])
    assert (again.train.epochs, again.net.dropout, again.out) == (5, 0.3, "elsewhere")
    assert dataclasses.replace(again, out=cfg.out, train=cfg.train, net=cfg.net) == cfg
    assert again.train == dataclasses.replace(cfg.train, epochs=5)
    assert again.net == dataclasses.replace(cfg.net, dropout=0.3)
    # --data / --fast agreeing with the saved run are harmless
    assert parse(["--config", str(path), "--data", "synthetic", "--fast"])[1] == cfg


def test_config_written_before_a_field_existed_takes_the_presets_value(tmp_path):
    path, cfg = _saved(tmp_path, ["--data", "reuters", "--fast", "--ipot-iter", "7"])
    saved = json.loads(path.read_text())
    del saved["net"]["dropout"], saved["train"]["bucket"]
    path.write_text(json.dumps(saved))
    assert parse(["--config", str(path)])[1] == cfg


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d["net"].update(dropot=0.1), "unknown setting net.dropot"),
    (lambda d: d["net"].update(dropout="high"), "net.dropout: expected a number"),
    (lambda d: d["train"].update(epochs=0), "train.epochs must be >= 1"),
    (lambda d: d["train"].update(amp=1), "train.amp: expected true or false"),
    (lambda d: d.update(preset="imagenet"), "unknown dataset"),
    (lambda d: [d.pop(k) for k in ("data", "net", "train")], "not a run's config.json"),
])
def test_bad_config_file(capsys, tmp_path, edit, expected):
    path, _ = _saved(tmp_path, ["--data", "reuters", "--fast"])
    saved = json.loads(path.read_text())
    edit(saved)
    path.write_text(json.dumps(saved))
    err = one_line_error(capsys, ["--config", str(path)])
    assert expected in err and str(path) in err


def test_config_misuse(capsys, tmp_path):
    path, _ = _saved(tmp_path, ["--data", "reuters", "--fast"])
    assert "not found" in one_line_error(capsys, ["--config", str(tmp_path / "nope.json")])
    (tmp_path / "bad.json").write_text("{not json")
    assert "not a JSON config" in one_line_error(capsys, ["--config", str(tmp_path / "bad.json")])
    assert "--data" in one_line_error(capsys, ["--config", str(path), "--data", "eurlex"])
    assert "train_otseq2set.py" in one_line_error(capsys, ["--config", str(path)], model="seq2seq")


def test_every_field_is_declared_with_help_and_every_number_with_a_limit():
    for key in settings.keys():
        meta = field_meta(key)
        assert meta["help"], key  # the flag's help, and the key's description in docs/usage.md
        base, _ = settings._base(settings.field_type(key))
        if base in (int, float):
            assert key in limits(), f"{key}: a number without a declared limit"


# --------------------------------------------------------------------------- progress lines for logs
class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _log_progress(**kw):
    out, clock = io.StringIO(), FakeClock()
    progress = LogProgress(Console(file=out, width=60), clock=clock, timestamps=False, **kw)
    return progress, out, clock


def test_log_progress_lines_at_the_interval():
    progress, out, clock = _log_progress(interval=60)
    progress.on_fit_start(0, 2, 300)
    progress.on_epoch_start(1, 2, 300)
    terms = {"loss": 1.23456, "match": 0.5, "ot": 0.09}
    for step in range(1, 301):
        clock.t = step * 1.0  # one batch a second
        progress.on_batch(1, step, 300, terms, 32.0)
    lines = out.getvalue().splitlines()
    assert lines[0] == "training: epochs 1-2, 300 batches each"
    batch_lines = lines[1:]
    # the first batch (shows the rate at once), then every 60 s
    steps = [int(re.search(r"batch (\d+)/300", line).group(1)) for line in batch_lines]
    assert steps == [1, 61, 121, 181, 241]
    line = batch_lines[1]
    assert line == "epoch 1/2 batch 61/300 (20%) 32.0 docs/s elapsed 1m01s eta 3m59s loss=1.2346 match=0.5000 ot=0.0900"


def test_log_progress_every_k_batches_and_eval_and_data():
    progress, out, clock = _log_progress(interval=1e9, every=100)
    progress.on_data("read eurlex57k", 0, 57_001)
    clock.t = 5
    progress.on_data("read eurlex57k", 2000, 57_001)  # not due: no line
    clock.t = 75
    progress.on_data("read eurlex57k", 57_001, 57_001)
    progress.on_fit_start(3, 5, 250)
    progress.on_epoch_start(4, 5, 250)
    for step in range(1, 251):
        progress.on_batch(4, step, 250, {"loss": 2.0}, 10.0)
    progress.on_eval_start("valid", 3)
    for step in range(1, 4):
        clock.t += 2
        progress.on_eval_batch("valid", step, 3)
    record = {"epoch": 4, "lr": 1e-3, "best": True, "train": {"loss": 2.0, "grad_norm": 1.0, "docs": 8000,
                                                               "time_s": 80.0, "docs_per_s": 100.0},
              "valid": {"micro_f1": 0.5, "macro_f1": 0.25}}
    progress.on_epoch_end(record)
    progress.on_fit_end(SimpleNamespace(history=[record], best={"epoch": 4, "micro_f1": 0.5}, train_time_s=80.0))
    lines = out.getvalue().splitlines()
    assert lines[:3] == ["data: read eurlex57k 0/57,001", "data: read eurlex57k 57,001/57,001 done in 1m15s",
                         "training: epochs 4-5, 250 batches each (resuming after epoch 3)"]
    assert [re.search(r"batch (\d+)/", x).group(1) for x in lines if x.startswith("epoch 4/5")] == ["1", "100", "200"]
    assert "predict valid: 3 batches" in lines and "predict valid: done in 6.0s" in lines
    assert any(x.startswith("epoch   4  lr 1.00e-03  loss=2.0000") and x.endswith("*best*") for x in lines)
    assert lines[-1] == "training done: 1 epoch, best epoch 4 (valid micro-F1 0.5000), training time 1m20s"


def test_log_progress_timestamps_and_silence():
    progress, out, _ = _log_progress(enabled=False)
    progress.on_fit_start(0, 1, 1)
    progress.log("hello")
    assert out.getvalue() == ""
    out = io.StringIO()
    LogProgress(Console(file=out)).log("hello [b]not markup[/b]")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d hello \[b\]not markup\[/b\]\n", out.getvalue())


def test_make_progress_picks_bars_on_a_terminal_and_lines_otherwise():
    log_file = Console(file=io.StringIO())
    terminal = Console(file=io.StringIO(), force_terminal=True)
    assert isinstance(make_progress(log_file), LogProgress)
    assert isinstance(make_progress(terminal), RichProgress)
    assert isinstance(make_progress(log_file, "bars"), RichProgress)
    assert isinstance(make_progress(terminal, "lines", interval=5, every=3), LogProgress)
    with pytest.raises(ValueError):
        make_progress(log_file, "fancy")


# --------------------------------------------------------------------------- through a script
def test_a_script_rerun_from_its_config_json(tmp_path, capsys, load_script):
    train = load_script("examples/train_otseq2set.py")
    first = tmp_path / "first"
    argv = ["--data", "synthetic", "--fast", "--epochs", "1", "--max-train-docs", "64", "--max-valid-docs", "16",
            "--max-test-docs", "16", "--hidden-size", "16", "--set", "net.ipot_iter=3", "--log-interval", "0"]
    assert train.main(argv + ["--out", str(first)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"epoch 1/1 batch 1/2 \(50%\) .* docs/s .* eta .* loss=", out)  # not a terminal: lines
    assert "predict valid: 1 batch" in out and "data: tokenise train" in out
    second = tmp_path / "second"
    assert train.main(["--config", str(first / "config.json"), "--out", str(second)]) == 0
    a, b = (json.loads((d / "config.json").read_text()) for d in (first, second))
    assert a.pop("out") != b.pop("out")
    assert a == b
    # a resume refused for other settings leaves the run's config.json as it was
    saved = (second / "config.json").read_text()
    capsys.readouterr()
    assert train.main(["--config", str(second), "--resume", "--epochs", "2"]) == 2
    assert "other settings" in capsys.readouterr().err
    assert (second / "config.json").read_text() == saved
    assert train.main(["--config", str(second), "--resume", "--device", "cpu"]) == 0  # may change on resume
    assert json.loads((second / "config.json").read_text())["train"]["device"] == "cpu"


# --------------------------------------------------------------------------- preset variants
def test_cpu_preset_variant_on_the_full_data(tmp_path, monkeypatch):
    monkeypatch.setenv("XMTC_DATA", str(tmp_path))
    (tmp_path / "glove.6B.50d.subset.txt.gz").write_bytes(b"x")  # found in the data directory
    _, cfg = parse(["--data", "eurlex57k", "--preset", "cpu"])
    assert cfg.variant == "cpu" and not cfg.fast and cfg.out == "runs/otseq2set-eurlex57k-cpu"
    assert cfg.data.max_train_docs is None and cfg.data.max_test_docs is None  # the full data
    assert cfg.data.max_src_len == 200 and cfg.net.hidden_size == 128 and cfg.train.epochs == 5
    assert embeddings_path(cfg) == tmp_path / "glove.6B.50d.subset.txt.gz"
    _, fast = parse(["--data", "reuters", "--preset", "fast"])
    assert fast.fast and fast == parse(["--data", "reuters", "--fast"])[1]


def test_a_variant_may_change_one_model_only(monkeypatch, tmp_path):
    from xmtc.config import presets

    (tmp_path / "glove.6B.50d.subset.txt.gz").write_bytes(b"x")  # found in the data directory

    # Reuters at --preset cpu: the set model decodes N = 6 steps, the sequence models keep the rule
    # (None: the largest training label set, which also caps their decoding at N + 1)
    ot = presets.preset("reuters", model="otseq2set", variant="cpu")
    assert ot.net.n_steps == 6 and ot.net.hidden_size == 128 and ot.train.epochs == 8  # merged, not replaced
    for model in ("seq2seq", "mlc2seq", "sgm"):
        cfg = presets.preset("reuters", model=model, variant="cpu")
        assert cfg.net.n_steps is None and cfg.net.hidden_size == 128, model
    assert presets.preset("reuters", model="otseq2set").net.n_steps is None  # the base preset: the rule
    # a flag still wins over the variant's model-specific value
    assert parse(["--data", "reuters", "--preset", "cpu", "--data-dir", str(tmp_path)])[1].net.n_steps == 6
    _, cfg = parse(["--data", "reuters", "--preset", "cpu", "--n-steps", "none", "--data-dir", str(tmp_path)])
    assert cfg.net.n_steps is None
    # EURLEX57K at --preset cpu: the set model weighs ∅ by 0.5; the paper's 0.2 stays in the base
    # preset and --fast, and --empty-weight gives it back
    assert presets.preset("eurlex57k", model="otseq2set", variant="cpu").net.empty_weight == 0.5
    assert presets.preset("eurlex57k", model="otseq2set", variant="fast").net.empty_weight == 0.2
    assert presets.preset("eurlex57k", model="otseq2set").net.empty_weight == 0.2
    assert presets.preset("eurlex57k", model="otseq2set", variant="cpu").net.hidden_size == 128
    eurlex = ["--data", "eurlex57k", "--preset", "cpu", "--data-dir", str(tmp_path)]
    assert parse(eurlex)[1].net.empty_weight == 0.5
    assert parse([*eurlex, "--empty-weight", "0.2"])[1].net.empty_weight == 0.2
    # a model-specific change for a model that does not exist names it
    bad = {**presets.CPU["reuters"], "models": {"otseqset": {"net": {"n_steps": 6}}}}
    monkeypatch.setitem(presets.CPU, "reuters", bad)
    with pytest.raises(ConfigError, match="cpu preset reuters: unknown model 'otseqset' under 'models'"):
        presets.preset("reuters", variant="cpu")


def test_preset_variant_errors(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XMTC_DATA", str(tmp_path))
    assert "no cpu preset for synthetic" in one_line_error(capsys, ["--data", "synthetic", "--preset", "cpu"])
    assert "exclude each other" in one_line_error(capsys, ["--data", "reuters", "--fast", "--preset", "cpu"])
    err = one_line_error(capsys, ["--data", "reuters", "--preset", "cpu"])  # GloVe file not in the data dir
    assert "glove.6B.50d.subset.txt.gz not found" in err


def test_config_of_a_variant_round_trips_and_old_fast_key_reads(tmp_path):
    path, cfg = _saved(tmp_path, ["--data", "reuters", "--fast", "--epochs", "2"])
    saved = json.loads(path.read_text())
    assert saved["variant"] == "fast" and "fast" not in saved
    saved.pop("variant")
    saved["fast"] = True  # how configs written before the cpu variant said it
    path.write_text(json.dumps(saved))
    assert parse(["--config", str(path)])[1] == cfg


def test_config_run_directory_is_where_it_was_read_from(tmp_path):
    path, cfg = _saved(tmp_path, ["--data", "reuters", "--fast", "--epochs", "2"])
    copy = tmp_path / "copied" / "run"  # a record copied elsewhere (results/...), "out" still the original
    copy.mkdir(parents=True)
    (copy / "config.json").write_text(path.read_text())
    _, again = parse(["--config", str(copy)])
    assert again.out == str(copy) and again.out != cfg.out
    assert parse(["--config", str(copy / "config.json")])[1].out == str(copy)
    assert parse(["--config", str(copy), "--out", "elsewhere"])[1].out == "elsewhere"


def test_empty_embeddings_and_negative_seed_are_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XMTC_DATA", str(tmp_path))
    _, cfg = parse(["--data", "synthetic", "--fast", "--embeddings", ""])  # empty: no embeddings
    assert not cfg.data.embeddings
    assert "train.seed must be >= 0" in one_line_error(capsys, ["--data", "synthetic", "--seed", "-1"])
    assert "unrecognized arguments: --ep" in one_line_error(capsys, ["--data", "synthetic", "--ep", "3"])


def test_dataset_is_chosen_with_data_not_set(capsys):
    err = one_line_error(capsys, ["--data", "reuters", "--fast", "--set", "data.name=synthetic"])
    assert "choose the dataset with --data" in err
