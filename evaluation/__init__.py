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
:mod:`evaluation.report` (rich table, JSON), :mod:`evaluation._sparse` (input
conversion).
"""

from .core import SET_KEYS, evaluate
from .diagnostics import frequency_buckets
from .ranking import inverse_propensity
from .report import render_table, write_json

__all__ = ["evaluate", "SET_KEYS", "render_table", "write_json", "frequency_buckets", "inverse_propensity"]
