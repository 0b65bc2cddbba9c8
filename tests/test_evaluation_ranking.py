"""Ranking metrics of ``evaluation``: hand-computed cases, scikit-learn, a loop reference, score formats."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from evaluation import evaluate, inverse_propensity
from evaluation._sparse import ranked_labels, to_csr
from evaluation.ranking import best_ranking, psp_at_k, rank_hits

# L = 5, D = 3
#   doc0 G={1,3}  scores .1 .9 .3 .8 .2  -> ranking 1, 3, 2, 4, 0 ; hits 1 1 0 0 0
#   doc1 G={0}    scores .5 .5 .7 .1 .0  -> ranking 2, 0, 1, 3, 4 (tie .5: lower id first); hits 0 1 0 0 0
#   doc2 G={}     scores anything        -> no hits, scores 0
GOLD = [{1, 3}, {0}, set()]
SCORES = np.array(
    [
        [0.1, 0.9, 0.3, 0.8, 0.2],
        [0.5, 0.5, 0.7, 0.1, 0.0],
        [0.3, 0.2, 0.1, 0.4, 0.5],
    ]
)
L = 5
LOG3 = math.log2(3)


def test_hand_computed_ranking_metrics():
    m = evaluate([set(), set(), set()], GOLD, L, scores=SCORES)
    expected = {
        "p@1": (1 + 0 + 0) / 3,
        "p@3": (2 / 3 + 1 / 3 + 0) / 3,
        "p@5": (2 / 5 + 1 / 5 + 0) / 3,
        # doc0: DCG@1 = 1 = IDCG@1; DCG@3 = 1 + 1/log2(3) = IDCG@3 (|G| = 2) -> 1
        # doc1: DCG@1 = 0; DCG@3 = DCG@5 = 1/log2(3), IDCG = 1 -> 1/log2(3)
        "ndcg@1": (1 + 0 + 0) / 3,
        "ndcg@3": (1 + 1 / LOG3 + 0) / 3,
        "ndcg@5": (1 + 1 / LOG3 + 0) / 3,
    }
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, abs=1e-12), key


def test_hand_computed_psp():
    inv_prop = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    gold = to_csr(GOLD, L)
    ranked = ranked_labels(SCORES, 3, L, 5)
    hits = rank_hits(ranked, gold)
    best = best_ranking(gold, inv_prop, 5)
    assert best.tolist() == [[3, 1, -1, -1, -1], [0, -1, -1, -1, -1], [-1] * 5]  # by 1/p desc
    # k=1: numerator doc0 top-1 = label 1 (hit, 1/p = 2), doc1 label 2 miss -> 2
    #      denominator doc0 best = label 3 (4), doc1 label 0 (1) -> 5
    assert psp_at_k(ranked, hits, best, inv_prop, 1) == pytest.approx(2 / 5)
    # k=3: numerator 2 + 4 (doc0) + 1 (doc1, label 0 at rank 2) = 7; denominator 4 + 2 + 1 = 7
    assert psp_at_k(ranked, hits, best, inv_prop, 3) == pytest.approx(1.0)


def test_inverse_propensity_formula():
    # N = 100, A = 0.5, B = 1: C = (ln 100 - 1) * 2**0.5
    c = (math.log(100) - 1) * 2**0.5
    got = inverse_propensity([0, 10], 100, a=0.5, b=1.0)
    assert got[0] == pytest.approx(1 + c * 1**-0.5)  # (0 + 1)^-0.5 = 1
    assert got[1] == pytest.approx(1 + c / math.sqrt(11))  # (10 + 1)^-0.5


def test_psp_through_evaluate_and_warning_without_n_train_docs():
    counts = [50, 20, 10, 5, 1]
    m = evaluate([set()] * 3, GOLD, L, scores=SCORES, train_label_counts=counts, n_train_docs=100)
    inv = inverse_propensity(counts, 100, 0.55, 1.5)
    # k=1: doc0 ranks label 1 first (hit); best for doc0 is the rarer of {1, 3} (label 3); doc1 best = 0
    assert m["psp@1"] == pytest.approx(inv[1] / (inv[3] + inv[0]))
    assert 0 < m["psp@5"] <= 1
    with pytest.warns(UserWarning, match="n_train_docs"):
        m = evaluate([set()] * 3, GOLD, L, scores=SCORES, train_label_counts=counts)
    assert "psp@1" not in m and "f1_head" in m


def _loop_reference(scores, gold, k):
    """Slow, readable P@k and nDCG@k: sort every row, walk the first k ranks."""
    p_sum = n_sum = 0.0
    for row, g in zip(scores, gold):
        order = sorted(range(len(row)), key=lambda j: (-row[j], j))[:k]
        rel = [1.0 if j in g else 0.0 for j in order]
        p_sum += sum(rel) / k
        dcg = sum(r / math.log2(i + 2) for i, r in enumerate(rel))
        idcg = sum(1 / math.log2(i + 2) for i in range(min(k, len(g))))
        n_sum += dcg / idcg if idcg > 0 else 0.0
    return p_sum / len(gold), n_sum / len(gold)


cases = st.integers(1, 9).flatmap(
    lambda n_labels: st.integers(1, 7).flatmap(
        lambda n_docs: st.tuples(
            # scores on a coarse grid so that ties are frequent
            arrays(np.float64, (n_docs, n_labels), elements=st.integers(1, 4).map(lambda x: x / 4)),
            st.lists(st.sets(st.integers(0, n_labels - 1)), min_size=n_docs, max_size=n_docs),
        )
    )
)


@settings(max_examples=50, deadline=None)
@given(cases)
def test_against_loop_reference_and_every_score_format(case):
    scores, gold = case
    n_docs, n_labels = scores.shape
    ks = (1, 2, 3, 5)
    m = evaluate([set()] * n_docs, gold, n_labels, scores=scores, ks=ks)
    for k in ks:
        p, n = _loop_reference(scores, gold, k)
        assert m[f"p@{k}"] == pytest.approx(p, abs=1e-12)
        assert m[f"ndcg@{k}"] == pytest.approx(n, abs=1e-12)
    ranking = {k: v for k, v in m.items() if k.startswith(("p@", "ndcg@"))}
    # sparse: all scores positive, so every entry is stored
    sparse = evaluate([set()] * n_docs, gold, n_labels, scores=sp.csr_matrix(scores), ks=ks)
    assert {k: sparse[k] for k in ranking} == pytest.approx(ranking)
    # top-k pair with the columns shuffled (order inside a row is irrelevant)
    rng = np.random.default_rng(0)
    perm = np.stack([rng.permutation(n_labels) for _ in range(n_docs)])
    pair = (perm, np.take_along_axis(scores, perm, axis=1))
    topk = evaluate([set()] * n_docs, gold, n_labels, scores=pair, ks=ks)
    assert {k: topk[k] for k in ranking} == pytest.approx(ranking)
    # already-ranked ids
    order = np.array([sorted(range(n_labels), key=lambda j: (-r[j], j)) for r in scores])
    ranked = evaluate([set()] * n_docs, gold, n_labels, scores=(order, None), ks=ks)
    assert {k: ranked[k] for k in ranking} == pytest.approx(ranking)


def test_torch_scores_are_accepted():
    import torch  # a required dependency of the toolkit, not an optional extra

    base = evaluate([set()] * 3, GOLD, L, scores=SCORES)
    assert evaluate([set()] * 3, GOLD, L, scores=torch.tensor(SCORES, dtype=torch.float32)) == pytest.approx(base)


def test_fewer_candidates_than_k_count_as_misses():
    # doc0 has only two candidates (third is padding), both right: P@1 = 1, P@3 = 2/3
    ids = np.array([[3, 1, -1]])
    vals = np.array([[0.2, 0.9, 0.0]])
    m = evaluate([set()], [{1, 3}], L, scores=(ids, vals), ks=(1, 3, 5))
    assert (m["p@1"], m["p@3"], m["p@5"]) == pytest.approx((1.0, 2 / 3, 2 / 5))
    assert m["ndcg@5"] == pytest.approx(1.0)  # both gold labels at the top
    # dense scores narrower than the label universe (e.g. over training labels only)
    m = evaluate([set()], [{4}], L, scores=np.array([[0.1, 0.2, 0.3]]), ks=(1, 3))
    assert m["p@3"] == 0.0


def test_repeated_candidate_counts_once_at_its_best_rank():
    # label 1 appears twice (scores .9 and .8): ranking is 1, 3, -, not 1, 1, 3
    ids = np.array([[1, 1, 3]])
    vals = np.array([[0.9, 0.8, 0.7]])
    m = evaluate([set()], [{1, 3}], L, scores=(ids, vals), ks=(1, 2, 3))
    assert (m["p@1"], m["p@2"], m["p@3"]) == pytest.approx((1.0, 1.0, 2 / 3))
    m = evaluate([set()], [{1, 3}], L, scores=(np.array([[1, 1, 3]]), None), ks=(2,))
    assert m["p@2"] == pytest.approx(1.0)


def test_invalid_scores():
    with pytest.raises(ValueError, match="NaN"):
        evaluate([set()], [{1}], L, scores=np.array([[np.nan, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="scores: document 0 has label id 9"):
        evaluate([set()], [{1}], L, scores=(np.array([[9]]), np.array([[1.0]])))
    with pytest.raises(ValueError, match="shape"):
        evaluate([set()], [{1}], L, scores=np.zeros((2, L)))


def test_dense_scores_ranked_in_blocks_give_the_same_answer(monkeypatch):
    import evaluation._sparse as sparse_mod

    rng = np.random.default_rng(1)
    scores = np.round(rng.random((23, 7)), 1)  # many ties
    gold = [set(rng.choice(7, size=rng.integers(0, 4), replace=False).tolist()) for _ in range(23)]
    whole = evaluate([set()] * 23, gold, 7, scores=scores)
    monkeypatch.setattr(sparse_mod, "DENSE_BLOCK_CELLS", 8)  # one row per block
    assert evaluate([set()] * 23, gold, 7, scores=scores) == whole
    for k in (1, 3, 5):
        assert whole[f"p@{k}"] == pytest.approx(_loop_reference(scores, gold, k)[0])


# --------------------------------------------------------------------------- scikit-learn as the reference
# Where the definitions agree:
# - nDCG@k with binary relevance is scikit-learn's ndcg_score(y_true, y_score, k=k): the same
#   1/log2(r + 1) discount, the same ideal DCG (the gold labels on the first min(k, |Y|) ranks),
#   and a document with an empty gold set scores 0 and counts in the mean;
# - P@k is the sample-averaged precision of the top-k label sets, i.e. scikit-learn's
#   precision_score(average="samples") of the sets {pi(1), ..., pi(k)} (each has k labels).
# Where they differ: ties. Ours ranks a tie by the lower label id. ndcg_score(ignore_ties=False),
# its default, gives every label of a tied group the group's mean gain; with ignore_ties=True the
# order inside a tie is whatever np.argsort returns. So ties are broken in the test (by label id)
# before scikit-learn sees the scores, and test_sklearn_ndcg_averages_ties shows the difference.

def _sklearn():
    return pytest.importorskip("sklearn.metrics", reason="scikit-learn is in the test extra: pip install -e .[test]")


def _indicator(gold, n_labels):
    y = np.zeros((len(gold), n_labels), dtype=int)
    for i, g in enumerate(gold):
        y[i, sorted(g)] = 1
    return y


def _ties_to_lower_id(scores):
    """Distinct scores with the same order as ours: by score descending, ties to the lower id."""
    n_docs, n_labels = scores.shape
    out = np.empty_like(scores, dtype=np.float64)
    for i in range(n_docs):
        order = np.lexsort((np.arange(n_labels), -scores[i]))  # primary: -score, then the id
        out[i, order] = n_labels - np.arange(n_labels)  # rank r gets score L - r
    return out


def _random_case(seed, n_docs=40, n_labels=12, grid=None):
    rng = np.random.default_rng(seed)
    scores = rng.random((n_docs, n_labels))
    if grid:
        scores = np.round(scores * grid) / grid  # coarse values: many ties
    # gold sets of 0 .. 8 labels: below, at and above every k
    gold = [set(rng.choice(n_labels, size=rng.integers(0, 9), replace=False).tolist()) for _ in range(n_docs)]
    return scores, gold


@pytest.mark.parametrize("grid", [None, 4])
def test_ndcg_equals_sklearn_ndcg_score(grid):
    skm = _sklearn()
    scores, gold = _random_case(20 + (grid or 0), grid=grid)
    n_docs, n_labels = scores.shape
    ks = (1, 3, 5, 10)
    m = evaluate([set()] * n_docs, gold, n_labels, scores=scores, ks=ks)
    y_true = _indicator(gold, n_labels)
    untied = _ties_to_lower_id(scores)
    for k in ks:
        assert m[f"ndcg@{k}"] == pytest.approx(skm.ndcg_score(y_true, untied, k=k), abs=1e-12), k
        if grid is None:  # continuous scores have no ties: scikit-learn sees the raw scores
            assert m[f"ndcg@{k}"] == pytest.approx(skm.ndcg_score(y_true, scores, k=k), abs=1e-12), k


@pytest.mark.parametrize("grid", [None, 4])
def test_precision_at_k_equals_sklearn_samples_precision_of_top_k_sets(grid):
    skm = _sklearn()
    scores, gold = _random_case(30 + (grid or 0), grid=grid)
    n_docs, n_labels = scores.shape
    ks = (1, 3, 5, 10)
    m = evaluate([set()] * n_docs, gold, n_labels, scores=scores, ks=ks)
    y_true = _indicator(gold, n_labels)
    untied = _ties_to_lower_id(scores)
    for k in ks:
        top_k = np.argsort(-untied, axis=1)[:, :k]  # distinct scores: the order is unambiguous
        y_pred = np.zeros_like(y_true)
        np.put_along_axis(y_pred, top_k, 1, axis=1)
        expected = skm.precision_score(y_true, y_pred, average="samples", zero_division=0)
        assert m[f"p@{k}"] == pytest.approx(expected, abs=1e-12), k


def test_sklearn_ndcg_averages_ties():
    skm = _sklearn()
    # one document, gold {0}; labels 0 and 1 tie at the second-best score
    scores = np.array([[0.5, 0.5, 0.7, 0.1]])
    y_true = np.array([[1, 0, 0, 0]])
    ours = evaluate([set()], [{0}], 4, scores=scores, ks=(3,))["ndcg@3"]
    assert ours == pytest.approx(1 / math.log2(3), abs=1e-12)  # label 0 (lower id) at rank 2
    # scikit-learn's default spreads the gain of the tied pair over ranks 2 and 3
    tied = skm.ndcg_score(y_true, scores, k=3)
    assert tied == pytest.approx(0.5 / math.log2(3) + 0.5 / math.log2(4), abs=1e-12)
    assert tied < ours


def test_hand_computed_table_with_ties_and_gold_larger_than_k():
    # L = 6, k = 1, 2, 4. Rankings by score, ties to the lower id:
    #   doc0 G={0,1,2,3,4} scores .9 .1 .9 .1 .5 .0 -> 0, 2, 4, 1, 3, 5 ; hits 1 1 1 1 1 0
    #   doc1 G={1}         scores .2 .2 .2 .2 .2 .2 -> 0, 1, 2, 3, 4, 5 ; hits 0 1 0 0 0 0
    #   doc2 G={1,4}       scores .3 .8 .3 .3 .8 .0 -> 1, 4, 0, 2, 3, 5 ; hits 1 1 0 0 0 0
    gold = [{0, 1, 2, 3, 4}, {1}, {1, 4}]
    scores = np.array([[0.9, 0.1, 0.9, 0.1, 0.5, 0.0],
                       [0.2, 0.2, 0.2, 0.2, 0.2, 0.2],
                       [0.3, 0.8, 0.3, 0.3, 0.8, 0.0]])
    m = evaluate([set()] * 3, gold, 6, scores=scores, ks=(1, 2, 4))
    d = [1 / math.log2(r + 1) for r in range(1, 7)]  # discounts of ranks 1..6
    assert m["p@1"] == pytest.approx((1 + 0 + 1) / 3, abs=1e-12)
    assert m["p@2"] == pytest.approx((2 / 2 + 1 / 2 + 2 / 2) / 3, abs=1e-12)
    assert m["p@4"] == pytest.approx((4 / 4 + 1 / 4 + 2 / 4) / 3, abs=1e-12)
    # IDCG@k sums min(k, |G|) discounts: doc0 (|G| = 5) is perfect at every k <= 4; doc1's one label
    # is at rank 2 (IDCG = 1); doc2 (|G| = 2) is perfect too, because IDCG@4 has only 2 terms
    assert m["ndcg@1"] == pytest.approx((1 + 0 + 1) / 3, abs=1e-12)
    assert m["ndcg@2"] == pytest.approx((1 + d[1] + 1) / 3, abs=1e-12)
    assert m["ndcg@4"] == pytest.approx((1 + d[1] + 1) / 3, abs=1e-12)
    # a doc whose hits are not on top: G={1,4} ranked 1st and 3rd
    m = evaluate([set()], [{1, 4}], 6, scores=np.array([[0.0, 0.9, 0.5, 0.1, 0.4, 0.0]]), ks=(1, 2, 4))
    assert (m["p@1"], m["p@2"], m["p@4"]) == pytest.approx((1, 1 / 2, 2 / 4), abs=1e-12)
    assert m["ndcg@2"] == pytest.approx(d[0] / (d[0] + d[1]), abs=1e-12)
    assert m["ndcg@4"] == pytest.approx((d[0] + d[2]) / (d[0] + d[1]), abs=1e-12)
