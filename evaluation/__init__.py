"""Evaluation for extreme multi-label classification: set, ranking and diagnostic metrics.

A leaf package (numpy + scipy + rich; torch optional, duck-typed). The entry
point is :func:`evaluate`, returning a flat ``dict[str, float]``::

    from evaluation import evaluate, render_table, write_json
    metrics = evaluate(pred_sets, gold_sets, n_labels, scores=(top_ids, top_scores))
    Console().print(render_table(metrics, title="test"))
    write_json({"test": metrics}, run_dir / "metrics.json")

Modules: :mod:`evaluation.sets` (micro/macro/weighted/example P/R/F1, subset
accuracy, Hamming loss), :mod:`evaluation.ranking` (P@k, nDCG@k, PSP@k),
:mod:`evaluation.diagnostics` (label counts, duplicates, frequency buckets),
:mod:`evaluation.report` (rich table, JSON), :mod:`evaluation.significance`
(paired bootstrap over test documents, mean ± std over seeds),
:mod:`evaluation.calibration` (a set size re-decided by one dev-chosen score threshold),
:mod:`evaluation._sparse` (input conversion).
"""

from .calibration import Threshold, apply_threshold, choose_threshold
from .core import SET_KEYS, evaluate
from .diagnostics import frequency_buckets
from .ranking import inverse_propensity
from .report import atomic_write, render_table, write_json
from .significance import BootstrapResult, document_counts, micro_f1_from_counts, paired_bootstrap, seed_summary
from .significance import SeedTestResult, welch_seeds

__all__ = ["evaluate", "SET_KEYS", "atomic_write", "render_table", "write_json", "frequency_buckets", "inverse_propensity",
           "document_counts", "micro_f1_from_counts", "paired_bootstrap", "BootstrapResult", "seed_summary",
           "welch_seeds", "SeedTestResult",
           "choose_threshold", "apply_threshold", "Threshold"]
