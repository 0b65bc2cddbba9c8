"""Linear one-vs-rest TF-IDF classifier: the field's standard reference model.

Not a model of the paper: the linear baseline every XMTC result is read against
(LibMultiLabel's linear one-vs-rest reaches micro-F1 71.4 on EURLEX57K;
scikit-learn's one-vs-rest ``LinearSVC`` 85.8 on Reuters ModApte, DESIGN.md §6).
It reads the same token ids the neural models read (the toolkit's tokenisation
and training vocabulary), top to bottom:

1. term counts: a CSR matrix ``(D, F)`` from the documents' token-id arrays
   (:func:`count_matrix`, vectorised: one concatenation, no per-document dict);
2. TF-IDF fitted on the training documents only (:func:`tfidf`), as
   scikit-learn's ``TfidfTransformer(sublinear_tf=True, norm="l2")``;
3. one binary L2-regularised linear SVM per label (``LinearSVC``, liblinear),
   trained on all training documents, positives = the documents carrying the label;
4. scores ``s_{dl} = w_l · x_d + b_l``; a label is predicted where ``s_{dl} > 0``
   (the classifier's own rule), ranked by ``s_{dl}`` for P@k / nDCG@k.

Features. Feature ``j`` is token id ``j``; the weight matrix is ``(L, F)`` with
``F`` the vocabulary size. ``<pad>`` (0) and ``<unk>`` (1) are NOT features:
``<pad>`` is never a word, and ``<unk>`` lumps together every word outside the
training vocabulary (test-only words), which a vectorizer fitted on the
training text simply ignores. Likewise a token id that occurs in no training
document is ignored at prediction time. Both are implemented by an idf of 0,
so such tokens add nothing to a document's vector, nor to its L2 norm: the
features are exactly those of ``CountVectorizer`` fitted on the training text.
Documents are used whole (no ``max_src_len`` truncation; linear models read
the full text).

Labels. A label absent from the training documents gets no classifier: score
``-inf``, never predicted, never ranked. A label carried by every training
document gets the constant score ``+1`` (always predicted), as scikit-learn's
``OneVsRestClassifier`` does.

scikit-learn is needed to fit (``pip install -e '.[linear]'``) and is imported
lazily; a fitted model saves to and loads from a pickle-free ``.npz``
(:meth:`LinearOneVsRest.save`, :meth:`LinearOneVsRest.load`) and predicts with
numpy and scipy alone.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from evaluation.report import atomic_write

#: Token ids of ``<pad>`` and ``<unk>`` (the same as ``xmtc.data.text.PAD`` / ``xmtc.data.text.UNK``;
#: ``baselines`` may not import ``xmtc``, a test checks they agree).
PAD_ID, UNK_ID = 0, 1
#: Version of the ``.npz`` layout written by :meth:`LinearOneVsRest.save`.
FORMAT = "linear-ovr-1"
#: Documents scored at a time (bounds the dense ``(chunk, L)`` temporaries).
DOC_CHUNK = 2048

_INSTALL_HINT = "scikit-learn is needed to fit the linear model: pip install -e '.[linear]'"


def _sklearn():
    """The scikit-learn pieces used for fitting, imported lazily."""
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.feature_extraction.text import TfidfTransformer
        from sklearn.svm import LinearSVC
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(_INSTALL_HINT) from e
    return TfidfTransformer, LinearSVC, ConvergenceWarning


# --------------------------------------------------------------------------- config
@dataclass
class LinearConfig:
    """Settings of the one-vs-rest linear SVMs and of the TF-IDF weighting.

    C : inverse regularisation strength of every binary SVM (liblinear's ``-c``).
    loss : ``"squared_hinge"`` (L2-loss SVM, liblinear ``-s 1/2``) or ``"hinge"``.
    dual : ``"auto"`` (dual coordinate descent when documents < features, else
        the primal Newton solver; scikit-learn's rule), ``True`` or ``False``.
    tol, max_iter : liblinear's stopping tolerance and iteration cap.
    sublinear_tf : term frequency ``1 + ln(count)`` instead of ``count``.
    ignore_ids : token ids that are never features (``<pad>``, ``<unk>``).
    random_state : seed of liblinear's coordinate order (every label the same
        seed, as ``OneVsRestClassifier`` clones one estimator), so fits repeat.
    """

    C: float = 1.0
    loss: str = "squared_hinge"
    dual: str | bool = "auto"
    tol: float = 1e-4
    max_iter: int = 1000
    sublinear_tf: bool = True
    ignore_ids: tuple[int, ...] = field(default=(PAD_ID, UNK_ID))
    random_state: int = 0

    def __post_init__(self):
        self.ignore_ids = tuple(int(i) for i in self.ignore_ids)
        if not (isinstance(self.C, (int, float)) and math.isfinite(self.C) and self.C > 0):
            raise ValueError(f"C must be a positive number, got {self.C!r}")
        if self.loss not in ("squared_hinge", "hinge"):
            raise ValueError(f"loss must be 'squared_hinge' or 'hinge', got {self.loss!r}")
        if self.dual not in ("auto", True, False):
            raise ValueError(f"dual must be 'auto', True or False, got {self.dual!r}")
        if not self.tol > 0 or int(self.max_iter) < 1:
            raise ValueError(f"tol must be > 0 and max_iter >= 1, got {self.tol!r}, {self.max_iter!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ignore_ids"] = list(self.ignore_ids)
        return d


# --------------------------------------------------------------------------- features
def _as_token_arrays(tokens: Sequence, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated token ids ``(T,)`` int64 and per-document lengths ``(D,)``; checks ids."""
    arrays = []
    for i, t in enumerate(tokens):
        a = np.asarray(t)
        if a.ndim != 1:
            raise ValueError(f"document {i}: token ids must be a 1-D array, got shape {a.shape}")
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"document {i}: token ids must be integers, got dtype {a.dtype}")
        arrays.append(a.astype(np.int64, copy=False) if a.size else np.zeros(0, np.int64))
    lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=len(arrays))  # (D,)
    ids = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)  # (T,)
    if ids.size and (ids.min() < 0 or ids.max() >= n_features):
        bad = int(ids[(ids < 0) | (ids >= n_features)][0])
        raise ValueError(f"token id {bad} out of range for n_features={n_features}")
    return ids, lengths


def count_matrix(tokens: Sequence, n_features: int) -> sp.csr_matrix:
    """Term counts of documents given as token-id arrays.

    Parameters
    ----------
    tokens : sequence of D array-likes of int, each ``(l_d,)``
        Token ids in ``range(n_features)``; a document may be empty.
    n_features : int
        Vocabulary size F.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (D, F), float64
        ``X[d, j]`` = number of times token ``j`` occurs in document ``d``
        (canonical: sorted indices, no duplicates).
    """
    ids, lengths = _as_token_arrays(tokens, n_features)
    rows = np.repeat(np.arange(lengths.size, dtype=np.int64), lengths)  # (T,)
    counts = sp.csr_matrix((np.ones(ids.size), (rows, ids)), shape=(lengths.size, n_features))  # (D, F)
    counts.sum_duplicates()  # also sorts the indices
    return counts


def tfidf(counts: sp.csr_matrix, idf: np.ndarray, sublinear_tf: bool = True) -> sp.csr_matrix:
    r"""TF-IDF vectors with L2-normalised rows (scikit-learn's ``TfidfTransformer`` transform).

    .. math::

        x_{dj} = \frac{\mathrm{tf}_{dj}\,\mathrm{idf}_j}{\lVert \mathrm{tf}_{d\cdot}\,\mathrm{idf} \rVert_2},
        \qquad \mathrm{tf}_{dj} = 1 + \ln c_{dj} \ (c_{dj} > 0), \qquad
        \mathrm{idf}_j = \ln\frac{1 + n}{1 + \mathrm{df}_j} + 1

    with ``n`` training documents and ``df_j`` the training documents holding
    token ``j``; a token with ``idf_j = 0`` (not a feature) is dropped before
    the norm is taken. An all-zero row stays zero.

    Parameters
    ----------
    counts : csr_matrix, shape (D, F)
        Term counts (:func:`count_matrix`).
    idf : ndarray, shape (F,)
        Inverse document frequencies, 0 for tokens that are not features.
    sublinear_tf : bool
        ``tf = 1 + ln(count)`` (True) or ``tf = count``.

    Returns
    -------
    csr_matrix, shape (D, F), float64
    """
    x = sp.csr_matrix(counts, dtype=np.float64, copy=True)  # (D, F)
    if sublinear_tf:
        x.data = np.log(x.data) + 1.0
    x.data *= idf[x.indices]
    x.eliminate_zeros()
    row = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))  # (nnz,)
    norms = np.sqrt(np.bincount(row, weights=x.data**2, minlength=x.shape[0]))  # (D,)
    x.data /= norms[row]  # rows left after eliminate_zeros have a positive norm
    return x


def _label_columns(label_sets: Sequence[Iterable[int]], n_labels: int) -> list[np.ndarray]:
    """Positive documents of every label: ``L`` sorted arrays of document indices."""
    docs, labs = [], []
    for d, s in enumerate(label_sets):
        ids = np.fromiter((int(x) for x in s), dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= n_labels):
            bad = int(ids[(ids < 0) | (ids >= n_labels)][0])
            raise ValueError(f"document {d}: label id {bad} out of range for n_labels={n_labels}")
        docs.append(np.full(ids.size, d, dtype=np.int64))
        labs.append(ids)
    docs_all = np.concatenate(docs) if docs else np.zeros(0, np.int64)
    labs_all = np.concatenate(labs) if labs else np.zeros(0, np.int64)
    y = sp.csc_matrix((np.ones(docs_all.size), (docs_all, labs_all)), shape=(len(docs), n_labels))  # (D, L)
    y.sum_duplicates()
    return [y.indices[y.indptr[j] : y.indptr[j + 1]] for j in range(n_labels)]


def _fit_labels(x: sp.csr_matrix, positives: list[tuple[int, np.ndarray]], cfg: dict, dual: bool) -> list[tuple]:
    """Fit one ``LinearSVC`` per label (runs in a worker); returns sparse weights.

    Returns, per label, ``(label, nonzero feature ids (k,), their weights (k,), intercept, converged)``.
    """
    _, LinearSVC, ConvergenceWarning = _sklearn()
    out = []
    y = np.zeros(x.shape[0], dtype=np.int64)  # (D,)
    with warnings.catch_warnings():  # counted and reported once by the caller
        warnings.simplefilter("ignore", ConvergenceWarning)
        for label, pos in positives:
            y[:] = 0
            y[pos] = 1
            svm = LinearSVC(C=cfg["C"], loss=cfg["loss"], dual=dual, tol=cfg["tol"], max_iter=cfg["max_iter"],
                            random_state=cfg["random_state"])
            svm.fit(x, y)
            w = svm.coef_.ravel()  # (F,)
            nz = np.flatnonzero(w)
            converged = bool(svm.n_iter_ < cfg["max_iter"])
            out.append((label, nz.astype(np.int32), w[nz], float(svm.intercept_[0]), converged))
    return out


# --------------------------------------------------------------------------- scores -> outputs
def sets_from_scores(scores: np.ndarray, threshold: float = 0.0) -> list[set[int]]:
    """Predicted label sets: ``{l : scores[d, l] > threshold}`` for every row ``d`` of ``(D, L)`` scores."""
    rows, cols = np.nonzero(np.asarray(scores) > threshold)
    out: list[set[int]] = [set() for _ in range(scores.shape[0])]
    for r, c in zip(rows.tolist(), cols.tolist()):
        out[r].add(c)
    return out


def top_k_from_scores(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best labels of every row of ``(D, L)`` scores, best first, ties to the lower id.

    Returns ``ids (D, k)`` int64 and ``values (D, k)`` float32; labels scored
    ``-inf`` (no classifier) are never returned: id ``-1``, value ``-inf`` there.
    """
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    scores = np.asarray(scores)
    d, n_labels = scores.shape
    kk = min(int(k), n_labels)
    ids = np.full((d, int(k)), -1, dtype=np.int64)  # (D, k)
    vals = np.full((d, int(k)), -np.inf, dtype=np.float32)  # (D, k)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :kk]  # (D, kk) stable: ties keep the lower id first
    top = np.take_along_axis(scores, order, axis=1)  # (D, kk)
    real = top > -np.inf  # -inf marks labels without a classifier
    ids[:, :kk] = np.where(real, order, -1)
    vals[:, :kk] = np.where(real, top, -np.inf)
    return ids, vals


# --------------------------------------------------------------------------- model
class LinearOneVsRest:
    """One linear SVM per label over TF-IDF token features (see the module docstring).

    Parameters
    ----------
    n_features : int
        Vocabulary size F (token ids are ``0 .. F-1``).
    n_labels : int
        Label universe L (label ids are ``0 .. L-1``); labels without a
        training document get no classifier.
    config : LinearConfig, optional
    n_jobs : int
        Worker processes for fitting (joblib); 1 fits in this process.

    Attributes (after :meth:`fit` or :meth:`load`)
    ----------------------------------------------
    coef : csr_matrix, shape (L, F), float64
        Weights ``w_l`` (exact zeros not stored).
    intercept : ndarray, shape (L,), float64
        ``b_l``; ``-inf`` for labels without a classifier.
    idf : ndarray, shape (F,), float64
        Inverse document frequencies; 0 for tokens that are not features.
    info : dict
        What the fit did: documents, features, labels fitted / absent /
        constant, classifiers that hit ``max_iter``, the solver used.
    """

    def __init__(self, n_features: int, n_labels: int, config: LinearConfig | None = None, *, n_jobs: int = 1):
        if int(n_features) < 1 or int(n_labels) < 1:
            raise ValueError(f"n_features and n_labels must be >= 1, got {n_features} and {n_labels}")
        if int(n_jobs) < 1:
            raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
        self.n_features, self.n_labels = int(n_features), int(n_labels)
        self.config = config or LinearConfig()
        self.n_jobs = int(n_jobs)
        self.coef: sp.csr_matrix | None = None
        self.intercept: np.ndarray | None = None
        self.idf: np.ndarray | None = None
        self._coef_t: sp.csr_matrix | None = None  # coef transposed, for scoring
        self.info: dict = {}

    # ---- fitting
    def fit(self, tokens: Sequence, label_sets: Sequence[Iterable[int]],
            progress: Callable[[int, int], None] | None = None) -> "LinearOneVsRest":
        r"""Fit TF-IDF and one SVM per label on the training documents.

        Each label ``l`` with positive and negative documents gets, with
        ``y_d = +1`` where ``d`` carries ``l`` and ``-1`` elsewhere (liblinear,
        the bias ``b`` being one more, regularised, weight on a constant feature 1):

        .. math::

            \min_{w_l, b_l} \ \tfrac12 (\lVert w_l \rVert^2 + b_l^2)
            + C \sum_d \max\bigl(0,\ 1 - y_d (w_l \cdot x_d + b_l)\bigr)^2

        (squared hinge; ``loss="hinge"`` drops the square).

        Parameters
        ----------
        tokens : sequence of D arrays of int, each ``(l_d,)``
            Token ids of the training documents.
        label_sets : sequence of D iterables of int
            Gold label ids of each document, in ``range(n_labels)``.
        progress : callable, optional
            ``progress(done, total)`` after each group of labels (the library never prints).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            No documents, mismatched lengths, no document with a label, ids out of range.
        """
        TfidfTransformer, _, _ = _sklearn()

        n_docs = len(tokens)
        if n_docs == 0:
            raise ValueError("no training documents")
        if len(label_sets) != n_docs:
            raise ValueError(f"tokens has {n_docs} documents but label_sets has {len(label_sets)}")
        positives = _label_columns(label_sets, self.n_labels)  # L arrays of document indices
        n_pos = np.array([p.size for p in positives])  # (L,)
        if not n_pos.any():
            raise ValueError("no training document has a label")
        cfg = self.config
        counts = count_matrix(tokens, self.n_features)  # (D, F)

        # TF-IDF fitted on the training documents; tokens that are not features get idf 0
        idf = TfidfTransformer(sublinear_tf=cfg.sublinear_tf, norm="l2").fit(counts).idf_.astype(np.float64)
        df = np.bincount(counts.indices, minlength=self.n_features)  # (F,)
        idf[df == 0] = 0.0
        idf[[i for i in cfg.ignore_ids if 0 <= i < self.n_features]] = 0.0
        x = tfidf(counts, idf, cfg.sublinear_tf)  # (D, F)
        n_used = int((idf > 0).sum())
        dual = cfg.dual if cfg.dual != "auto" else bool(n_docs < n_used or cfg.loss == "hinge")

        # one binary SVM per label that has both positive and negative documents
        to_fit = [(j, positives[j]) for j in np.flatnonzero((n_pos > 0) & (n_pos < n_docs)).tolist()]
        constant = np.flatnonzero(n_pos == n_docs)  # in every document: always predicted
        intercept = np.full(self.n_labels, -np.inf)  # (L,) no classifier: never predicted
        intercept[constant] = 1.0
        row_nnz = np.zeros(self.n_labels, dtype=np.int64)  # (L,) stored weights per label
        cols, vals, not_converged, done = [], [], 0, 0
        if progress is not None:
            progress(0, len(to_fit))
        for result in self._fit_groups(x, to_fit, dual):  # labels come back in increasing order
            for label, nz, w, b, converged in result:
                row_nnz[label] = nz.size
                cols.append(nz)
                vals.append(w)
                intercept[label] = b
                not_converged += not converged
            done += len(result)
            if progress is not None:
                progress(done, len(to_fit))
        indptr = np.concatenate([[0], np.cumsum(row_nnz)])  # (L + 1,) CSR built directly, rows in label order
        cat = lambda parts, dt: np.concatenate(parts) if parts else np.zeros(0, dt)  # noqa: E731
        self.coef = sp.csr_matrix((cat(vals, np.float64), cat(cols, np.int32), indptr),
                                  shape=(self.n_labels, self.n_features))  # (L, F)
        self.intercept, self.idf, self._coef_t = intercept, idf, None
        self.info = {"n_docs": n_docs, "n_features_used": n_used, "n_labels_fitted": len(to_fit),
                     "n_labels_absent": int((n_pos == 0).sum()), "n_labels_constant": int(constant.size),
                     "n_not_converged": not_converged, "coef_nnz": int(self.coef.nnz),
                     "solver": f"liblinear {'dual' if dual else 'primal'} {cfg.loss}"}
        if not_converged:
            warnings.warn(f"{not_converged} of {len(to_fit)} label classifiers did not converge within "
                          f"max_iter={cfg.max_iter}", stacklevel=2)
        return self

    def _fit_groups(self, x: sp.csr_matrix, to_fit: list, dual: bool):
        """Yield the fitted labels a group at a time, in label order: here, or in ``n_jobs`` processes.

        Worker processes (joblib's loky), not threads: liblinear's random
        generator is one global, so threads would make the fit irreproducible.
        """
        cfg = self.config.to_dict()
        if self.n_jobs == 1:
            for start in range(0, len(to_fit), 32):
                yield _fit_labels(x, to_fit[start : start + 32], cfg, dual)
            return
        from joblib import Parallel, delayed

        size = max(1, min(32, math.ceil(len(to_fit) / (4 * self.n_jobs))))
        groups = [to_fit[i : i + size] for i in range(0, len(to_fit), size)]
        yield from Parallel(n_jobs=self.n_jobs, return_as="generator")(
            delayed(_fit_labels)(x, group, cfg, dual) for group in groups)

    # ---- prediction
    def _check_fitted(self) -> None:
        if self.coef is None:
            raise RuntimeError("the linear model is not fitted; call fit() or load() first")

    def features(self, tokens: Sequence) -> sp.csr_matrix:
        """TF-IDF vectors ``(D, F)`` of documents, with the training idf."""
        self._check_fitted()
        return tfidf(count_matrix(tokens, self.n_features), self.idf, self.config.sublinear_tf)

    def decision_function(self, tokens: Sequence) -> np.ndarray:
        """Scores ``s_{dl} = w_l · x_d + b_l``, shape ``(D, L)`` float32 (``-inf``: no classifier)."""
        x = self.features(tokens)  # (D, F)
        if self._coef_t is None:
            self._coef_t = self.coef.T.tocsr()  # (F, L), kept for the next call
        wt = self._coef_t
        out = np.empty((x.shape[0], self.n_labels), dtype=np.float32)  # (D, L)
        for start in range(0, x.shape[0], DOC_CHUNK):
            block = (x[start : start + DOC_CHUNK] @ wt).toarray()  # (b, L) float64
            out[start : start + DOC_CHUNK] = block + self.intercept  # -inf stays -inf
        return out

    def predict(self, tokens: Sequence, threshold: float = 0.0) -> list[set[int]]:
        """Predicted label sets: every label scored above ``threshold`` (the SVM's rule at 0)."""
        return sets_from_scores(self.decision_function(tokens), threshold)

    def top_k(self, tokens: Sequence, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best-scored labels per document: ``ids (D, k)`` int64, ``scores (D, k)`` float32.

        Best first, ties to the lower id; ``-1`` / ``-inf`` past the labels that have a classifier.
        """
        return top_k_from_scores(self.decision_function(tokens), k)

    # ---- saving (pickle-free)
    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to predict, as plain numpy arrays (no objects)."""
        self._check_fitted()
        cfg = self.config
        return {
            "format": np.array(FORMAT),
            "shape": np.array([self.n_labels, self.n_features], dtype=np.int64),
            "coef_data": self.coef.data, "coef_indices": self.coef.indices, "coef_indptr": self.coef.indptr,
            "intercept": self.intercept, "idf": self.idf,
            "C": np.array(cfg.C, dtype=np.float64), "loss": np.array(cfg.loss), "dual": np.array(str(cfg.dual)),
            "tol": np.array(cfg.tol, dtype=np.float64), "max_iter": np.array(cfg.max_iter, dtype=np.int64),
            "sublinear_tf": np.array(cfg.sublinear_tf), "random_state": np.array(cfg.random_state, dtype=np.int64),
            "ignore_ids": np.array(cfg.ignore_ids, dtype=np.int64),
        }

    @classmethod
    def from_state(cls, state) -> "LinearOneVsRest":
        """Rebuild a fitted model from :meth:`state_dict` (or an opened ``.npz``)."""
        if "format" not in state or str(state["format"]) != FORMAT:
            raise ValueError(f"not a linear one-vs-rest model (expected format {FORMAT!r})")
        n_labels, n_features = (int(v) for v in state["shape"])
        dual = str(state["dual"])
        cfg = LinearConfig(C=float(state["C"]), loss=str(state["loss"]),
                           dual={"True": True, "False": False}.get(dual, dual), tol=float(state["tol"]),
                           max_iter=int(state["max_iter"]), sublinear_tf=bool(state["sublinear_tf"]),
                           ignore_ids=tuple(int(i) for i in state["ignore_ids"]),
                           random_state=int(state["random_state"]))
        model = cls(n_features, n_labels, cfg)
        model.coef = sp.csr_matrix((np.asarray(state["coef_data"], dtype=np.float64), state["coef_indices"],
                                    state["coef_indptr"]), shape=(n_labels, n_features))
        model.intercept = np.asarray(state["intercept"], dtype=np.float64)
        model.idf = np.asarray(state["idf"], dtype=np.float64)
        if model.intercept.shape != (n_labels,) or model.idf.shape != (n_features,):
            raise ValueError("inconsistent linear model state: intercept / idf shapes do not match 'shape'")
        return model

    def save(self, path) -> Path:
        """Write the model to ``path`` (``.npz``, no pickle), atomically."""
        path = Path(path)
        with atomic_write(path, "wb", permissions=0o644) as f:
            np.savez(f, **self.state_dict())
        return path

    @classmethod
    def load(cls, path) -> "LinearOneVsRest":
        """Read a model written by :meth:`save` (``allow_pickle=False``)."""
        with np.load(path, allow_pickle=False) as z:
            return cls.from_state({k: z[k] for k in z.files})

    def __repr__(self) -> str:
        state = f"{self.info.get('n_labels_fitted', '?')} classifiers" if self.coef is not None else "not fitted"
        return f"LinearOneVsRest(F={self.n_features}, L={self.n_labels}, C={self.config.C}, {state})"


__all__ = ["LinearOneVsRest", "LinearConfig", "count_matrix", "tfidf", "sets_from_scores", "top_k_from_scores",
           "PAD_ID", "UNK_ID"]
