"""Set metrics of ``evaluation``: hand-computed cases, scikit-learn agreement, invariances."""

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluation import SET_KEYS, evaluate

# The hand fixture: L = 6 labels, D = 5 documents.
#   doc0  G={0,1}  P={0,2}   one hit, one miss, one false positive
#   doc1  G={1,4}  P={}      empty prediction
#   doc2  G={}     P={3}     empty gold
#   doc3  G={0,1}  P={1,0}   exact (order inside the set is irrelevant)
#   doc4  G={}     P={}      both empty
# label 4 is in gold but never predicted, labels 2 and 3 are predicted but
# never in gold, label 5 is neither.
GOLD = [{0, 1}, {1, 4}, set(), {0, 1}, set()]
PRED = [{0, 2}, set(), {3}, [1, 0], ()]
L = 6


def test_hand_computed_set_metrics():
    m = evaluate(PRED, GOLD, L)
    # per label (tp, predicted, gold):
    #   0: (2, 2, 2) -> P=1, R=1,   F=2*2/(2+2)=1
    #   1: (1, 1, 3) -> P=1, R=1/3, F=2*1/(1+3)=0.5
    #   2: (0, 1, 0) -> 0, 0, 0     3: (0, 1, 0) -> 0, 0, 0
    #   4: (0, 0, 1) -> 0, 0, 0     5: (0, 0, 0) -> 0, 0, 0
    # totals: tp=3, predicted=5, gold=6
    expected = {
        "micro_precision": 3 / 5,
        "micro_recall": 3 / 6,
        "micro_f1": 2 * 3 / (5 + 6),  # 6/11
        "macro_precision": (1 + 1) / 6,
        "macro_recall": (1 + 1 / 3) / 6,  # 2/9
        "macro_f1": (1 + 0.5) / 6,  # 0.25
        # supports 2, 3, 0, 0, 1, 0 (sum 6)
        "weighted_precision": (2 * 1 + 3 * 1) / 6,
        "weighted_recall": (2 * 1 + 3 * (1 / 3)) / 6,
        "weighted_f1": (2 * 1 + 3 * 0.5) / 6,  # 7/12
        # per doc (P, R, F): doc0 (1/2, 1/2, 2*1/(2+2)), doc1 (0, 0, 0) empty prediction,
        # doc2 (0, 0, 0) empty gold, doc3 (1, 1, 1), doc4 (0, 0, 0) both empty
        "example_precision": (0.5 + 1) / 5,
        "example_recall": (0.5 + 1) / 5,
        "example_f1": (0.5 + 1) / 5,
        "subset_accuracy": 2 / 5,  # doc3 and doc4 (two empty sets are equal)
        # |P Δ G| per doc: 2, 2, 1, 0, 0 over D*L = 30 cells
        "hamming_loss": 5 / 30,
        "mean_predicted_labels": (2 + 0 + 1 + 2 + 0) / 5,
        "mean_gold_labels": (2 + 2 + 0 + 2 + 0) / 5,
        "count_match_rate": 3 / 5,  # doc0, doc3, doc4
        "count_under_rate": 1 / 5,  # doc1
        "count_over_rate": 1 / 5,  # doc2
    }
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, abs=1e-12), key
    assert set(SET_KEYS) <= set(m)
    assert all(isinstance(v, float) for v in m.values())
    assert not any(k.startswith(("p@", "ndcg@", "psp@", "f1_", "duplicate")) for k in m)


def test_single_document_edge_cases():
    # empty gold and empty prediction: example P=R=F=0, subset accuracy 1, Hamming 0
    m = evaluate([set()], [set()], 3)
    assert (m["example_precision"], m["example_recall"], m["example_f1"]) == (0.0, 0.0, 0.0)
    assert (m["micro_precision"], m["micro_f1"], m["macro_f1"]) == (0.0, 0.0, 0.0)
    assert m["subset_accuracy"] == 1.0 and m["hamming_loss"] == 0.0
    # a document with all N labels right
    m = evaluate([{0, 1, 2}], [{2, 1, 0}], 3)
    assert m["micro_f1"] == m["macro_f1"] == m["example_f1"] == m["subset_accuracy"] == 1.0
    # one label: predicted nothing -> recall 0, precision 0 (zero division), Hamming 1/3
    m = evaluate([set()], [{1}], 3)
    assert m["micro_recall"] == 0.0 and m["micro_precision"] == 0.0
    assert m["hamming_loss"] == pytest.approx(1 / 3)


def test_order_and_duplicates_inside_a_set_do_not_matter():
    base = evaluate(PRED, GOLD, L)
    shuffled = evaluate([list(reversed(sorted(p))) for p in PRED], [sorted(g, reverse=True) for g in GOLD], L)
    repeated = evaluate([list(p) * 3 for p in PRED], [list(g) + list(g) for g in GOLD], L)
    arrays = evaluate([np.array(sorted(p), dtype=np.int32) for p in PRED], [iter(g) for g in GOLD], L)
    generated = evaluate((p for p in PRED), (g for g in GOLD), L)  # trailing empty docs kept
    assert shuffled == base and repeated == base and arrays == base and generated == base


def test_batch_of_copies_equals_batch_of_one():
    one = evaluate([PRED[0]], [GOLD[0]], L)
    copies = evaluate([PRED[0]] * 4, [GOLD[0]] * 4, L)
    assert copies == pytest.approx(one)


def test_document_order_does_not_matter():
    perm = [3, 0, 4, 2, 1]
    assert evaluate([PRED[i] for i in perm], [GOLD[i] for i in perm], L) == pytest.approx(evaluate(PRED, GOLD, L))


def test_extra_unused_labels_only_dilute_macro_and_hamming():
    small, big = evaluate(PRED, GOLD, L), evaluate(PRED, GOLD, 2 * L)
    for k in ("micro_f1", "example_f1", "weighted_f1", "subset_accuracy"):
        assert big[k] == small[k]
    assert big["macro_f1"] == pytest.approx(small["macro_f1"] / 2)
    assert big["hamming_loss"] == pytest.approx(small["hamming_loss"] / 2)


def _csr(sets, n_cols, dtype=np.float32):
    rows = [i for i, s in enumerate(sets) for _ in set(s)]
    cols = [j for s in sets for j in set(s)]
    return sp.csr_matrix((np.ones(len(cols), dtype), (rows, cols)), shape=(len(sets), n_cols))


def test_csr_input_equals_list_input():
    base = evaluate(PRED, GOLD, L)
    assert evaluate(_csr(PRED, L), _csr(GOLD, L), L) == base
    # mixed forms, a narrower matrix (padded to L), and an explicit stored zero (= absent)
    narrow = _csr(PRED, 4)
    assert evaluate(narrow, GOLD, L) == base
    g = _csr(GOLD, L).tolil()
    g[4, 5] = 0.0
    assert evaluate(PRED, g.tocsr(), L) == base


@pytest.mark.parametrize(
    "pred, gold, match",
    [
        ([{0}, {1}, {2}], [{0}, {1}, {7}], r"gold: document 2 has label id 7"),
        ([{0}, {-1}, {2}], [{0}, {1}, {2}], r"predicted: document 1 has label id -1"),
        ([{0}, {1.5}], [{0}, {1}], r"predicted: document 1 has a non-integer label id 1.5"),
        ([{0}, {1}], [{0}], r"predicted has 2 documents, gold has 1"),
        ([], [], r"no documents"),
    ],
)
def test_invalid_input_is_rejected_with_a_precise_message(pred, gold, match):
    with pytest.raises(ValueError, match=match):
        evaluate(pred, gold, 5)


def test_csr_with_a_label_beyond_the_universe_is_rejected():
    wide = sp.csr_matrix(([1.0], ([1], [6])), shape=(2, 8))
    with pytest.raises(ValueError, match=r"gold: document 1 has label id 6"):
        evaluate([{0}, {1}], wide, 5)


def test_package_is_a_leaf_without_torch():
    code = (
        "import sys, evaluation; "
        "bad = [m for m in ('torch', 'xmtc', 'models', 'losses', 'baselines', 'sklearn') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- agreement with scikit-learn (the reference definitions) ---------------------------

label_sets = st.integers(2, 7).flatmap(
    lambda n_labels: st.integers(1, 8).flatmap(
        lambda n_docs: st.tuples(
            st.just(n_labels),
            st.lists(st.sets(st.integers(0, n_labels - 1)), min_size=n_docs, max_size=n_docs),
            st.lists(st.sets(st.integers(0, n_labels - 1)), min_size=n_docs, max_size=n_docs),
        )
    )
)


def _binarise(sets, n_labels):
    y = np.zeros((len(sets), n_labels), dtype=int)  # tiny: test-only dense reference
    for i, s in enumerate(sets):
        y[i, list(s)] = 1
    return y


@settings(max_examples=50, deadline=None)
@given(label_sets)
def test_agrees_with_sklearn(case):
    skm = pytest.importorskip("sklearn.metrics")
    n_labels, pred, gold = case
    y_pred, y_true = _binarise(pred, n_labels), _binarise(gold, n_labels)
    m = evaluate(pred, gold, n_labels)
    labels = list(range(n_labels))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for avg, prefix in (("micro", "micro"), ("macro", "macro"), ("weighted", "weighted"), ("samples", "example")):
            p, r, f, _ = skm.precision_recall_fscore_support(
                y_true, y_pred, average=avg, labels=labels, zero_division=0
            )
            assert m[f"{prefix}_precision"] == pytest.approx(p, abs=1e-12), avg
            assert m[f"{prefix}_recall"] == pytest.approx(r, abs=1e-12), avg
            assert m[f"{prefix}_f1"] == pytest.approx(f, abs=1e-12), avg
            assert m[f"{prefix}_f1"] == pytest.approx(
                skm.f1_score(y_true, y_pred, average=avg, labels=labels, zero_division=0), abs=1e-12
            )
        assert m["subset_accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
        assert m["hamming_loss"] == pytest.approx(skm.hamming_loss(y_true, y_pred))
    # the CSR path gives the very same numbers
    assert evaluate(_csr(pred, n_labels), _csr(gold, n_labels), n_labels) == m
    assert all(math.isfinite(v) for v in m.values())
