"""Diagnostics and reporting of ``evaluation``: counts, duplicates, frequency buckets, table, JSON."""

import json

import numpy as np
import pytest
from rich.console import Console
from rich.table import Table

from evaluation import evaluate, frequency_buckets, render_table, write_json

GOLD = [{0, 1}, {1, 4}, set(), {0, 1}, set()]
PRED = [{0, 2}, set(), {3}, {0, 1}, set()]
L = 6


def test_duplicate_rate_hand_computed():
    raw = [[1, 1, 2], [3], [], [0, 0, 0], []]
    m = evaluate(PRED, GOLD, L, raw_predictions=raw)
    # emitted 3 + 1 + 0 + 3 + 0 = 7, distinct 2 + 1 + 0 + 1 + 0 = 4 -> 3 wasted of 7
    assert m["duplicate_rate"] == pytest.approx(3 / 7)
    assert m["duplicate_doc_rate"] == pytest.approx(2 / 5)  # doc0 and doc3
    # raw outputs never change the set metrics
    assert {k: v for k, v in m.items() if not k.startswith("duplicate")} == evaluate(PRED, GOLD, L)
    m = evaluate(PRED, GOLD, L, raw_predictions=[[], [], [], [], []])
    assert m["duplicate_rate"] == 0.0 and m["duplicate_doc_rate"] == 0.0
    with pytest.raises(ValueError, match="raw_predictions has 1 documents"):
        evaluate(PRED, GOLD, L, raw_predictions=[[1]])


def test_frequency_buckets_by_label_mass_thirds():
    # total mass 12; mass strictly above: label0 0 -> head, label1 6/12 -> torso,
    # label2 9/12 -> tail, label3 11/12 -> tail, labels 4, 5 (count 0) -> tail
    assert frequency_buckets([6, 3, 2, 1, 0, 0], 6).tolist() == [0, 1, 2, 2, 2, 2]
    # ties share a bucket: labels 1 and 2 both have 5/12 above -> torso
    assert frequency_buckets([5, 3, 3, 1], 4).tolist() == [0, 1, 1, 2]
    assert frequency_buckets([4, 4, 4], 3).tolist() == [0, 0, 0]
    # shorter count vectors: the remaining (test-only) labels count 0 -> tail
    assert frequency_buckets([1], 3).tolist() == [0, 2, 2]
    assert frequency_buckets([0, 0], 2).tolist() == [2, 2]
    with pytest.raises(ValueError):
        frequency_buckets([1, 2, 3], 2)


def test_bucket_f1_hand_computed():
    m = evaluate(PRED, GOLD, L, train_label_counts=[6, 3, 2, 1, 0, 0])
    # head {0}: tp 2, predicted 2, gold 2 -> 2*2/(2+2) = 1
    # torso {1}: tp 1, predicted 1, gold 3 -> 2*1/(1+3) = 0.5
    # tail {2,3,4,5}: tp 0 -> 0
    assert (m["f1_head"], m["f1_torso"], m["f1_tail"]) == pytest.approx((1.0, 0.5, 0.0))
    assert (m["macro_f1_head"], m["macro_f1_torso"], m["macro_f1_tail"]) == pytest.approx((1.0, 0.5, 0.0))
    assert (m["n_labels_head"], m["n_labels_torso"], m["n_labels_tail"]) == (1.0, 1.0, 4.0)


def test_render_table_and_write_json(tmp_path):
    m = evaluate(PRED, GOLD, L, scores=np.random.default_rng(0).random((5, L)), train_label_counts=[6, 3, 2, 1], n_train_docs=20)
    table = render_table(m, title="test")
    assert isinstance(table, Table) and table.row_count == len(m) and table.title == "test"
    console = Console(record=True, width=120)
    console.print(table)
    text = console.export_text()
    assert "micro_f1" in text and "ndcg@5" in text and "psp@5" in text and "f1_tail" in text
    path = write_json({"test": m, "step": np.int64(3)}, tmp_path / "run" / "metrics.json")
    loaded = json.loads(path.read_text())
    assert loaded["test"] == pytest.approx(m) and loaded["step"] == 3
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temp file left
    write_json(m, path)  # overwrite in place
    assert json.loads(path.read_text()) == pytest.approx(m)
