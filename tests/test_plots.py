"""xmtc.reporting.plots and examples/plots.py: every figure is a valid, non-empty PNG.

Inputs are real: a small run directory trained by the engine on the
``synthetic`` dataset (config.json, metrics.json, predictions.tsv), the
synthetic dataset itself and Reuters-21578 through the ``data_dir`` fixture.
Plot tests are skipped, with the reason, only where matplotlib (the optional
extra ``[plot]``) is not installed; the checks that the core never imports
matplotlib always run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
try:
    import matplotlib  # noqa: F401

    HAS_MPL = True
except ImportError:
    HAS_MPL = False
needs_mpl = pytest.mark.skipif(not HAS_MPL, reason="matplotlib is not installed: pip install -e '.[plot]'")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, min_size: int = (300, 200)) -> None:
    """A readable PNG of at least ``min_size`` pixels (w, h) that is not a blank canvas."""
    path = Path(path)
    assert path.is_file(), f"{path} was not written"
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert len(data) > 2000, f"{path} is suspiciously small ({len(data)} bytes)"
    from matplotlib.image import imread

    img = imread(path)  # (H, W, 3 or 4), floats in [0, 1]
    h, w = img.shape[:2]
    assert w >= min_size[0] and h >= min_size[1], f"{path}: {w}x{h} pixels"
    assert float(np.std(img[..., :3])) > 0.01, f"{path} is blank"


# --------------------------------------------------------------------------- a small real run
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished run directory: 2 epochs of a tiny OTSeq2Set on synthetic data (seconds on a CPU)."""
    from xmtc import config
    from xmtc.run import train_run
    out = tmp_path_factory.mktemp("runs") / "otseq2set-synthetic-tiny"
    cfg = config.compose("synthetic", fast=True, overrides={
        "data": {"max_src_len": 30, "options": {"n_docs": 120, "n_labels": 8}},
        "net": {"embed_dim": 16, "hidden_size": 16, "ipot_iter": 5},
        "train": {"epochs": 2, "batch_size": 32, "device": "cpu"},
        "out": str(out),
    })
    train_run(cfg, out_dir=out)
    for name in ("config.json", "metrics.json", "predictions.tsv"):
        assert (out / name).is_file(), f"the engine did not write {name}"
    return out


@pytest.fixture(scope="module")
def sweep_dirs(run_dir, tmp_path_factory) -> list[tuple[float, Path]]:
    """Three run directories of a λ sweep: copies of the real run with λ and test micro-F1 changed."""
    root = tmp_path_factory.mktemp("sweep")
    pairs = []
    for lam, f1 in ((0.0, 0.30), (1.0, 0.35), (8.0, 0.40)):
        d = root / f"lam{lam:g}"
        shutil.copytree(run_dir, d, ignore=shutil.ignore_patterns("*.pt"))
        cfg = json.loads((d / "config.json").read_text())
        cfg["net"]["ot_weight"] = lam
        (d / "config.json").write_text(json.dumps(cfg))
        m = json.loads((d / "metrics.json").read_text())
        m["test"]["micro_f1"] = f1
        (d / "metrics.json").write_text(json.dumps(m))
        pairs.append((lam, d))
    return pairs


def test_run_directory_layout(run_dir):
    """What the plots read: per-epoch loss terms and validation metrics, test metrics, predictions."""
    from xmtc.reporting.plots import read_metrics, read_predictions

    m = read_metrics(run_dir)
    assert [r["epoch"] for r in m["epochs"]] == [1, 2]
    assert {"loss", "match", "ot"} <= set(m["epochs"][0]["train"])
    assert "micro_f1" in m["epochs"][0]["valid"] and "micro_f1" in m["test"]
    gold, pred = read_predictions(run_dir)
    assert len(gold) == len(pred) > 0 and all(gold)


# --------------------------------------------------------------------------- the four figures
@needs_mpl
def test_training_curves(run_dir, tmp_path):
    from xmtc.reporting.plots import plot_training_curves

    fig = plot_training_curves(run_dir, tmp_path / "curves.png")
    assert_png(tmp_path / "curves.png")
    loss_ax, f1_ax = fig.axes[:2]
    labels = [t.get_text() for t in loss_ax.get_legend().get_texts()]
    for term in ("total", "L_match", "L_OT"):
        assert any(term in s for s in labels), labels
    assert loss_ax.get_xlabel() == "epoch" and "%" in f1_ax.get_ylabel()


@needs_mpl
def test_training_curves_of_an_unfinished_run(run_dir, tmp_path):
    """A run still training has epochs but no ``test`` entry yet: still plotted."""
    from xmtc.reporting.plots import plot_training_curves, read_metrics

    m = read_metrics(run_dir)
    m.pop("test")
    m["epochs"] = m["epochs"][:1]
    plot_training_curves(m, tmp_path / "partial.png")
    assert_png(tmp_path / "partial.png")


@needs_mpl
def test_count_histogram_from_run_and_from_sets(run_dir, tmp_path):
    from xmtc.reporting.plots import plot_count_histogram

    plot_count_histogram(run=run_dir, out=tmp_path / "from_run.png")
    assert_png(tmp_path / "from_run.png")
    fig = plot_count_histogram([{1, 2}, set(), {3}], [{1}, {2, 3}, {3}], tmp_path / "from_sets.png")
    assert_png(tmp_path / "from_sets.png")
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("same size 33.3%" in s for s in texts)  # only document 3 has the gold size


@needs_mpl
def test_label_count_distribution_synthetic(tmp_path):
    from xmtc.data import datasets
    from xmtc.reporting.plots import plot_label_count_distribution

    ds = datasets.load("synthetic", n_docs=200, cache=False)
    fig = plot_label_count_distribution(ds, tmp_path / "synthetic.png")
    assert_png(tmp_path / "synthetic.png")
    counts = ds.train_full.n_labels_per_doc
    below = 100 * (counts < counts.mean()).mean()
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(f"below the mean: {below:.1f}%" in s for s in texts)


@needs_mpl
def test_label_count_distribution_reuters(data_dir, tmp_path):
    """Reuters ModApte: 1.23 labels per document, most documents below the mean."""
    from xmtc.data import datasets
    from xmtc.reporting.plots import plot_label_count_distribution

    if not (data_dir / "reuters21578.tar.gz").is_file():
        pytest.skip(f"reuters21578.tar.gz not in {data_dir}")
    ds = datasets.load("reuters", data_dir)
    fig = plot_label_count_distribution(ds, tmp_path / "reuters.png")
    assert_png(tmp_path / "reuters.png")
    texts = " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    assert "below the mean: 84.7%" in texts and "mean = 1.23" in texts


@needs_mpl
def test_label_count_distribution_accepts_counts_and_sets(tmp_path):
    from xmtc.reporting.plots import plot_label_count_distribution

    plot_label_count_distribution([1, 1, 2, 3, 8, 40], tmp_path / "counts.png", name="toy")
    assert_png(tmp_path / "counts.png")
    plot_label_count_distribution([{0}, {0, 1}, {2, 3, 4}], tmp_path / "sets.png", name="toy")
    assert_png(tmp_path / "sets.png")


@needs_mpl
def test_lambda_sweep_from_pairs_and_json(sweep_dirs, tmp_path):
    from xmtc.reporting.plots import plot_lambda_sweep, read_sweep

    fig = plot_lambda_sweep(sweep_dirs, tmp_path / "pairs.png")
    assert_png(tmp_path / "pairs.png")
    line = fig.axes[0].lines[0]
    assert list(line.get_xdata()) == [0.0, 1.0, 8.0]
    assert np.allclose(line.get_ydata(), [30.0, 35.0, 40.0])

    # JSON forms, relative run directories resolved beside the file
    root = sweep_dirs[0][1].parent
    runs = [{"ot_weight": lam, "run_dir": d.name} for lam, d in sweep_dirs]
    (root / "sweep.json").write_text(json.dumps({"runs": runs}))
    (root / "pairs.json").write_text(json.dumps([[lam, str(d)] for lam, d in sweep_dirs]))
    (root / "dirs.json").write_text(json.dumps([d.name for _, d in sweep_dirs]))  # λ from config.json
    for name in ("sweep.json", "pairs.json", "dirs.json"):
        assert [lam for lam, _ in read_sweep(root / name)] == [0.0, 1.0, 8.0]
    plot_lambda_sweep(root / "sweep.json", tmp_path / "json.png", split="valid")
    assert_png(tmp_path / "json.png")


@needs_mpl
def test_lambda_sweep_averages_repeated_lambdas(sweep_dirs, tmp_path):
    from xmtc.reporting.plots import plot_lambda_sweep

    pairs = sweep_dirs + [(8.0, sweep_dirs[0][1])]  # a second "seed" at λ = 8 with micro-F1 30
    fig = plot_lambda_sweep(pairs, tmp_path / "seeds.png")
    assert_png(tmp_path / "seeds.png")
    assert np.allclose(fig.axes[0].lines[0].get_ydata(), [30.0, 35.0, 35.0])


def test_bad_inputs_are_reported(tmp_path, run_dir):
    from xmtc.reporting.plots import read_metrics, read_predictions, read_sweep

    with pytest.raises(FileNotFoundError, match="metrics.json"):
        read_metrics(tmp_path)
    with pytest.raises(FileNotFoundError, match="predictions.tsv"):
        read_predictions(tmp_path)
    with pytest.raises(ValueError, match="empty"):
        read_sweep([])
    with pytest.raises(ValueError, match="ot_weight"):
        read_sweep([str(tmp_path)])  # a directory without config.json


# --------------------------------------------------------------------------- command line
@needs_mpl
def test_cli_writes_every_figure(run_dir, sweep_dirs, data_dir, tmp_path, capsys):
    sys.path.insert(0, str(REPO / "examples"))
    try:
        import plots as cli_plots
    finally:
        sys.path.remove(str(REPO / "examples"))
    assert cli_plots.main(["run", str(run_dir), "--out-dir", str(tmp_path)]) == 0
    assert_png(tmp_path / "training_curves.png")
    assert_png(tmp_path / "label_counts.png")
    assert cli_plots.main(["dataset", "synthetic", "--out-dir", str(tmp_path)]) == 0
    assert_png(tmp_path / "synthetic_label_counts.png")
    args = ["sweep", *(f"--run={lam}={d}" for lam, d in sweep_dirs), "--out", str(tmp_path / "sweep.png")]
    assert cli_plots.main(args) == 0
    assert_png(tmp_path / "sweep.png")
    assert cli_plots.main(["sweep", *(str(d) for _, d in sweep_dirs), "--out", str(tmp_path / "dirs.png")]) == 0
    assert_png(tmp_path / "dirs.png")
    assert "wrote" in capsys.readouterr().out
    assert cli_plots.main(["sweep", str(tmp_path / "missing")]) == 2
    assert "plots.py: error:" in capsys.readouterr().err


# --------------------------------------------------------------------------- matplotlib stays optional
def test_core_never_imports_matplotlib():
    code = ("import sys, xmtc, xmtc.reporting.plots, xmtc.train.engine, xmtc.data.datasets, losses, models, baselines, evaluation; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported by the core'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_missing_matplotlib_gives_the_install_hint():
    code = ("import sys; sys.modules['matplotlib'] = None; sys.modules['matplotlib.figure'] = None\n"
            "from xmtc.reporting.plots import plot_label_count_distribution\n"
            "try:\n    plot_label_count_distribution([1, 2, 3])\n"
            "except ImportError as e:\n    print(e)\nelse:\n    raise SystemExit('no ImportError')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True).stdout
    assert "pip install -e '.[plot]'" in out
