"""The linear one-vs-rest TF-IDF baseline (``baselines/linear.py``) and its script.

Checked against independent references: term counts against a per-document
``Counter`` loop; TF-IDF against scikit-learn's ``TfidfTransformer``; the whole
model against a scikit-learn pipeline built here (``CountVectorizer`` fitted on
the training text -> ``TfidfTransformer(sublinear_tf=True)`` ->
``OneVsRestClassifier(LinearSVC)``), on token-id strings and on the raw text
of the toolkit's synthetic dataset: the same predicted sets exactly, the same
scores to 1e-6. Also: ``<pad>``/``<unk>`` change nothing, a label absent from
training is never predicted nor ranked, a label in every training document
does not crash, the ``.npz`` round trip gives identical scores, bad input is a
one-line ValueError, ``top_k`` ranks with ties to the lower id, and
``examples/train_linear.py`` writes a consistent run directory (its test
micro-F1 recomputed from ``predictions.tsv``; its ``calibrated`` entry, whose
``τ`` is the brute-force grid search over the dev margins and never lowers dev
micro-F1) and answers bad arguments with one line and exit code 2;
``examples/predict.py`` labels raw text with a linear run as the saved model
does (decoded, ``--calibrated``, ``--top-k``) and refuses a directory that is
no run, or a broken one, in one line.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import Counter

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is needed by the linear baseline (.[linear])")
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer  # noqa: E402
from sklearn.multiclass import OneVsRestClassifier  # noqa: E402
from sklearn.preprocessing import MultiLabelBinarizer  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

from baselines.linear import (  # noqa: E402
    PAD_ID,
    UNK_ID,
    LinearConfig,
    LinearOneVsRest,
    count_matrix,
    tfidf,
    top_k_from_scores,
)
from evaluation import evaluate  # noqa: E402


# --------------------------------------------------------------------------- data
def planted_split(n_docs: int, n_labels: int, vocab: int, seed: int, *, first_word: int = 2):
    """Documents of token ids with planted label words: ``(tokens, label_sets)``.

    Label ``l`` owns the words ``first_word + 3l .. first_word + 3l + 2``; the rest
    of the vocabulary is noise. Ids below ``first_word`` never occur.
    """
    rng = np.random.default_rng(seed)
    noise = np.arange(first_word + 3 * n_labels, vocab)
    tokens, labels = [], []
    for _ in range(n_docs):
        labs = set(rng.choice(n_labels, size=rng.integers(1, 4), replace=False).tolist())
        own = np.array([first_word + 3 * l + rng.integers(0, 3) for l in labs for _ in range(rng.integers(1, 4))])
        toks = np.concatenate([own, rng.choice(noise, size=rng.integers(5, 30))]).astype(np.int32)
        rng.shuffle(toks)
        # some label words leak into other documents, so the problem is not separable by construction
        if rng.random() < 0.3:
            toks = np.append(toks, first_word + rng.integers(0, 3 * n_labels))
        tokens.append(toks)
        labels.append(labs)
    return tokens, labels


def as_text(tokens) -> list[str]:
    return [" ".join(f"w{t}" for t in doc) for doc in tokens]


def reference_pipeline(train_texts, train_labels, test_texts, n_labels, **vectorizer):
    """scikit-learn on its own: (decision scores (D, L), predicted sets) for the test texts."""
    vec = CountVectorizer(**vectorizer).fit(train_texts)
    tf = TfidfTransformer(sublinear_tf=True).fit(vec.transform(train_texts))
    y = MultiLabelBinarizer(classes=list(range(n_labels))).fit_transform(train_labels)  # (D, L)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "label not present in all training examples"
        ovr = OneVsRestClassifier(LinearSVC(random_state=0)).fit(tf.transform(vec.transform(train_texts)), y)
        x_test = tf.transform(vec.transform(test_texts))
        scores = ovr.decision_function(x_test)  # (D', L)
        pred = ovr.predict(x_test)  # (D', L) indicator
    return scores, [set(np.flatnonzero(row).tolist()) for row in np.asarray(pred)]


def fitted(tokens, labels, n_features, n_labels, **cfg):
    return LinearOneVsRest(n_features, n_labels, LinearConfig(**cfg)).fit(tokens, labels)


# --------------------------------------------------------------------------- pieces
def test_special_ids_are_the_toolkits():
    from xmtc.data.text import PAD, UNK

    assert (PAD_ID, UNK_ID) == (PAD, UNK)


def test_count_matrix_against_counter_loop():
    tokens, _ = planted_split(40, 5, 60, seed=1)
    tokens[3] = np.zeros(0, dtype=np.int32)  # an empty document is an all-zero row
    tokens[4] = [7, 7, 7, 9]  # plain lists work too
    x = count_matrix(tokens, 60)
    assert x.shape == (40, 60) and x.has_canonical_format
    expected = np.zeros((40, 60))
    for d, doc in enumerate(tokens):
        for t, c in Counter(int(v) for v in doc).items():
            expected[d, t] = c
    np.testing.assert_array_equal(x.toarray(), expected)
    assert x[3].nnz == 0 and x[4, 7] == 3


def test_tfidf_matches_sklearn_transformer():
    tokens, _ = planted_split(50, 5, 80, seed=2)
    counts = count_matrix(tokens, 80)
    used = np.flatnonzero(np.bincount(counts.indices, minlength=80))  # sklearn keeps every column
    ref = TfidfTransformer(sublinear_tf=True).fit(counts[:, used])
    idf = np.zeros(80)
    idf[used] = ref.idf_
    ours = tfidf(counts, idf)[:, used]
    np.testing.assert_allclose(ours.toarray(), ref.transform(counts[:, used]).toarray(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(ours.toarray(), axis=1), 1.0, atol=1e-12)


def test_top_k_order_ties_and_missing_classifiers():
    scores = np.array([[0.5, 2.0, 0.5, -np.inf, -1.0],
                       [-np.inf, -np.inf, 3.0, -np.inf, -np.inf]], dtype=np.float32)
    ids, vals = top_k_from_scores(scores, 4)
    np.testing.assert_array_equal(ids, [[1, 0, 2, 4], [2, -1, -1, -1]])  # ties: lower id first
    np.testing.assert_array_equal(vals, np.array([[2.0, 0.5, 0.5, -1.0], [3.0, -np.inf, -np.inf, -np.inf]],
                                                 dtype=np.float32))
    ids, _ = top_k_from_scores(scores, 9)  # k beyond L: padded
    assert ids.shape == (2, 9) and (ids[:, 5:] == -1).all()


# --------------------------------------------------------------------------- the model against scikit-learn
def test_matches_sklearn_pipeline_on_token_ids():
    n_labels, vocab = 8, 120
    tokens, labels = planted_split(300, n_labels - 1, vocab - 10, seed=3)  # label 7 never occurs in training
    test_tokens, test_labels = planted_split(80, n_labels, vocab, seed=4)  # ids >= 110 unseen in training
    model = fitted(tokens, labels, vocab, n_labels)
    ref_scores, ref_pred = reference_pipeline(as_text(tokens), labels, as_text(test_tokens), n_labels,
                                              token_pattern=r"\S+", lowercase=False)
    scores = model.decision_function(test_tokens)
    assert scores.shape == (80, n_labels) and scores.dtype == np.float32
    np.testing.assert_allclose(scores[:, :7], ref_scores[:, :7], rtol=0, atol=1e-6)
    assert model.predict(test_tokens) == ref_pred
    assert np.isneginf(scores[:, 7]).all()  # no classifier for the absent label
    assert model.info["n_labels_fitted"] == 7 and model.info["n_labels_absent"] == 1
    # the predictions are worth something: the planted words decide the labels
    assert evaluate(model.predict(test_tokens), test_labels, n_labels)["micro_f1"] > 0.5


def test_matches_sklearn_pipeline_on_synthetic_dataset_text():
    """Raw text through CountVectorizer vs the toolkit's token ids (``<unk>`` = words unseen in training)."""
    from xmtc.data import datasets
    ds = datasets.load("synthetic", cache=False, n_docs=400, n_labels=12, n_noise_words=150, seed=5)
    tr, te = ds.train.subset(np.arange(60)), ds.test  # many vocabulary words unseen in these 60 documents
    model = LinearOneVsRest(len(ds.vocab), len(ds.label_names)).fit([tr.tokens(i) for i in range(len(tr))],
                                                                   tr.label_sets())
    test_tokens = [te.tokens(i) for i in range(len(te))]
    ref_scores, ref_pred = reference_pipeline([tr.text(i) for i in range(len(tr))], tr.label_sets(),
                                              [te.text(i) for i in range(len(te))], len(ds.label_names),
                                              token_pattern=r"\w+", lowercase=True)
    trained = np.isfinite(model.intercept)
    np.testing.assert_allclose(model.decision_function(test_tokens)[:, trained], ref_scores[:, trained],
                               rtol=0, atol=1e-6)
    assert model.predict(test_tokens) == ref_pred


def test_pad_and_unk_change_nothing():
    tokens, labels = planted_split(120, 5, 60, seed=6)
    test_tokens, _ = planted_split(30, 5, 60, seed=7)
    base = fitted(tokens, labels, 60, 5)
    rng = np.random.default_rng(0)

    def noisy(docs):
        return [np.concatenate([d, rng.choice([PAD_ID, UNK_ID], size=rng.integers(0, 20))]) for d in docs]

    padded = fitted(noisy(tokens), labels, 60, 5)
    assert (padded.coef != base.coef).nnz == 0
    np.testing.assert_array_equal(padded.intercept, base.intercept)
    np.testing.assert_array_equal(padded.decision_function(noisy(test_tokens)), base.decision_function(test_tokens))
    assert padded.idf[PAD_ID] == 0 and padded.idf[UNK_ID] == 0


def test_absent_label_never_predicted_and_label_in_every_document():
    tokens, labels = planted_split(150, 4, 50, seed=8)
    labels = [s | {4} for s in labels]  # label 4 in every training document; labels 5, 6 in none
    model = fitted(tokens, labels, 50, 7)
    test_tokens, _ = planted_split(40, 4, 50, seed=9)
    scores = model.decision_function(test_tokens)
    assert np.isneginf(scores[:, 5:]).all() and (scores[:, 4] == 1.0).all()
    pred = model.predict(test_tokens)
    assert all(4 in s and not s & {5, 6} for s in pred)
    assert all(not s & {5, 6} for s in model.predict(test_tokens, threshold=-1e9))  # not even at any threshold
    ids, _ = model.top_k(test_tokens, 7)
    assert not np.isin(ids, [5, 6]).any() and (ids[:, 5:] == -1).all()
    assert model.info["n_labels_constant"] == 1 and model.info["n_labels_absent"] == 2


def test_save_load_round_trip(tmp_path):
    tokens, labels = planted_split(150, 6, 70, seed=10)
    model = fitted(tokens, labels, 70, 8, C=0.5)
    test_tokens, _ = planted_split(40, 6, 70, seed=11)
    path = model.save(tmp_path / "model.npz")
    assert not list(tmp_path.glob("*.tmp"))
    with np.load(path, allow_pickle=False) as z:  # plain arrays only, no pickled objects
        assert all(z[k].dtype != object for k in z.files)
    again = LinearOneVsRest.load(path)
    np.testing.assert_array_equal(again.decision_function(test_tokens), model.decision_function(test_tokens))
    assert again.config == model.config and again.predict(test_tokens) == model.predict(test_tokens)
    state = LinearOneVsRest.from_state(model.state_dict())
    np.testing.assert_array_equal(state.decision_function(test_tokens), model.decision_function(test_tokens))
    with pytest.raises(ValueError, match="not a linear one-vs-rest model"):
        LinearOneVsRest.from_state({"shape": np.array([1, 1])})


@pytest.mark.parametrize("tokens, labels, message", [
    ([], [], "no training documents"),
    ([[2, 3], [4]], [{0}], "tokens has 2 documents but label_sets has 1"),
    ([[2, 3], [4]], [set(), set()], "no training document has a label"),
    ([[2, 3], [40]], [{0}, {1}], "token id 40 out of range for n_features=10"),
    ([[2, -1]], [{0}], "token id -1 out of range for n_features=10"),
    ([[2, 3]], [{5}], "document 0: label id 5 out of range for n_labels=3"),
    ([np.ones((2, 2), dtype=int)], [{0}], r"document 0: token ids must be a 1-D array"),
    ([[2.5, 3.0]], [{0}], "document 0: token ids must be integers"),
])
def test_bad_input_is_one_line_value_error(tokens, labels, message):
    with pytest.raises(ValueError, match=message) as info:
        LinearOneVsRest(10, 3).fit(tokens, labels)
    assert "\n" not in str(info.value)


def test_bad_settings_and_unfitted_model():
    for kwargs in ({"C": 0}, {"C": -1.0}, {"C": math.inf}, {"loss": "log"}, {"dual": "yes"}, {"max_iter": 0}):
        with pytest.raises(ValueError):
            LinearConfig(**kwargs)
    with pytest.raises(ValueError, match="n_features and n_labels must be >= 1"):
        LinearOneVsRest(0, 3)
    with pytest.raises(RuntimeError, match="not fitted"):
        LinearOneVsRest(10, 3).decision_function([[2]])


def test_not_converged_is_one_warning():
    tokens, labels = planted_split(100, 5, 60, seed=12)
    with pytest.warns(UserWarning, match=r"of 5 label classifiers did not converge within max_iter=1") as rec:
        model = fitted(tokens, labels, 60, 5, max_iter=1, C=100.0)
    assert len([w for w in rec if "did not converge" in str(w.message)]) == 1
    assert not [w for w in rec if issubclass(w.category, ConvergenceWarning)]
    assert model.info["n_not_converged"] >= 1


@pytest.mark.slow
def test_worker_processes_give_the_same_model():
    tokens, labels = planted_split(200, 6, 80, seed=13)
    one = fitted(tokens, labels, 80, 6)
    two = LinearOneVsRest(80, 6, n_jobs=2).fit(tokens, labels)
    assert (one.coef != two.coef).nnz == 0
    np.testing.assert_array_equal(one.intercept, two.intercept)


# --------------------------------------------------------------------------- the script
SCRIPT_ARGV = ["--data", "synthetic", "--max-train-docs", "300", "--max-valid-docs", "60", "--max-test-docs", "120"]


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("examples/train_linear.py")


@pytest.fixture(scope="module")
def linear_run(script, tmp_path_factory):
    """A linear run directory of the synthetic dataset (trained once for the module)."""
    out = tmp_path_factory.mktemp("linear") / "run"
    assert script.main(SCRIPT_ARGV + ["--C", "0.5", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def synthetic():
    """The synthetic dataset with the script's document limits (what the run trained and scored on)."""
    from xmtc.data import datasets

    ds = datasets.load("synthetic")
    ds.valid, ds.test = ds.valid.subset(np.arange(60), "valid"), ds.test.subset(np.arange(120), "test")
    return ds


def test_script_run_directory(script, linear_run):
    out = linear_run
    for name in ("config.json", "metrics.json", "predictions.tsv", "model.npz", "vocab.json"):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "linear" and config["linear"]["C"] == 0.5 and config["linear"]["jobs"] == 1
    assert config["data"]["name"] == "synthetic" and config["data"]["max_train_docs"] == 300
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_time_s"] > 0
    for split in ("valid", "test"):
        for key in ("micro_f1", "macro_f1", "example_f1", "subset_accuracy", "hamming_loss", "p@1", "p@5", "ndcg@5"):
            assert math.isfinite(metrics[split][key]), (split, key)
    header, *rows = (out / "predictions.tsv").read_text().splitlines()
    assert header.split("\t") == ["doc_id", "gold", "predicted"] and len(rows) == 120
    rows = [r.split("\t") for r in rows]
    assert all(len(r) == 3 for r in rows)
    # predictions.tsv agrees with the test metrics (names -> ids -> micro-F1)
    names: dict[str, int] = {}
    gold = [{names.setdefault(x, len(names)) for x in r[1].split("|")} for r in rows]
    pred = [{names.setdefault(x, len(names)) for x in r[2].split("|") if x} for r in rows]
    assert evaluate(pred, gold, len(names))["micro_f1"] == pytest.approx(metrics["test"]["micro_f1"], abs=1e-12)
    assert metrics["test"]["micro_f1"] > 0.5  # planted labels are learnable
    # the saved model reproduces the predictions
    from xmtc.data import datasets
    ds = datasets.load("synthetic")
    model = LinearOneVsRest.load(out / "model.npz")
    again = model.predict([ds.test.tokens(i) for i in range(120)])
    assert [{ds.label_names[k] for k in s} for s in again] == [set(filter(None, r[2].split("|"))) for r in rows]
    vocab = json.loads((out / "vocab.json").read_text())
    assert vocab["vocab"] == ds.vocab.itos and vocab["label_names"] == ds.label_names
    assert vocab["tokenizer"] == ds.meta["tokenizer"]
    # a second run into the same directory needs --overwrite
    assert script.main(SCRIPT_ARGV + ["--out", str(out)]) == 2


def test_script_stores_the_calibrated_entry(linear_run):
    from evaluation.calibration import MARGIN_GRID

    m = json.loads((linear_run / "metrics.json").read_text())
    cal = m["calibrated"]
    assert set(cal) == {"rule", "tau", "valid", "test"} and cal["rule"] == "score >= tau"
    assert set(cal["valid"]) == set(m["test"]) == set(cal["test"])
    assert cal["tau"] is None or cal["tau"] in MARGIN_GRID.tolist()
    # the ranking metrics are the model's margins, unchanged by the threshold
    for key in ("p@1", "p@3", "p@5", "ndcg@5"):
        assert cal["test"][key] == m["test"][key] and cal["valid"][key] == m["valid"][key]
    # tau, chosen on dev, never lowers dev micro-F1 against the decoded sets (score > 0)
    assert cal["valid"]["micro_f1"] >= m["valid"]["micro_f1"]


def test_calibrated_tau_is_the_brute_force_grid_search(linear_run, synthetic):
    """Every tau of MARGIN_GRID on the dev margins, sets {l : s >= tau} scored by evaluate: the first maximum,
    and the test figures are those of the same rule at that tau."""
    from evaluation.calibration import MARGIN_GRID

    model = LinearOneVsRest.load(linear_run / "model.npz")
    cal = json.loads((linear_run / "metrics.json").read_text())["calibrated"]
    n = len(synthetic.label_names)
    f1 = {}
    for name in ("valid", "test"):
        split = getattr(synthetic, name)
        margins = model.decision_function([split.tokens(i) for i in range(len(split))])  # (D, L)
        f1[name] = {float(t): evaluate([set(np.flatnonzero(r >= t).tolist()) for r in margins], split.label_sets(),
                                       n)["micro_f1"] for t in MARGIN_GRID}
        f1[name]["decoded"] = evaluate(model.predict([split.tokens(i) for i in range(len(split))]),
                                       split.label_sets(), n)["micro_f1"]
    decoded = f1["valid"].pop("decoded")
    tau = max(f1["valid"], key=f1["valid"].get)
    if decoded > f1["valid"][tau]:
        assert cal["tau"] is None
    else:
        assert cal["tau"] == tau
        assert cal["valid"]["micro_f1"] == pytest.approx(f1["valid"][tau], abs=1e-12)
        assert cal["test"]["micro_f1"] == pytest.approx(f1["test"][tau], abs=1e-12)


def _predict_json(load_script, capsys, argv) -> list[dict]:
    assert load_script("examples/predict.py").main(argv + ["--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_predict_on_a_linear_run(linear_run, synthetic, load_script, capsys):
    """predict.py on raw text: the margins and sets of the saved model on the same tokens, for each rule."""
    from xmtc.data.text import TOKENIZERS

    model = LinearOneVsRest.load(linear_run / "model.npz")
    texts = [synthetic.test.text(i) for i in range(4)]
    tokenize = TOKENIZERS[synthetic.meta["tokenizer"]]
    margins = model.decision_function([synthetic.vocab.encode(tokenize(t)) for t in texts])  # (4, L)
    names = synthetic.label_names
    tau = json.loads((linear_run / "metrics.json").read_text())["calibrated"]["tau"]

    def expected(row, chosen):
        return [(names[k], round(float(row[k]), 4)) for k in sorted(chosen, key=lambda k: (-row[k], k))]

    rules = {(): lambda row: np.flatnonzero(row > 0),
             ("--calibrated",): lambda row: np.flatnonzero(row > 0) if tau is None else np.flatnonzero(row >= tau),
             ("--top-k", "3"): lambda row: np.argsort(-row, kind="stable")[:3]}
    for flags, rule in rules.items():
        lines = _predict_json(load_script, capsys, [str(linear_run), *texts, *flags])
        assert len(lines) == 4, flags
        for line, row in zip(lines, margins):
            assert [(x["label"], x["score"]) for x in line["labels"]] == expected(row, rule(row)), flags
    # the decoded sets are those of predictions.tsv's first documents (same tokens: whole documents)
    rows = (linear_run / "predictions.tsv").read_text().splitlines()[1:5]
    decoded = _predict_json(load_script, capsys, [str(linear_run), *texts])
    assert [{x["label"] for x in line["labels"]} for line in decoded] == \
        [set(filter(None, r.split("\t")[2].split("|"))) for r in rows]


def test_inference_load_run_gives_one_interface(linear_run):
    from xmtc import inference

    run = inference.load_run(linear_run)
    assert run.kind == "linear" and run.max_src_len is None and run.calibrated is not None
    out = inference.predict_texts(run, ["w1 w2 w3", "nothing known here"], top_k=2)
    assert [len(x) for x in out] == [2, 2] and all(isinstance(s, float) for x in out for _, s in x)


def test_predict_bad_run_directories_one_line(linear_run, tmp_path, load_script, capsys):
    import shutil

    predict = load_script("examples/predict.py")

    def fails(argv, message):
        assert predict.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("predict.py: error: ") and message in err, err

    empty = tmp_path / "empty"
    empty.mkdir()
    fails([str(empty), "words"], "is not a run directory: it holds neither best.pt nor checkpoint.pt")
    fails([str(tmp_path / "missing"), "words"], "not found")
    no_vocab = tmp_path / "no_vocab"
    shutil.copytree(linear_run, no_vocab)
    (no_vocab / "vocab.json").unlink()
    fails([str(no_vocab), "words"], "a linear run without vocab.json")
    broken = tmp_path / "broken"
    shutil.copytree(linear_run, broken)
    (broken / "model.npz").write_bytes(b"not a zip file")
    fails([str(broken), "words"], "cannot read the linear model")
    old = tmp_path / "old"
    shutil.copytree(linear_run, old)
    m = json.loads((old / "metrics.json").read_text())
    del m["calibrated"]
    (old / "metrics.json").write_text(json.dumps(m))
    fails([str(old), "words", "--calibrated"], "no 'calibrated' entry")
    assert predict.main([str(old), "words"]) == 0  # the decoded sets need no entry
    capsys.readouterr()


@pytest.mark.parametrize("argv, message", [
    (["--data", "nope"], "argument --data: invalid choice"),
    (SCRIPT_ARGV + ["--C", "-1"], "argument --C: expected a number > 0, got -1"),
    (SCRIPT_ARGV + ["--jobs", "0"], "argument --jobs: expected a positive integer, got 0"),
    (["--data", "reuters", "--data-dir", "/nonexistent/xmtc"], "data directory /nonexistent/xmtc does not exist"),
])
def test_script_bad_arguments_one_line(script, capsys, tmp_path, argv, message):
    assert script.main(argv + ["--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("train_linear.py: error: ") and message in err and "\n" not in err
