"""Results tables for the docs, generated from committed run records, with seeds and paired tests.

A benchmark's runs are committed as small files, one directory per run and seed,
``results/<dataset>/<run>/seed<K>/``: ``config.json`` and ``metrics.json`` (what the
training scripts write) and ``predictions.tsv.gz`` (document id, gold labels,
predicted labels; :func:`record` copies a finished run directory there after
checking that the predictions give the run's test micro-F1). Never checkpoints or
data. :data:`RUNS` names each run's row and model, and :func:`command` gives the
command that trains it (the paper's variants, :mod:`xmtc.config.ablation`, the studies of
:data:`STUDIES` and the linear reference), so the table shows, beside every number,
the exact command; the tests check that each committed ``config.json`` is what that
command resolves to, and that the docs' tables are this module's output::

    python examples/results_table.py eurlex57k                          # print the markdown
    python examples/results_table.py eurlex57k --write docs/results.md  # replace the block between its markers
    python examples/results_table.py reuters --record ~/runs/reuters/otseq2set/seed1 --run otseq2set

Per model the tables give the mean ± standard deviation over seeds
(:func:`evaluation.significance.seed_summary`); per pair of models the mean
difference of test micro-F1, a paired bootstrap over test documents
(:func:`evaluation.significance.paired_bootstrap`, from the committed predictions
of every seed) and Welch's t-test over the seeds
(:func:`evaluation.significance.welch_seeds`). A difference counts as shown
only where both reject at :data:`ALPHA`, and :func:`conclusion` states, from
those verdicts, the calibrated entries and the per-epoch curves, whether
OTSeq2Set beats each sequence model at equal epochs, under the calibrated rule
and at equal training time. Beside them: the paper's other metrics and F1 by
label frequency (:func:`diagnostics_table`), decoded against calibrated sets
(:func:`calibration_table`) and the studies of :data:`STUDIES` per epoch
(:func:`study_table`).
"""

from __future__ import annotations

import gzip
import io
import shlex
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from evaluation import atomic_write
from xmtc.config import preset
from xmtc.config.ablation import BY_RUN, VARIANTS
from xmtc.train import rundir

if TYPE_CHECKING:  # imported where used: the tables need SciPy only when they test pairs
    from evaluation.significance import BootstrapResult, SeedTestResult

#: Runs beyond the paper's variants: run name -> (row label, the variant it changes, extra flags).
STUDIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "otseq2set_nmax": ("OTSeq2Set, paper's N (largest label set)", "otseq2set", ("--n-steps", "none")),
    "otseq2set_empty0.2": ("OTSeq2Set, paper's λ_∅ = 0.2", "otseq2set", ("--empty-weight", "0.2")),
    "otseq2set_empty1.0": ("OTSeq2Set, λ_∅ = 1.0", "otseq2set", ("--empty-weight", "1.0")),
    "bm_ot_empty0.2": ("BM+OT, paper's λ_∅ = 0.2", "bm_ot", ("--empty-weight", "0.2")),
    "bm_empty0.2": ("BM, paper's λ_∅ = 0.2", "bm", ("--empty-weight", "0.2")),
}
#: The linear one-vs-rest TF-IDF reference trained by the toolkit (``examples/train_linear.py``).
LINEAR = "linear"

#: run directory -> (row label, training script's model), in the order of the paper's variants
#: (:data:`xmtc.config.ablation.VARIANTS`, which also gives each run's flags), then the studies and the linear model.
RUNS: dict[str, tuple[str, str]] = {
    **{v.run: ("OTSeq2Set (BM+OT+LC)" if v.run == "otseq2set" else v.name, v.model) for v in VARIANTS},
    **{name: (label, BY_RUN[base].model) for name, (label, base, _) in STUDIES.items()},
    LINEAR: ("linear one-vs-rest, TF-IDF (this toolkit)", LINEAR),
}

#: The studies that give the set model the paper's value where a preset departs from it; each is also
#: tested against the sequence models, so the tables answer the question with the paper's settings too.
PAPER_SETTINGS: tuple[str, ...] = ("otseq2set_empty0.2", "otseq2set_nmax")

#: The pairs tested for a difference, (a, b): OTSeq2Set against each sequence model and the linear
#: model, then each step of the paper's ablation (its Table 3), then the studies against the preset,
#: then :data:`PAPER_SETTINGS` against the sequence models.
PAIRS: tuple[tuple[str, str], ...] = (
    ("otseq2set", "seq2seq"), ("otseq2set", "mlc2seq"), ("otseq2set", "sgm"), ("otseq2set", LINEAR),
    ("bm_ot", "bm"), ("otseq2set", "bm_ot"), ("bm_lc", "bm"),
    *((name, base) for name, (_, base, _) in STUDIES.items()),
    *((name, b) for name in PAPER_SETTINGS for b in ("seq2seq", "mlc2seq", "sgm")),
)

#: (header, metrics.json test key, scale); percentages as in the paper.
COLUMNS = (("micro-P", "micro_precision", 100), ("micro-R", "micro_recall", 100), ("micro-F1", "micro_f1", 100),
           ("macro-F1", "macro_f1", 100), ("P@1", "p@1", 100), ("P@5", "p@5", 100), ("nDCG@5", "ndcg@5", 100),
           ("labels predicted / gold", None, 1))

#: Reference rows: (row label, {metrics.json test key: percentage as published, its digits kept}).
#: The figures themselves are the docs generator's (``examples/results_table.py``), not the library's.
References = tuple[tuple[str, dict[str, str]], ...]


@dataclass
class Run:
    """One committed run: its directory name, seed, config, metrics and record directory."""

    name: str
    config: dict
    metrics: dict
    seed: int = 0
    path: Path | None = None

    @property
    def finished(self) -> bool:
        return "test" in self.metrics

    @property
    def predictions(self) -> Path | None:
        """``predictions.tsv.gz`` of the record, if committed."""
        p = self.path / PREDICTIONS if self.path is not None else None
        return p if p is not None and p.is_file() else None


PREDICTIONS = "predictions.tsv.gz"


def run_dir(dataset: str, name: str, seed: int = 0) -> str:
    """Where :func:`command` trains a run: ``runs/<dataset>/<run>/seed<K>`` (the layout of ``results/``)."""
    return f"runs/{dataset}/{name}/seed{seed}"


def command(dataset: str, variant: str | None, name: str, data_dir: str = "../shared/data", seed: int = 0) -> str:
    """The command that trains run ``name`` on a dataset's preset (``variant``: ``None``, ``"fast"``, ``"cpu"``).

    ``--seed K`` is added for ``seed != 0`` (the default seed); the linear model has no preset or seed.
    """
    if name == LINEAR:
        return shlex.join(["python", "examples/train_linear.py", "--data", dataset, "--data-dir", data_dir,
                           "--out", run_dir(dataset, name)])
    base, extra = (STUDIES[name][1], STUDIES[name][2]) if name in STUDIES else (name, ())
    spec = BY_RUN[base]
    flags = spec.flags(preset(dataset, model=spec.model, variant=variant).net)
    choice = {None: [], "fast": ["--fast"]}.get(variant, ["--preset", str(variant)])
    args = ["python", f"examples/train_{spec.model}.py", "--data", dataset, *choice, "--data-dir", data_dir, *flags,
            *extra, *(["--seed", str(seed)] if seed else []), "--out", run_dir(dataset, name, seed)]
    return shlex.join(args)


def collect(results_dir: str | Path, dataset: str) -> list[Run]:
    """The runs committed under ``results_dir/dataset``, in :data:`RUNS` order, then by seed."""
    root = Path(results_dir) / dataset
    unknown = sorted(p.name for p in root.glob("*") if p.is_dir() and p.name not in RUNS) if root.is_dir() else []
    if unknown:
        raise ValueError(f"{root}: unknown run directories {', '.join(unknown)}; known: {', '.join(RUNS)}")
    runs = []
    for name in RUNS:
        d = root / name
        if not d.is_dir():
            continue
        seeds = sorted((int(p.name[4:]), p) for p in d.glob("seed*") if p.is_dir() and p.name[4:].isdigit())
        if not seeds:
            raise ValueError(f"{d}: no seed<K>/ record directories (results/<dataset>/<run>/seed<K>/)")
        for seed, p in seeds:
            if (p / "metrics.json").is_file():
                runs.append(Run(name, rundir.read_json(p / rundir.CONFIG), rundir.read_metrics(p), seed, p))
    return runs


def by_run(runs: list[Run]) -> dict[str, list[Run]]:
    """``run name -> its seeds`` (in the order of ``runs``)."""
    out: dict[str, list[Run]] = {}
    for r in runs:
        out.setdefault(r.name, []).append(r)
    return out


# --------------------------------------------------------------------------- predictions
def document_counts(rows: list[tuple[str, set[str], set[str]]]):
    """``(D, 3)`` TP, FP, FN per document of ``xmtc.train.rundir.read_predictions``' rows
    (:func:`evaluation.significance.document_counts` on the label names numbered in order of appearance)."""
    from evaluation.significance import document_counts as counts

    ids: dict[str, int] = {}
    number = (lambda names: {ids.setdefault(n, len(ids)) for n in names})
    gold = [number(g) for _, g, _ in rows]
    return counts([number(p) for _, _, p in rows], gold)


def setting_changes(old: dict, new: dict) -> list[str]:
    """``["net.empty_weight 0.2 -> 0.5", ...]``: where two saved configs differ, the settings a resume may
    change aside (:data:`xmtc.train.run_state.MAY_CHANGE_ON_RESUME`: run directory, data directory, device...)."""
    from xmtc.train.run_state import MAY_CHANGE_ON_RESUME, flat_settings

    a, b = flat_settings(old), flat_settings(new)
    return [f"{k} {a.get(k, '(none)')} -> {b.get(k, '(none)')}" for k in sorted(a.keys() | b.keys())
            if k not in MAY_CHANGE_ON_RESUME and a.get(k) != b.get(k)]


def record(run_path: str | Path, results_dir: str | Path, dataset: str, name: str) -> Path:
    """Copy a finished run directory to ``results_dir/<dataset>/<name>/seed<K>/`` (``K`` from its config).

    Writes ``config.json``, ``metrics.json`` and ``predictions.tsv.gz`` (gzip without a
    time stamp, so the same predictions give the same bytes), after checking that the
    predictions give the run's test micro-F1. A record already there is replaced only
    by a run of the same setting (:func:`setting_changes` empty): a committed record of
    another setting is never overwritten.
    """
    from evaluation.significance import micro_f1_from_counts

    src = Path(run_path)
    if name not in RUNS:
        raise ValueError(f"unknown run name {name!r}; known: {', '.join(RUNS)}")
    metrics = rundir.read_metrics(src)
    if "test" not in metrics:
        raise ValueError(f"{src}: not finished (metrics.json has no test metrics)")
    config = rundir.read_json(src / rundir.CONFIG)
    seed = int(config.get("train", {}).get("seed", 0))
    pred = src / "predictions.tsv"
    if not pred.is_file():
        raise ValueError(f"{src}: no predictions.tsv")
    f1 = float(micro_f1_from_counts(document_counts(rundir.read_predictions(pred))))
    if abs(f1 - metrics["test"]["micro_f1"]) > 1e-9:
        raise ValueError(f"{pred}: micro-F1 {f1:.6f} != metrics.json's {metrics['test']['micro_f1']:.6f}")
    dest = Path(results_dir) / dataset / name / f"seed{seed}"
    if (dest / rundir.CONFIG).is_file():
        changed = setting_changes(rundir.read_json(dest / rundir.CONFIG), config)
        if changed:
            raise ValueError(f"{dest} holds a record of another setting ({'; '.join(changed)}); move it first "
                             f"(git mv) or record under another --run name")
    dest.mkdir(parents=True, exist_ok=True)
    for f in (rundir.CONFIG, rundir.METRICS):
        with atomic_write(dest / f, "wb", permissions=0o644) as out:
            out.write((src / f).read_bytes())
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz:
        gz.write(pred.read_bytes())
    with atomic_write(dest / PREDICTIONS, "wb", permissions=0o644) as out:
        out.write(buf.getvalue())
    return dest


def _duration(seconds: float) -> str:
    """``42 s``, ``17 min``, ``2 h 05 min``."""
    if seconds < 59.5:
        return f"{seconds:.0f} s"
    m = round(seconds / 60)
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{m} min"


def _progress(r: Run) -> str:
    """``MLC2Seq 1/5 epochs, best dev micro-F1 52.18 (epoch 1)`` for an unfinished run."""
    done = r.metrics.get("epochs_run", len(r.metrics.get("epochs", [])))
    text = f"{RUNS[r.name][0]} {done}/{r.config['train']['epochs']} epochs"
    best = r.metrics.get("best")
    if best:
        text += f", best dev micro-F1 {100 * best['micro_f1']:.2f} (epoch {best['epoch']})"
    return text


def model_rates(runs: list[Run]) -> dict[str, float]:
    """Training documents/s of each run name in its fastest epoch over all its seeds.

    Other jobs and pauses only ever slow an epoch down, and a seed may have
    shared the cores for its whole run, so the fastest epoch of any seed is the
    best estimate of what the model costs on an idle machine.
    """
    out: dict[str, float] = {}
    for r in runs:
        for e in r.metrics.get("epochs", []):
            out[r.name] = max(out.get(r.name, 0.0), e["train"]["docs_per_s"])
    return out


def _curve(r: Run, rate: float) -> list[tuple[int, float, float]]:
    """``(epoch, dev micro-F1, cumulative training hours at ``rate`` documents/s)`` per epoch run."""
    docs, out = 0, []
    for e in r.metrics["epochs"]:
        docs += e["train"]["docs"]
        out.append((e["epoch"], e["valid"]["micro_f1"], docs / rate / 3600))
    return out


def _per_epoch(runs: list[Run], cells: list[list[str]]) -> str:
    """A markdown table with a row per epoch and a column per run; ``cells[j][i]``: run j after epoch i + 1."""
    lines = ["| epoch | " + " | ".join(RUNS[r.name][0] for r in runs) + " |", "|---:|" + "---:|" * len(runs)]
    for i in range(max(len(c) for c in cells)):
        lines.append("| " + " | ".join([str(i + 1)] + [c[i] if i < len(c) else "" for c in cells]) + " |")
    return "\n".join(lines)


def _cost(hours: float, minutes: bool) -> str:
    """``42 min`` (``minutes``) or ``1.2 h``."""
    return f"{60 * hours:.0f} min" if minutes else f"{hours:.1f} h"


def _curves(runs: list[Run], rates: dict[str, float] | None) -> tuple[dict[str, list], bool]:
    """:func:`_curve` of each run with a per-epoch history (``rates``: :func:`model_rates`, by default of
    ``runs``), and whether its times read in minutes (every run under two hours)."""
    runs = [r for r in runs if r.metrics.get("epochs")]
    rates = model_rates(runs) if rates is None else rates
    table = {r.name: _curve(r, rates[r.name]) for r in runs}
    return table, bool(table) and max(c[-1][2] for c in table.values()) < 2


def equal_time(runs: list[Run], rates: dict[str, float] | None = None) -> list[tuple[str, str, float, float, float]]:
    """OTSeq2Set (or, without its run, each set-model ablation) against each sequence model at equal
    training time: ``(a, b, best dev micro-F1 of a, of b, budget in hours)``, each run's best dev
    micro-F1 among the epochs it finished within the shorter of the two runs' training times
    (:func:`_curve`, at ``rates``: :func:`model_rates`, by default of ``runs``). ``runs``: one run per
    name (the lowest seed)."""
    runs = [r for r in runs if r.metrics.get("epochs")]
    table, _ = _curves(runs, rates)
    sequence = [r.name for r in runs if RUNS[r.name][1] != "otseq2set" and r.name != LINEAR]
    sets = [r.name for r in runs if r.name == "otseq2set"] or [r.name for r in runs if RUNS[r.name][1] == "otseq2set"]
    out = []
    for a in sets:
        for b in sequence:
            budget = min(table[a][-1][2], table[b][-1][2])
            best = [max((f for _, f, h in table[x] if h <= budget + 1e-9), default=None) for x in (a, b)]
            if None not in best:
                out.append((a, b, best[0], best[1], budget))
    return out


def curves(runs: list[Run], rates: dict[str, float] | None = None) -> str:
    """Equal-epoch and equal-time comparison: dev micro-F1 after every epoch, with its cost.

    Each cell is ``dev micro-F1 (time)``, the time (hours; minutes where every run
    took under two hours) being the training documents seen so far divided by
    the model's documents/s in its fastest epoch over all seeds (``rates``:
    :func:`model_rates`, by default of ``runs``), so a pause or a shared core
    does not count. Below the table, for OTSeq2Set (or, without its run, each
    set-model ablation) against each sequence model, the best dev micro-F1 each
    reached within the shorter of the two runs' training times (equal time).
    """
    runs = [r for r in runs if r.metrics.get("epochs")]
    if not runs:
        return ""
    table, minutes = _curves(runs, rates)

    cells = [[f"{100 * f:.2f} ({_cost(h, minutes)})" for _, f, h in c] for c in table.values()]
    out = [("Dev micro-F1 after each epoch (training time so far, at the documents/s of the model's fastest "
            "epoch over all its seeds):"), "", _per_epoch(runs, cells)]
    pairs = [f"{RUNS[a][0]} {100 * fa:.2f} vs {RUNS[b][0]} {100 * fb:.2f} within {_cost(budget, minutes)}"
             for a, b, fa, fb, budget in equal_time(runs, rates)]
    if pairs:
        out += ["", "Equal time, best dev micro-F1 within the shorter run's training time: " + "; ".join(pairs) + ". "
                "(Each run anneals its learning rate over its own epochs, so the longer run is compared "
                "mid-schedule, before its learning rate came down.)"]
    return "\n".join(out)


def counts(runs: list[Run]) -> str:
    """Labels predicted per dev document after every epoch, beside the gold mean.

    The count is where set and sequence decoders differ most (a set decoder
    decides it by emitting ∅, a sequence decoder by emitting EOS), so its
    trajectory is shown with the micro-F1 one. Runs whose records lack the
    count (``mean_predicted_labels``, written since the diagnostics existed) are left out.
    """
    runs = [r for r in runs if r.metrics.get("epochs")
            and all("mean_predicted_labels" in e["valid"] for e in r.metrics["epochs"])]
    if not runs:
        return ""
    gold = runs[0].metrics["epochs"][0]["valid"]["mean_gold_labels"]
    cells = [[f"{e['valid']['mean_predicted_labels']:.2f}" for e in r.metrics["epochs"]] for r in runs]
    return "\n".join([f"Labels predicted per dev document after each epoch (gold: {gold:.2f}):", "",
                      _per_epoch(runs, cells)])


def _mean_std(values: list[float], scale: float = 100.0, digits: int = 2) -> str:
    """``65.44 ± 0.31`` over seeds (``65.44`` for one seed)."""
    from evaluation.significance import seed_summary

    mean, std = seed_summary(values)
    return f"{scale * mean:.{digits}f}" if len(values) == 1 else f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def _calibrated(seeds: list[Run]) -> str:
    """Calibrated test micro-F1 over seeds with the dev-chosen ``τ`` (``—`` where a seed lacks it)."""
    cal = [r.metrics.get("calibrated") for r in seeds]
    if any(c is None for c in cal):
        return "—"
    taus = sorted({"kept" if c["tau"] is None else f"{c['tau']:g}" for c in cal})
    return f"{_mean_std([c['test']['micro_f1'] for c in cal])} (τ {', '.join(taus)})"


def summary_table(runs: list[Run], references: References = ()) -> str:
    """One row per model: mean ± std over its finished seeds of every headline metric; then ``references``
    in italics (absent columns "—")."""
    groups = {n: [r for r in rs if r.finished] for n, rs in by_run(runs).items()}
    groups = {n: rs for n, rs in groups.items() if rs and n not in STUDIES}
    head = ["model", "seeds", *[c[0] for c in COLUMNS], "micro-F1, calibrated (τ)", "training time"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, seeds in groups.items():
        cells = [RUNS[name][0], str(len(seeds))]
        for _, key, scale in COLUMNS:
            if key is None:
                t = [r.metrics["test"] for r in seeds]
                cells.append(f"{statistics.fmean(x['mean_predicted_labels'] for x in t):.2f} / "
                             f"{t[0]['mean_gold_labels']:.2f}")
            else:
                cells.append(_mean_std([r.metrics["test"][key] for r in seeds], scale))
        cells += [_calibrated(seeds), _duration(statistics.fmean(r.metrics["train_time_s"] for r in seeds))]
        lines.append("| " + " | ".join(cells) + " |")
    if not groups:
        lines.append("| *no finished run yet* |" + " |" * (len(head) - 1))
    for label, values in references:
        cells = [f"*{label}*", "—"] + [values.get(key, "—") for _, key, _ in COLUMNS] + ["—", "—"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: Significance level of the conclusion's verdicts.
ALPHA = 0.05


@dataclass
class PairTest:
    """One pair of :data:`PAIRS`: ``a`` and ``b`` run names, their numbers of seeds, the paired bootstrap over
    test documents and Welch's test over seeds (``None`` where a model has fewer than 2 seeds)."""

    a: str
    b: str
    n_a: int
    n_b: int
    documents: BootstrapResult
    seeds: SeedTestResult | None

    @property
    def verdict(self) -> str:
        """``ahead`` / ``behind`` (a against b) where both tests put p below :data:`ALPHA`; otherwise which
        test is missing or not below it."""
        if self.documents.p_value >= ALPHA:
            return "no difference shown"
        if self.seeds is None:
            return "test documents only (one seed)"
        if self.seeds.p_value >= ALPHA:
            return "not shown over seeds"
        return "ahead" if self.documents.delta > 0 else "behind"


def _seed_verdict(w: SeedTestResult) -> str:
    """The verdict of Welch's test over seeds alone (:attr:`PairTest.verdict` without the document test)."""
    if w.p_value >= ALPHA:
        return "not shown over seeds"
    return "ahead over seeds" if w.delta > 0 else "behind over seeds"


def pair_tests(runs: list[Run], *, n_resamples: int = 10_000, seed: int = 0) -> list[PairTest]:
    """Each pair of :data:`PAIRS` whose runs both have committed predictions: the paired bootstrap of test
    micro-F1 over test documents (every seed of both) and, with 2 or more seeds each, Welch's test over the
    seeds' test micro-F1."""
    import numpy as np

    from evaluation.significance import paired_bootstrap, welch_seeds

    groups = {n: [r for r in rs if r.finished and r.predictions] for n, rs in by_run(runs).items()}
    out = []
    for a, b in PAIRS:
        if not groups.get(a) or not groups.get(b):
            continue
        preds = {n: [rundir.read_predictions(r.predictions) for r in groups[n]] for n in (a, b)}
        ids = {tuple(d for d, _, _ in p) for n in (a, b) for p in preds[n]}
        if len(ids) != 1:
            raise ValueError(f"{a} vs {b}: the committed predictions list different test documents")
        counts = {n: np.stack([document_counts(p) for p in preds[n]]) for n in (a, b)}  # (S, D, 3)
        documents = paired_bootstrap(counts[a], counts[b], n_resamples=n_resamples, seed=seed)
        f1 = {n: [r.metrics["test"]["micro_f1"] for r in groups[n]] for n in (a, b)}
        seeds = welch_seeds(f1[a], f1[b]) if min(len(f1[a]), len(f1[b])) >= 2 else None
        out.append(PairTest(a, b, len(groups[a]), len(groups[b]), documents, seeds))
    return out


def paired_table(runs: list[Run], *, n_resamples: int = 10_000, seed: int = 0,
                 tests: list[PairTest] | None = None) -> str:
    """Each pair of :data:`PAIRS` with committed predictions for both: mean difference of test micro-F1
    over seeds, its 95% interval and the p-value of a paired bootstrap over test documents, the p-value of
    Welch's test over seeds, and the verdict (:attr:`PairTest.verdict`). ``tests``: :func:`pair_tests`' result,
    if already computed."""
    tests = pair_tests(runs, n_resamples=n_resamples, seed=seed) if tests is None else tests
    if not tests:
        return ""
    rows = []
    for t in tests:
        d = t.documents
        welch = "—" if t.seeds is None else _p(t.seeds.p_value).removeprefix("p = ").removeprefix("p ")
        rows.append(f"| {RUNS[t.a][0]} − {RUNS[t.b][0]} | {t.n_a} / {t.n_b} | {100 * d.delta:+.2f} | "
                    f"[{100 * d.ci_low:+.2f}, {100 * d.ci_high:+.2f}] | {d.p_value:.4f} | {welch} | {t.verdict} |")
    return "\n".join([
        (f"Paired differences of test micro-F1 (a − b, mean over each model's seeds). *p, test documents*: "
         f"two-sided paired bootstrap over the {d.n_documents:,} test documents ({d.n_resamples:,} resamples, "
         f"`evaluation.significance.paired_bootstrap`): would the difference hold on another test sample? "
         f"*p, seeds*: Welch's t-test over the seeds' test micro-F1 (`evaluation.significance.welch_seeds`): "
         f"would it hold after retraining? A difference counts as shown where both are below {ALPHA:g}."), "",
        "| a − b | seeds (a / b) | Δ micro-F1 | 95% interval | p, test documents | p, seeds | a against b |",
        "|---|---:|---:|---:|---:|---:|---|", *rows])


def _p(p: float, digits: int = 3) -> str:
    """``p = 0.012``; ``p < 0.001`` below what ``digits`` shows."""
    return f"p < {10 ** -digits:.{digits}f}" if p < 10 ** -digits else f"p = {p:.{digits}f}"


def conclusion(runs: list[Run], tests: list[PairTest], rates: dict[str, float] | None = None) -> str:
    """The answer to "does OTSeq2Set beat the sequence models at this preset?", generated from the records.

    One line per sequence model with a finished run: at equal epochs, the verdict of the pair OTSeq2Set −
    model (:func:`pair_tests`; "not tested" where a run lacks committed predictions); under the calibrated
    rule, Welch's test over the seeds' calibrated test micro-F1 (the records hold no calibrated sets to
    resample; "not tested" with fewer than 2 seeds or without the entry); at equal training time, the best
    dev micro-F1 of each within the shorter run's training time (:func:`equal_time` of the lowest seeds at
    ``rates``; no test). Empty without a finished OTSeq2Set run and a finished sequence model.
    """
    from evaluation.significance import welch_seeds

    groups = {n: [r for r in rs if r.finished] for n, rs in by_run(runs).items()}
    sequence = [n for n, (_, model) in RUNS.items() if model != "otseq2set" and n != LINEAR and groups.get(n)]
    if not groups.get("otseq2set") or not sequence:
        return ""
    ot = groups["otseq2set"]
    verdicts = {t.b: t for t in tests if t.a == "otseq2set" and t.b in sequence}
    lines = ["Does OTSeq2Set beat the sequence models at this preset?", ""]
    for b in sequence:
        if b in verdicts:
            t = verdicts[b]
            p_seeds = "" if t.seeds is None else f", {_p(t.seeds.p_value)} over seeds"
            lines.append(f"- Equal epochs, OTSeq2Set against {RUNS[b][0]}: {100 * t.documents.delta:+.2f} test "
                         f"micro-F1 (seeds {t.n_a} / {t.n_b}; {_p(t.documents.p_value, 4)} over test documents"
                         f"{p_seeds}): **{t.verdict}**.")
        else:
            f1 = {n: _mean_std([r.metrics["test"]["micro_f1"] for r in groups[n]]) for n in ("otseq2set", b)}
            missing = " and ".join(RUNS[n][0] for n in ("otseq2set", b) if not all(r.predictions for r in groups[n]))
            lines.append(f"- Equal epochs, OTSeq2Set against {RUNS[b][0]}: test micro-F1 {f1['otseq2set']} vs {f1[b]} "
                         f"(seeds {len(ot)} / {len(groups[b])}; no committed predictions of {missing}): "
                         f"**not tested**.")
    for b in sequence:  # the same question when every model's set size is decided by its dev-chosen τ
        cal = {n: [r.metrics["calibrated"]["test"]["micro_f1"] for r in groups[n] if r.metrics.get("calibrated")]
               for n in ("otseq2set", b)}
        head = f"- Calibrated rule (each model's τ chosen on dev), OTSeq2Set against {RUNS[b][0]}: "
        if all(len(cal[n]) == len(groups[n]) >= 2 for n in cal):
            w = welch_seeds(cal["otseq2set"], cal[b])
            lines.append(f"{head}{100 * w.delta:+.2f} test micro-F1 (seeds {w.n_a} / {w.n_b}; {_p(w.p_value)} over "
                         f"seeds; no test over documents, as the calibrated sets are not committed): "
                         f"**{_seed_verdict(w)}**.")
        else:
            lines.append(f"{head}**not tested** (seeds with the calibrated entry: {len(cal['otseq2set'])} / "
                         f"{len(cal[b])}; the test needs at least 2 each).")
    first = [rs[0] for n, rs in by_run(runs).items() if n not in STUDIES and n != LINEAR]
    _, minutes = _curves(first, rates)
    for a, b, fa, fb, budget in equal_time(first, rates):
        if a == "otseq2set":
            lines.append(f"- Equal training time, OTSeq2Set against {RUNS[b][0]}: best dev micro-F1 within "
                         f"{_cost(budget, minutes)} of training, {100 * fa:.2f} vs {100 * fb:.2f} "
                         f"({100 * (fa - fb):+.2f}; the lowest seed of each, no test).")
    return "\n".join(lines)


#: (header, metrics.json test key) of the diagnostics table: the paper's other set metrics, F1 by label
#: frequency and how often the set size is wrong (``evaluation/diagnostics.py``).
DIAGNOSTICS = (("weighted-F1", "weighted_f1"), ("example-F1", "example_f1"), ("head F1", "f1_head"),
               ("torso F1", "f1_torso"), ("tail F1", "f1_tail"), ("docs over-predicted", "count_over_rate"),
               ("docs under-predicted", "count_under_rate"))


def diagnostics_table(runs: list[Run]) -> str:
    """Every finished run (studies included): mean ± std over seeds of :data:`DIAGNOSTICS` on the test split,
    in %; "—" where a seed's record lacks the key (written before the diagnostic existed)."""
    groups = {n: [r for r in rs if r.finished] for n, rs in by_run(runs).items()}
    groups = {n: rs for n, rs in groups.items() if rs}
    if not groups:
        return ""
    head = ["model", "seeds", *[h for h, _ in DIAGNOSTICS]]
    lines = [("Test split, the paper's other set metrics, F1 by label frequency (head: the most frequent labels, "
              "making up the first third of training label occurrences; tail: the last third) and the share of "
              "documents given too many / too few labels:"), "",
             "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, seeds in groups.items():
        cells = [RUNS[name][0], str(len(seeds))]
        for _, key in DIAGNOSTICS:
            values = [r.metrics["test"].get(key) for r in seeds]
            cells.append("—" if None in values else _mean_std(values))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def calibration_table(runs: list[Run]) -> str:
    """Decoded sets against the calibrated rule (``metrics.json`` ``calibrated``: every label whose score
    reaches a dev-chosen τ) for every run whose finished seeds all store it: dev micro-F1, test micro-P /
    micro-R / micro-F1 and labels per test document, ``decoded → calibrated``, means over seeds ("—" where a
    record lacks the figure)."""
    groups = {n: [r for r in rs if r.finished] for n, rs in by_run(runs).items()}
    groups = {n: rs for n, rs in groups.items() if rs and all(r.metrics.get("calibrated") for r in rs)}
    if not groups:
        return ""

    def mean(seeds: list[Run], split: str, key: str, calibrated: bool) -> float | None:
        """The mean over seeds, ``None`` where a record lacks the key."""
        values = [(r.metrics["calibrated"] if calibrated else r.metrics)[split].get(key) for r in seeds]
        return None if None in values else statistics.fmean(values)

    def dev(r: Run, calibrated: bool) -> float:
        """Dev micro-F1: the calibrated entry's, else the best epoch's (the linear model: its ``valid``)."""
        if calibrated:
            return r.metrics["calibrated"]["valid"]["micro_f1"]
        return r.metrics["best"]["micro_f1"] if "best" in r.metrics else r.metrics["valid"]["micro_f1"]

    lines = ["Decoded sets → calibrated rule (score ≥ τ, τ chosen on dev), means over seeds:", "",
             "| model | seeds | τ | dev micro-F1 | test micro-P | test micro-R | test micro-F1 | labels / test doc |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, seeds in groups.items():
        taus = sorted({"kept" if r.metrics["calibrated"]["tau"] is None else f"{r.metrics['calibrated']['tau']:g}"
                       for r in seeds})
        cells = [RUNS[name][0], str(len(seeds)), ", ".join(taus),
                 " → ".join(f"{100 * statistics.fmean(dev(r, c) for r in seeds):.2f}" for c in (False, True))]
        for key, scale in (("micro_precision", 100), ("micro_recall", 100), ("micro_f1", 100),
                           ("mean_predicted_labels", 1)):
            pair = [mean(seeds, "test", key, c) for c in (False, True)]
            cells.append("—" if None in pair else " → ".join(f"{scale * v:.2f}" for v in pair))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def study_table(runs: list[Run]) -> str:
    """The studies of :data:`STUDIES` beside the run they change: per epoch, dev labels per document,
    micro-P / R / F1 and P@1 (the lowest seed of each), then the test rows (mean ± std over seeds)."""
    groups = by_run(runs)
    names = [n for n in STUDIES if n in groups]
    if not names:
        return ""
    out = []
    for base in dict.fromkeys(STUDIES[n][1] for n in names):
        cols = [base] + [n for n in names if STUDIES[n][1] == base]
        cols = [n for n in cols if n in groups]
        first = {n: groups[n][0] for n in cols}
        head = "| epoch | " + " | ".join(f"{RUNS[n][0]}" for n in cols) + " |"
        lines = [f"Dev split after each epoch, labels per document / micro-P / micro-R / micro-F1 / P@1 "
                 f"(seed {', '.join(str(first[n].seed) for n in cols)}):", "", head, "|---:|" + "---|" * len(cols)]
        n_epochs = max(len(first[n].metrics.get("epochs", [])) for n in cols)
        for i in range(n_epochs):
            cells = []
            for n in cols:
                ep = first[n].metrics.get("epochs", [])
                v = ep[i]["valid"] if i < len(ep) else None
                cells.append("" if v is None else
                             f"{v['mean_predicted_labels']:.2f} / {100 * v['micro_precision']:.1f} / "
                             f"{100 * v['micro_recall']:.1f} / {100 * v['micro_f1']:.2f} / {100 * v['p@1']:.1f}")
            lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
        out.append("\n".join(lines))
        test = ["| run | seeds | labels predicted / gold | micro-P | micro-R | micro-F1 | P@1 |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for n in cols:
            seeds = [r for r in groups[n] if r.finished]
            if not seeds:
                test.append(f"| {RUNS[n][0]} | 0 | *in progress: {_progress(groups[n][0])}* | | | | |")
                continue
            t = [r.metrics["test"] for r in seeds]
            test.append(f"| {RUNS[n][0]} | {len(seeds)} | "
                        f"{statistics.fmean(x['mean_predicted_labels'] for x in t):.2f} / {t[0]['mean_gold_labels']:.2f}"
                        f" | {_mean_std([x['micro_precision'] for x in t])} | {_mean_std([x['micro_recall'] for x in t])}"
                        f" | {_mean_std([x['micro_f1'] for x in t])} | {_mean_std([x['p@1'] for x in t])} |")
        out.append("Test split:\n\n" + "\n".join(test))
    return "\n\n".join(out)


def markdown(runs: list[Run], dataset: str, references: References = ()) -> str:
    """The docs' block of a dataset: the seed table (``references`` under it), the diagnostics table, the
    paired tests and the generated conclusion, the commands, runs in progress, per-epoch curves and label
    counts (lowest seed of each run), decoded against calibrated sets, and the studies."""
    groups = by_run(runs)
    out = [summary_table(runs, references)]
    if references:
        out += ["", "Rows in *italics* are references, not runs of this toolkit (measured with other tools on the "
                "same split, or published)."]
    diagnostics = diagnostics_table(runs)
    if diagnostics:
        out += ["", diagnostics]
    tests = pair_tests(runs)
    if tests:
        out += ["", paired_table(runs, tests=tests)]
    rates = model_rates(runs)
    verdicts = conclusion(runs, tests, rates)
    if verdicts:
        out += ["", verdicts]
    if runs:
        seeds = sorted({r.seed for r in runs})
        out += ["", "Commands (one torch thread each; training time counts the training passes, not evaluation; "
                f"seeds {', '.join(map(str, seeds))}: the same command with `--seed K`, into `.../seedK`):", "",
                "```bash", *[command(dataset, rs[0].config.get("variant"), n) for n, rs in groups.items()], "```"]
    pending = [r for r in runs if not r.finished]
    if pending:
        out += ["", "In progress (continued with `--resume`): " + "; ".join(
            f"{_progress(r)} (seed {r.seed})" for r in pending) + "."]
    first = [rs[0] for n, rs in groups.items() if n not in STUDIES and n != LINEAR]
    for table in (curves(first, rates), counts(first)) if len(first) > 1 else ():
        if table:
            out += ["", table]
    calibration = calibration_table(runs)
    if calibration:
        out += ["", calibration]
    studies = study_table(runs)
    if studies:
        out += ["", studies]
    return "\n".join(out)


def markers(dataset: str) -> tuple[str, str]:
    return (f"<!-- results:{dataset} (python examples/results_table.py {dataset} --write docs/results.md) -->",
            f"<!-- /results:{dataset} -->")


def replace_block(text: str, dataset: str, table: str) -> str:
    """``text`` with the block between the dataset's markers replaced by ``table``."""
    begin, end = markers(dataset)
    if begin not in text or end not in text:
        raise ValueError(f"no {begin} ... {end} block")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{table}\n{end}{tail}"
