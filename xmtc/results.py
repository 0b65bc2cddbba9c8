"""Results tables for the README, generated from committed run records.

A benchmark's runs are committed as two small files each,
``results/<dataset>/<run>/config.json`` and ``metrics.json`` (what the training
scripts write; never checkpoints or data). :data:`RUNS` names each run
directory's row and model, and :func:`command` gives the command that trains it
(the paper's variant, :mod:`xmtc.ablation`), so the table shows, beside every
number, the exact command; the tests check that the committed
``config.json`` is what that command resolves to, and that the README's table is
this module's output (``examples/results_table.py`` prints or writes it)::

    python examples/results_table.py eurlex57k                    # print the markdown table
    python examples/results_table.py eurlex57k --write README.md  # replace the table between its markers
"""

from __future__ import annotations

import json
import shlex
import statistics
from dataclasses import dataclass
from pathlib import Path

from .ablation import BY_RUN, VARIANTS
from .config import preset

#: run directory -> (row label, training script's model), in the order of the paper's variants
#: (:data:`xmtc.ablation.VARIANTS`, which also gives each run's flags).
RUNS: dict[str, tuple[str, str]] = {
    v.run: ("OTSeq2Set (BM+OT+LC)" if v.run == "otseq2set" else v.name, v.model) for v in VARIANTS}

#: (header, metrics.json test key, scale); percentages as in the paper.
COLUMNS = (("micro-P", "micro_precision", 100), ("micro-R", "micro_recall", 100), ("micro-F1", "micro_f1", 100),
           ("macro-F1", "macro_f1", 100), ("P@1", "p@1", 100), ("P@5", "p@5", 100), ("nDCG@5", "ndcg@5", 100),
           ("labels predicted / gold", None, 1))


#: Reference rows shown under a dataset's table, measured with other tools or published, never by
#: this toolkit (DESIGN.md §6): (row label, {metrics.json test key: percentage as published, its digits
#: kept}); absent columns show "—".
REFERENCES: dict[str, tuple[tuple[str, dict[str, str]], ...]] = {
    "eurlex57k": (
        ("linear one-vs-rest, TF-IDF (LibMultiLabel 0.10, same split, CPU)",
         {"micro_f1": "71.4", "macro_f1": "21.2", "p@1": "92.8", "p@5": "69.4", "ndcg@5": "83.0"}),
        ("BiGRU-LWAN, GloVe 200-d (LibMultiLabel's published reproduction, GPU)",
         {"micro_f1": "71.32", "macro_f1": "25.43", "p@1": "90.73", "p@5": "67.08", "ndcg@5": "80.60"}),
        ("BERT-base, fine-tuned (Chalkidis et al. 2019, published)", {"micro_f1": "73.2"}),
    ),
    "reuters": (
        ("linear, per-label thresholds (LibMultiLabel, same split, CPU)",
         {"micro_f1": "87.6", "macro_f1": "60.9", "p@1": "93.6", "p@5": "22.4"}),
        ("one-vs-rest LinearSVC, TF-IDF (scikit-learn, same split, CPU)",
         {"micro_f1": "85.8", "macro_f1": "39.6", "p@1": "94.2", "p@5": "23.7"}),
    ),
}


@dataclass
class Run:
    """One committed run: its directory name, config and metrics."""

    name: str
    config: dict
    metrics: dict

    @property
    def finished(self) -> bool:
        return "test" in self.metrics


def command(dataset: str, variant: str | None, name: str, data_dir: str = "../shared/data") -> str:
    """The command that trains run ``name`` on a dataset's preset (``variant``: ``None``, ``"fast"``, ``"cpu"``)."""
    spec = BY_RUN[name]
    flags = spec.flags(preset(dataset, model=spec.model, variant=variant).net)
    choice = {None: [], "fast": ["--fast"]}.get(variant, ["--preset", str(variant)])
    args = ["python", f"examples/train_{spec.model}.py", "--data", dataset, *choice, "--data-dir", data_dir, *flags,
            "--out", f"runs/{dataset}/{name}"]
    return shlex.join(args)


def collect(results_dir: str | Path, dataset: str) -> list[Run]:
    """The runs committed under ``results_dir/dataset``, in :data:`RUNS` order."""
    root = Path(results_dir) / dataset
    unknown = sorted(p.name for p in root.glob("*") if p.is_dir() and p.name not in RUNS) if root.is_dir() else []
    if unknown:
        raise ValueError(f"{root}: unknown run directories {', '.join(unknown)}; known: {', '.join(RUNS)}")
    runs = []
    for name in RUNS:
        d = root / name
        if (d / "metrics.json").is_file():
            runs.append(Run(name, json.loads((d / "config.json").read_text()),
                            json.loads((d / "metrics.json").read_text())))
    return runs


def _hours(seconds: float) -> str:
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


def _rate(r: Run) -> float:
    """A run's training documents/s in its fastest epoch: other jobs and pauses only ever slow an epoch down."""
    return max(e["train"]["docs_per_s"] for e in r.metrics["epochs"])


def _curve(r: Run) -> list[tuple[int, float, float]]:
    """``(epoch, dev micro-F1, cumulative training hours at the fastest epoch's rate)`` per epoch run."""
    rate, docs, out = _rate(r), 0, []
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


def curves(runs: list[Run]) -> str:
    """Equal-epoch and equal-time comparison: dev micro-F1 after every epoch, with its cost.

    Each cell is ``dev micro-F1 (time)``, the time (hours; minutes where every run
    took under two hours) being the training documents
    seen so far divided by the documents/s of the run's fastest epoch, so a pause
    or a shared core in some epochs does not count. Below the table, for OTSeq2Set (or, without
    its run, each set-model ablation) against each sequence model, the best dev micro-F1 each
    reached within the shorter of the two runs' training times (equal time).
    """
    runs = [r for r in runs if r.metrics.get("epochs")]
    if not runs:
        return ""
    table = {r.name: _curve(r) for r in runs}
    minutes = max(c[-1][2] for c in table.values()) < 2  # short runs: minutes, not tenths of hours

    def cost(hours: float) -> str:
        return f"{60 * hours:.0f} min" if minutes else f"{hours:.1f} h"

    cells = [[f"{100 * f:.2f} ({cost(h)})" for _, f, h in c] for c in table.values()]
    out = ["Dev micro-F1 after each epoch (training time so far, at the documents/s of the run's fastest epoch):", "",
           _per_epoch(runs, cells)]
    sequence = [r for r in runs if RUNS[r.name][1] != "otseq2set"]
    # the full model against each sequence model (its ablations only where it has no run)
    sets = [r for r in runs if r.name == "otseq2set"] or [r for r in runs if RUNS[r.name][1] == "otseq2set"]
    pairs = []
    for a in sets:
        for b in sequence:
            budget = min(table[a.name][-1][2], table[b.name][-1][2])
            best = [max((f for _, f, h in table[x.name] if h <= budget + 1e-9), default=None) for x in (a, b)]
            if None not in best:
                pairs.append(f"{RUNS[a.name][0]} {100 * best[0]:.2f} vs {RUNS[b.name][0]} {100 * best[1]:.2f} "
                             f"within {cost(budget)}")
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


def markdown(runs: list[Run], dataset: str) -> str:
    """The README table: one row per finished run, commands below it, unfinished runs listed."""
    done = [r for r in runs if r.finished]
    head = ["model", *[c[0] for c in COLUMNS], "best epoch", "epochs", "training time", "docs/s"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in done:
        t, m = r.metrics["test"], r.metrics
        cells = [RUNS[r.name][0]]
        for _, key, scale in COLUMNS:
            cells.append(f"{t['mean_predicted_labels']:.2f} / {t['mean_gold_labels']:.2f}" if key is None
                         else f"{scale * t[key]:.2f}")
        rate = statistics.median(e["train"]["docs_per_s"] for e in m["epochs"])  # what the epochs ran at
        cells += [str(m["best"]["epoch"]), str(m["epochs_run"]), _hours(m["train_time_s"]), f"{rate:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if not done:
        lines.append("| *no finished run yet* |" + " |" * (len(head) - 1))
    for label, values in REFERENCES.get(dataset, ()):
        cells = [f"*{label}*"] + [values.get(key, "—") for _, key, _ in COLUMNS]
        lines.append("| " + " | ".join(cells + ["—"] * 4) + " |")
    out = ["\n".join(lines)]
    if REFERENCES.get(dataset):
        out += ["", "Rows in *italics* are references, not runs of this toolkit (DESIGN.md §6)."]
    if runs:
        out += ["", "Commands (one torch thread each; training time counts the training passes, not evaluation; "
                "docs/s is the median over epochs):", "", "```bash",
                *[command(dataset, r.config.get("variant"), r.name) for r in runs], "```"]
    pending = [r for r in runs if not r.finished]
    if pending:
        out += ["", "In progress (continued with `--resume`): " + "; ".join(_progress(r) for r in pending) + "."]
    for table in (curves(runs), counts(runs)) if len(runs) > 1 else ():
        if table:
            out += ["", table]
    return "\n".join(out)


def markers(dataset: str) -> tuple[str, str]:
    return (f"<!-- results:{dataset} (python examples/results_table.py {dataset} --write README.md) -->",
            f"<!-- /results:{dataset} -->")


def replace_block(text: str, dataset: str, table: str) -> str:
    """``text`` with the block between the dataset's markers replaced by ``table``."""
    begin, end = markers(dataset)
    if begin not in text or end not in text:
        raise ValueError(f"no {begin} ... {end} block")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{table}\n{end}{tail}"
