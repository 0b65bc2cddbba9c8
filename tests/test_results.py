"""The results tables (docs/results.md) are generated from the committed run records, with the right commands,
seeds and paired tests."""

from __future__ import annotations

import gzip
import json
import math
import shutil
import shlex
from dataclasses import asdict
from pathlib import Path

import pytest

from xmtc.config import cli

from xmtc.reporting import results
from xmtc.train import rundir
from xmtc.config import SECTIONS

ROOT = Path(__file__).resolve().parents[1]


def _metrics(f1: float, finished: bool = True) -> dict:
    epoch = {"epoch": 1, "train": {"docs": 1000, "time_s": 50.0, "docs_per_s": 20.0}, "valid": {"micro_f1": f1}}
    slowed = {"epoch": 2, "train": {"docs": 1000, "time_s": 500.0, "docs_per_s": 2.0}, "valid": {"micro_f1": f1}}
    m = {"epochs": [epoch, slowed, {**epoch, "epoch": 3}], "best": {"epoch": 2, "micro_f1": f1},
         "epochs_run": 2, "train_time_s": 4000.0}
    if finished:
        m["test"] = {"micro_precision": 0.6, "micro_recall": 0.5, "micro_f1": f1, "macro_f1": 0.2, "p@1": 0.8,
                     "p@5": 0.5, "ndcg@5": 0.7, "mean_predicted_labels": 4.5, "mean_gold_labels": 5.07}
    return m


def _write(root: Path, name: str, metrics: dict, epochs: int = 5, seed: int = 0, predictions: str | None = None):
    d = root / "eurlex57k" / name / f"seed{seed}"
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"variant": "cpu", "train": {"epochs": epochs, "seed": seed}}))
    (d / "metrics.json").write_text(json.dumps(metrics))
    if predictions is not None:
        (d / "predictions.tsv.gz").write_bytes(gzip.compress(predictions.encode()))
    return d


def test_table_rows_commands_and_runs_in_progress(tmp_path):
    _write(tmp_path, "otseq2set", _metrics(0.6543))
    _write(tmp_path, "bm", _metrics(0.61, finished=False))
    runs = results.collect(tmp_path, "eurlex57k")
    assert [r.name for r in runs] == ["bm", "otseq2set"]  # RUNS order
    table = results.markdown(runs, "eurlex57k")
    row = [ln for ln in table.splitlines() if ln.startswith("| OTSeq2Set")][0]
    assert row == ("| OTSeq2Set (BM+OT+LC) | 1 | 60.00 | 50.00 | 65.43 | 20.00 | 80.00 | 50.00 | 70.00 | 4.50 / 5.07 "
                   "| — | 1 h 07 min |")  # one seed: no spread; no calibrated entry: —
    assert "python examples/train_otseq2set.py --data eurlex57k --preset cpu --data-dir ../shared/data " \
           "--ot-weight 0 --no-lightconv --out runs/eurlex57k/bm/seed0" in table
    assert "In progress (continued with `--resume`): BM 2/5 epochs, best dev micro-F1 61.00 (epoch 2) (seed 0)." in table
    assert not any(ln.startswith("| BM |") for ln in table.splitlines())


def test_seeds_give_mean_and_sample_std_and_the_calibrated_column(tmp_path):
    for seed, f1 in enumerate((0.60, 0.62, 0.64)):
        m = _metrics(f1)
        m["calibrated"] = {"rule": "score >= tau", "tau": 0.3 if seed else None,
                           "valid": {"micro_f1": 0.7}, "test": {"micro_f1": f1 + 0.01}}
        _write(tmp_path, "otseq2set", m, seed=seed)
    runs = results.collect(tmp_path, "eurlex57k")
    assert [r.seed for r in runs] == [0, 1, 2]
    row = [ln for ln in results.summary_table(runs).splitlines() if ln.startswith("| OTSeq2Set")][0]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "3" and cells[4] == "62.00 ± 2.00"  # sample std (ddof 1) of 60, 62, 64
    assert cells[-2] == "63.00 ± 2.00 (τ 0.3, kept)"  # a seed that kept its decoded sets says so
    assert "seeds 0, 1, 2: the same command with `--seed K`" in results.markdown(runs, "eurlex57k")
    assert results.command("eurlex57k", "cpu", "otseq2set", seed=2).endswith(
        "--seed 2 --out runs/eurlex57k/otseq2set/seed2")


def _tsv(rows) -> str:
    return "doc_id\tgold\tpredicted\n" + "".join(f"{d}\t{'|'.join(g)}\t{'|'.join(p)}\n" for d, g, p in rows)


def test_paired_table_from_committed_predictions(tmp_path):
    gold = [("d%d" % i, ["a", "b"]) for i in range(60)]
    good = _tsv([(d, g, g) for d, g in gold])  # every label right
    half = _tsv([(d, g, g[:1]) for d, g in gold])  # one of two labels: P 1, R 0.5, F1 2/3
    for seed in (0, 1):
        _write(tmp_path, "otseq2set", _metrics(1.0), seed=seed, predictions=good)
        _write(tmp_path, "mlc2seq", _metrics(2 / 3), seed=seed, predictions=half)
    _write(tmp_path, "seq2seq", _metrics(2 / 3), predictions=half)
    text = results.paired_table(results.collect(tmp_path, "eurlex57k"), n_resamples=1000)
    rows = [ln for ln in text.splitlines() if ln.startswith("| OTSeq2Set")]
    # one seed of Seq2Seq: no test over seeds, so the bootstrap alone cannot settle it
    assert rows[0] == ("| OTSeq2Set (BM+OT+LC) − Seq2Seq | 2 / 1 | +33.33 | [+33.33, +33.33] | 0.0010 | — "
                       "| test documents only (one seed) |")
    # two seeds each, no spread and a difference: p = 0 over seeds, shown
    assert rows[1] == "| OTSeq2Set (BM+OT+LC) − MLC2Seq | 2 / 2 | +33.33 | [+33.33, +33.33] | 0.0010 | < 0.001 | ahead |"
    # identical predictions: no difference, p = 1
    _write(tmp_path, "sgm", _metrics(1.0), predictions=good)
    text = results.paired_table(results.collect(tmp_path, "eurlex57k"), n_resamples=1000)
    assert "| OTSeq2Set (BM+OT+LC) − SGM | 2 / 1 | +0.00 | [+0.00, +0.00] | 1.0000 | — | no difference shown |" in text
    # predictions of other documents cannot be paired
    _write(tmp_path, "bm_ot", _metrics(1.0), predictions=_tsv([("x", ["a"], ["a"])]))
    _write(tmp_path, "bm", _metrics(1.0), predictions=good)
    with pytest.raises(ValueError, match="different test documents"):
        results.paired_table(results.collect(tmp_path, "eurlex57k"), n_resamples=1000)


def _pair(delta: float, p_documents: float, p_seeds: float | None) -> results.PairTest:
    from evaluation.significance import BootstrapResult, SeedTestResult

    docs = BootstrapResult(delta, delta - 0.01, delta + 0.01, p_documents, 1000, 60, 0.5 + delta, 0.5, None)
    seeds = None if p_seeds is None else SeedTestResult(delta, 1.0, 2.0, p_seeds, 3, 3)
    return results.PairTest("otseq2set", "mlc2seq", 3, 3 if seeds else 1, docs, seeds)


@pytest.mark.parametrize("delta, p_documents, p_seeds, verdict", [
    (0.02, 0.001, 0.01, "ahead"),
    (-0.02, 0.001, 0.049, "behind"),
    (0.003, 0.04, 0.38, "not shown over seeds"),  # the bootstrap alone holds the trained models fixed
    (0.003, 0.05, 0.01, "no difference shown"),  # alpha itself is not below alpha
    (0.02, 0.001, None, "test documents only (one seed)"),
    (0.0, 1.0, None, "no difference shown"),
])
def test_a_difference_is_shown_only_where_both_tests_agree(delta, p_documents, p_seeds, verdict):
    assert _pair(delta, p_documents, p_seeds).verdict == verdict


def test_conclusion_states_each_sequence_model_at_equal_epochs_and_equal_time(tmp_path):
    gold = [("d%d" % i, ["a", "b"]) for i in range(60)]
    good, half = _tsv([(d, g, g) for d, g in gold]), _tsv([(d, g, g[:1]) for d, g in gold])
    fast, slow = 1000 / 3600, 500 / 3600
    for seed, f1 in ((0, 0.60), (1, 0.62)):
        cal = {n: {"tau": 0.3, "valid": {"micro_f1": 0.7}, "test": {"micro_f1": v}}
               for n, v in (("mlc2seq", 0.66), ("otseq2set", 0.70 + seed / 50))}  # 0.66, 0.66 / 0.70, 0.72
        _write(tmp_path, "mlc2seq", {**_metrics(2 / 3), "epochs": _epochs([(fast, f1), (fast, f1 + 0.02)]),
                                     "calibrated": cal["mlc2seq"]}, seed=seed, predictions=half)
        _write(tmp_path, "otseq2set", {**_metrics(1.0), "epochs": _epochs([(slow, f1 - 0.05), (slow, f1 + 0.03)]),
                                       "calibrated": cal["otseq2set"]}, seed=seed, predictions=good)
    _write(tmp_path, "sgm", _metrics(0.7))  # an old record without predictions
    runs = results.collect(tmp_path, "eurlex57k")
    text = results.conclusion(runs, results.pair_tests(runs, n_resamples=1000))
    lines = text.splitlines()
    assert lines[0] == "Does OTSeq2Set beat the sequence models at this preset?"
    assert lines[2] == ("- Equal epochs, OTSeq2Set against MLC2Seq: +33.33 test micro-F1 (seeds 2 / 2; "
                        "p = 0.0010 over test documents, p < 0.001 over seeds): **ahead**.")
    assert lines[3] == ("- Equal epochs, OTSeq2Set against SGM: test micro-F1 100.00 ± 0.00 vs 70.00 (seeds 2 / 1; "
                        "no committed predictions of SGM): **not tested**.")
    # calibrated: Welch over seeds only; t = 0.05 / sqrt(0.0002 / 2) = 5 with 1 degree of freedom (Cauchy)
    p = 1 - 2 * math.atan(5) / math.pi
    assert lines[4] == ("- Calibrated rule (each model's τ chosen on dev), OTSeq2Set against MLC2Seq: +5.00 test micro-F1 "
                        f"(seeds 2 / 2; p = {p:.3f} over seeds; no test over documents, as the calibrated sets are not "
                        "committed): **not shown over seeds**.")
    assert lines[5] == ("- Calibrated rule (each model's τ chosen on dev), OTSeq2Set against SGM: **not tested** (seeds "
                        "with the calibrated entry: 2 / 0; the test needs at least 2 each).")
    # seed 0: OTSeq2Set's first epoch took 2 h, MLC2Seq's two epochs 2 h: 55.00 vs 62.00 within 2 h
    assert ("- Equal training time, OTSeq2Set against MLC2Seq: best dev micro-F1 within 2.0 h of training, "
            "55.00 vs 62.00 (-7.00; the lowest seed of each, no test).") in lines
    assert "Seq2Seq:" not in text  # no run, no line
    block = results.markdown(runs, "eurlex57k")  # the docs' block holds it (with 10,000 resamples there)
    assert lines[0] in block and lines[3] in block and lines[-1] in block
    # the run that lacks predictions is the one named
    for seed in (0, 1):
        (tmp_path / "eurlex57k" / "otseq2set" / f"seed{seed}" / "predictions.tsv.gz").unlink()
    runs = results.collect(tmp_path, "eurlex57k")
    text = results.conclusion(runs, results.pair_tests(runs, n_resamples=1000))
    assert "(seeds 2 / 2; no committed predictions of OTSeq2Set (BM+OT+LC)): **not tested**." in text
    assert "(seeds 2 / 1; no committed predictions of OTSeq2Set (BM+OT+LC) and SGM): **not tested**." in text


def test_calibration_table_sets_decoded_beside_calibrated_means(tmp_path):
    for seed, (tau, f1) in enumerate(((0.4, 0.70), (None, 0.66))):
        m = _metrics(0.6)  # decoded: best dev 0.6, test P 0.6, R 0.5, F1 0.6, 4.5 labels per document
        m["calibrated"] = {"rule": "score >= tau", "tau": tau, "valid": {"micro_f1": f1 + 0.02},
                           "test": {"micro_precision": 0.7, "micro_recall": 0.5 + seed / 10, "micro_f1": f1,
                                    "mean_predicted_labels": 4.0 + seed}}
        _write(tmp_path, "otseq2set", m, seed=seed)
    linear = {"valid": {"micro_f1": 0.72}, "test": _metrics(0.7)["test"], "train_time_s": 6.0,
              "calibrated": {"tau": -0.25, "valid": {"micro_f1": 0.75}, "test": _metrics(0.74)["test"]}}
    _write(tmp_path, "linear", linear)  # no epochs: its decoded dev figure is "valid"
    _write(tmp_path, "mlc2seq", _metrics(0.6))  # no calibrated entry: no row
    rows = results.calibration_table(results.collect(tmp_path, "eurlex57k")).splitlines()[4:]
    assert rows == ["| OTSeq2Set (BM+OT+LC) | 2 | 0.4, kept | 60.00 → 70.00 | 60.00 → 70.00 | 50.00 → 55.00 "
                    "| 60.00 → 68.00 | 4.50 → 4.50 |",
                    "| linear one-vs-rest, TF-IDF (this toolkit) | 1 | -0.25 | 72.00 → 75.00 | 60.00 → 60.00 "
                    "| 50.00 → 50.00 | 70.00 → 74.00 | 4.50 → 4.50 |"]


def test_no_conclusion_without_both_sides(tmp_path):
    _write(tmp_path, "otseq2set", _metrics(0.6))
    _write(tmp_path, "mlc2seq", _metrics(0.6, finished=False))  # unfinished: nothing to compare with
    runs = results.collect(tmp_path, "eurlex57k")
    assert results.conclusion(runs, []) == ""
    assert "Does OTSeq2Set beat" not in results.markdown(runs, "eurlex57k")


def test_equal_time_counts_every_model_at_its_fastest_epoch_over_all_seeds(tmp_path):
    # seed 0 of MLC2Seq shared the cores for its whole run (a tenth of its speed); seed 1 ran alone
    fast = 1000 / 3600
    _write(tmp_path, "mlc2seq", {"epochs": _epochs([(fast / 10, 0.50), (fast / 10, 0.60)])}, seed=0)
    _write(tmp_path, "mlc2seq", {"epochs": _epochs([(fast, 0.51)])}, seed=1)
    _write(tmp_path, "otseq2set", {"epochs": _epochs([(fast / 2, 0.55), (fast / 2, 0.58)])})
    runs = results.collect(tmp_path, "eurlex57k")
    assert results.model_rates(runs) == {"mlc2seq": fast, "otseq2set": fast / 2}
    first = [rs[0] for rs in results.by_run(runs).values()]
    # MLC2Seq's seed 0 at seed 1's rate: 1 h per epoch, so 2 h for both; OTSeq2Set's first epoch: 2 h
    assert results.equal_time(first, results.model_rates(runs)) == [("otseq2set", "mlc2seq", 0.55, 0.60, 2.0)]
    assert "| 1 | 50.00 (1.0 h) | 55.00 (2.0 h) |" in results.markdown(runs, "eurlex57k")
    # by the first seed alone MLC2Seq would look ten times slower: no epoch within OTSeq2Set's 4 h
    assert results.equal_time(first) == []


def test_diagnostics_table_over_seeds_with_missing_keys_shown_as_dashes(tmp_path):
    for seed, rate in ((0, 0.4), (1, 0.6)):
        m = _metrics(0.6)
        m["test"].update(weighted_f1=0.62, example_f1=0.64, f1_head=0.8, f1_torso=0.6, f1_tail=0.5,
                         count_over_rate=rate, count_under_rate=0.2)
        _write(tmp_path, "otseq2set", m, seed=seed)
    _write(tmp_path, "sgm", _metrics(0.6))  # an old record: no diagnostics
    _write(tmp_path, "bm", _metrics(0.6, finished=False))  # unfinished: no row
    rows = results.diagnostics_table(results.collect(tmp_path, "eurlex57k")).splitlines()
    assert rows[2] == ("| model | seeds | weighted-F1 | example-F1 | head F1 | torso F1 | tail F1 | docs over-predicted "
                       "| docs under-predicted |")
    assert rows[4:] == ["| SGM | 1 | — | — | — | — | — | — | — |",
                        "| OTSeq2Set (BM+OT+LC) | 2 | 62.00 ± 0.00 | 64.00 ± 0.00 | 80.00 ± 0.00 | 60.00 ± 0.00 "
                        "| 50.00 ± 0.00 | 50.00 ± 14.14 | 20.00 ± 0.00 |"]


def test_record_copies_a_finished_run_and_checks_its_predictions(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"train": {"seed": 2}}))
    (run / "predictions.tsv").write_text(_tsv([("d1", ["a", "b"], ["a"]), ("d2", ["c"], ["c", "d"])]))
    # TP 2, FP 1, FN 1: micro-F1 = 4 / 6
    (run / "metrics.json").write_text(json.dumps({"test": {"micro_f1": 4 / 6}}))
    dest = results.record(run, tmp_path / "results", "reuters", "otseq2set")
    assert dest == tmp_path / "results" / "reuters" / "otseq2set" / "seed2"
    assert sorted(p.name for p in dest.iterdir()) == ["config.json", "metrics.json", "predictions.tsv.gz"]
    assert gzip.decompress((dest / "predictions.tsv.gz").read_bytes()) == (run / "predictions.tsv").read_bytes()
    first = (dest / "predictions.tsv.gz").read_bytes()
    results.record(run, tmp_path / "results", "reuters", "otseq2set")
    assert (dest / "predictions.tsv.gz").read_bytes() == first  # no time stamp: same bytes
    (run / "metrics.json").write_text(json.dumps({"test": {"micro_f1": 0.5}}))
    with pytest.raises(ValueError, match="micro-F1 0.666667 != metrics.json's 0.500000"):
        results.record(run, tmp_path / "results", "reuters", "otseq2set")
    with pytest.raises(ValueError, match="unknown run name"):
        results.record(run, tmp_path / "results", "reuters", "bert")


def test_record_never_overwrites_a_record_of_another_setting(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    config = {"out": str(run), "data": {"data_dir": "a"}, "net": {"empty_weight": 0.2}, "train": {"seed": 0}}
    (run / "config.json").write_text(json.dumps(config))
    (run / "predictions.tsv").write_text(_tsv([("d1", ["a"], ["a"])]))
    (run / "metrics.json").write_text(json.dumps({"test": {"micro_f1": 1.0}}))
    dest = results.record(run, tmp_path / "results", "reuters", "otseq2set")
    # the same setting from another directory and data directory: replaced
    (run / "config.json").write_text(json.dumps({**config, "out": "elsewhere", "data": {"data_dir": "b"}}))
    results.record(run, tmp_path / "results", "reuters", "otseq2set")
    assert json.loads((dest / "config.json").read_text())["out"] == "elsewhere"
    (run / "config.json").write_text(json.dumps({**config, "net": {"empty_weight": 0.5}}))
    with pytest.raises(ValueError, match=r"seed0 holds a record of another setting \(net.empty_weight 0.2 -> 0.5\)"):
        results.record(run, tmp_path / "results", "reuters", "otseq2set")
    assert json.loads((dest / "config.json").read_text())["out"] == "elsewhere"  # untouched
    assert results.setting_changes({"net": {"a": 1}}, {"net": {"a": 1, "b": 2}}) == ["net.b (none) -> 2"]


@pytest.mark.parametrize("dataset", ["eurlex57k", "reuters"])
def test_committed_predictions_give_the_committed_micro_f1(dataset):
    from evaluation.significance import micro_f1_from_counts

    runs = [r for r in results.collect(ROOT / "results", dataset) if r.predictions]
    for r in runs:
        f1 = float(micro_f1_from_counts(results.document_counts(rundir.read_predictions(r.predictions))))
        assert f1 == pytest.approx(r.metrics["test"]["micro_f1"], abs=1e-9), (r.name, r.seed)


def test_unknown_run_directory_is_an_error(tmp_path):
    (tmp_path / "eurlex57k" / "bert").mkdir(parents=True)
    (tmp_path / "eurlex57k" / "otseq2set").mkdir(parents=True)
    with pytest.raises(ValueError, match="unknown run directories bert"):
        results.collect(tmp_path, "eurlex57k")


def test_replace_block_keeps_the_rest():
    begin, end = results.markers("eurlex57k")
    text = f"intro\n{begin}\nold\n{end}\noutro\n"
    assert results.replace_block(text, "eurlex57k", "new") == f"intro\n{begin}\nnew\n{end}\noutro\n"
    with pytest.raises(ValueError, match="block"):
        results.replace_block("no markers", "eurlex57k", "new")


def test_a_config_written_by_its_command_passes_the_check_and_another_fails(stand_in_data_dir):
    data = stand_in_data_dir
    argv = shlex.split(results.command("eurlex57k", "cpu", "bm", str(data)))[2:]
    saved = cli.config_from_args(cli.train_parser("otseq2set", "test").parse_args(argv), "otseq2set").to_dict()
    saved["net"]["embed_dim"] = 50  # what the GloVe file sets at run time
    run = results.Run("bm", saved, _metrics(0.6))
    _check_config(run, "eurlex57k", str(data))
    assert saved["net"]["ot_weight"] == 0.0 and saved["net"]["use_lightconv"] is False
    saved["net"]["hidden_size"] = 256  # a run that is not what its command says
    with pytest.raises(AssertionError, match="net"):
        _check_config(run, "eurlex57k", str(data))


def _check_config(run: results.Run, dataset: str, data_dir: str) -> None:
    """The saved config of ``run`` is what its README command resolves to (run-time fields aside)."""
    seed = run.config.get("train", {}).get("seed", 0)
    argv = shlex.split(results.command(dataset, run.config.get("variant"), run.name, data_dir, seed=seed))[2:]
    model = results.RUNS[run.name][1]
    resolved = cli.config_from_args(cli.train_parser(model, "test").parse_args(argv), model).to_dict()
    # settings added since the run was made: their defaults
    saved = {**run.config, **{k: asdict(cls(**run.config[k])) for k, cls in SECTIONS.items()}}
    # set at run time or by the machine: the run directory, and the GloVe file's dimension
    resolved["out"], resolved["data"]["data_dir"] = saved["out"], saved["data"]["data_dir"]
    resolved["net"]["embed_dim"] = saved["net"]["embed_dim"]
    resolved["net"]["label_embed_dim"] = saved["net"]["label_embed_dim"]
    for key in resolved:
        assert saved[key] == resolved[key], (run.name, key)


@pytest.mark.parametrize("dataset", ["eurlex57k", "reuters"])
def test_docs_table_equals_the_committed_metrics(dataset, load_script):
    assert results.collect(ROOT / "results", dataset), f"no committed run under results/{dataset}"
    begin, end = results.markers(dataset)
    readme = (ROOT / "docs" / "results.md").read_text()
    block = readme.split(begin, 1)[1].split(end, 1)[0].strip()
    assert block == load_script("examples/results_table.py").table(ROOT / "results", dataset)


@pytest.mark.parametrize("dataset", ["eurlex57k", "reuters"])
def test_committed_configs_are_what_their_commands_resolve_to(dataset, stand_in_data_dir):
    runs = results.collect(ROOT / "results", dataset)
    assert runs, f"no committed run under results/{dataset}"
    for run in runs:
        if run.name != results.LINEAR:  # no preset: its config is its own (tests/test_linear.py)
            _check_config(run, dataset, str(stand_in_data_dir))  # the data directory is not compared


def _epochs(rates_and_f1s) -> list[dict]:
    return [{"epoch": i + 1, "train": {"docs": 1000, "time_s": 1000 / r, "docs_per_s": r}, "valid": {"micro_f1": f}}
            for i, (r, f) in enumerate(rates_and_f1s)]


def test_curves_give_equal_epoch_and_equal_time_comparisons(tmp_path):
    # MLC2Seq at 1,000/3,600 docs/s: one epoch per hour; OTSeq2Set half as fast, its slowed
    # second epoch (a pause) counted at its fastest epoch's rate
    fast, slow = 1000 / 3600, 500 / 3600
    _write(tmp_path, "mlc2seq", {"epochs": _epochs([(fast, 0.50), (fast, 0.60), (fast, 0.62), (fast, 0.63)])})
    _write(tmp_path, "otseq2set", {"epochs": _epochs([(slow, 0.55), (slow / 10, 0.64)])})
    text = results.curves(results.collect(tmp_path, "eurlex57k"))
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and ln[2].isdigit()]
    assert rows == ["| 1 | 50.00 (1.0 h) | 55.00 (2.0 h) |", "| 2 | 60.00 (2.0 h) | 64.00 (4.0 h) |",
                    "| 3 | 62.00 (3.0 h) |  |", "| 4 | 63.00 (4.0 h) |  |"]
    # equal time: both ran 4 h; within 2 h MLC2Seq would be at 60, so the budget is the whole 4 h
    assert "OTSeq2Set (BM+OT+LC) 64.00 vs MLC2Seq 63.00 within 4.0 h" in text
    (tmp_path / "eurlex57k" / "otseq2set" / "seed0" / "metrics.json").write_text(json.dumps({"epochs": _epochs([(slow, 0.55)])}))
    text = results.curves(results.collect(tmp_path, "eurlex57k"))
    assert "OTSeq2Set (BM+OT+LC) 55.00 vs MLC2Seq 60.00 within 2.0 h" in text  # MLC2Seq's first 2 epochs
    # an ablation gets its curve, and the equal-time line only where OTSeq2Set has no run
    _write(tmp_path, "bm", {"epochs": _epochs([(slow, 0.45)])})
    text = results.curves(results.collect(tmp_path, "eurlex57k"))
    assert "| 1 | 50.00 (1.0 h) | 45.00 (2.0 h) | 55.00 (2.0 h) |" in text
    assert "BM 45.00 vs" not in text and "OTSeq2Set (BM+OT+LC) 55.00 vs MLC2Seq 60.00 within 2.0 h" in text
    shutil.rmtree(tmp_path / "eurlex57k" / "otseq2set")
    assert "BM 45.00 vs MLC2Seq 60.00 within 2.0 h" in results.curves(results.collect(tmp_path, "eurlex57k"))


def test_reference_rows_under_the_runs_with_their_published_digits(tmp_path, load_script):
    _write(tmp_path, "otseq2set", _metrics(0.6543))
    lines = load_script("examples/results_table.py").table(tmp_path, "eurlex57k").splitlines()
    summary = lines[:lines.index("")]  # the first table; the diagnostics table follows
    rows = [ln for ln in summary if ln.startswith("| ") and not ln.startswith("| model")]
    assert rows[0].startswith("| OTSeq2Set")  # runs first, references under them
    assert rows[1] == ("| *linear one-vs-rest, TF-IDF (LibMultiLabel 0.10, same split, CPU)* | — | — | — | 71.4 "
                       "| 21.2 | 92.8 | 69.4 | 83.0 | — | — | — |")
    assert rows[3].startswith("| *BERT-base") and rows[3].count("—") == 10
    assert all(r.count("|") == rows[0].count("|") for r in rows)  # as many cells as the header
    assert any("*italics* are references" in ln for ln in lines)
    # without references (the library's default): no rows, no note
    assert "italics" not in results.markdown(results.collect(tmp_path, "eurlex57k"), "eurlex57k")


def test_counts_per_epoch_beside_the_gold_mean(tmp_path):
    epochs = _epochs([(1.0, 0.5), (1.0, 0.6)])
    for e, count in zip(epochs, (6.17, 5.6)):
        e["valid"].update(mean_predicted_labels=count, mean_gold_labels=5.04)
    _write(tmp_path, "bm", {"epochs": epochs})
    _write(tmp_path, "otseq2set", {"epochs": [{**epochs[0], "valid": {**epochs[0]["valid"], "mean_predicted_labels": 5.024}}]})
    _write(tmp_path, "mlc2seq", {"epochs": _epochs([(1.0, 0.5)])})  # an old record without counts: left out
    text = results.counts(results.collect(tmp_path, "eurlex57k"))
    assert text.splitlines()[0] == "Labels predicted per dev document after each epoch (gold: 5.04):"
    assert text.splitlines()[2:] == ["| epoch | BM | OTSeq2Set (BM+OT+LC) |", "|---:|---:|---:|",
                                     "| 1 | 6.17 | 5.02 |", "| 2 | 5.60 |  |"]
    assert "MLC2Seq" not in text
    assert "gold: 5.04" in results.markdown(results.collect(tmp_path, "eurlex57k"), "eurlex57k")


def test_curves_of_short_runs_count_minutes(tmp_path):
    rate = 1000 / 600  # one epoch per 10 minutes
    _write(tmp_path, "mlc2seq", {"epochs": _epochs([(rate, 0.5), (rate, 0.6)])})
    _write(tmp_path, "otseq2set", {"epochs": _epochs([(rate / 2, 0.55)])})
    text = results.curves(results.collect(tmp_path, "eurlex57k"))
    assert "| 1 | 50.00 (10 min) | 55.00 (20 min) |" in text
    assert "OTSeq2Set (BM+OT+LC) 55.00 vs MLC2Seq 60.00 within 20 min" in text


def test_training_times_under_a_minute_are_given_in_seconds(tmp_path):
    # the linear model trains Reuters in seconds: "6 s", not "0 min"
    shown = {"linear": (5.77, "6 s"), "mlc2seq": (599.0, "10 min"), "otseq2set": (7500.0, "2 h 05 min")}
    for name, (seconds, _) in shown.items():
        _write(tmp_path, name, {**_metrics(0.6), "train_time_s": seconds})
    rows = results.summary_table(results.collect(tmp_path, "eurlex57k")).splitlines()[2:]
    cells = {r.split("|")[1].strip(): r.rsplit("|", 2)[1].strip() for r in rows}  # row label -> training time
    assert cells == {results.RUNS[name][0]: text for name, (_, text) in shown.items()}
