"""Word vectors: the GloVe reader, the input embedding matrix and the label
embedding matrix (DESIGN.md §2, "Label embeddings").

- :func:`read_glove` reads the GloVe text format (``.txt`` or ``.txt.gz``):
  one ``token v_1 ... v_E`` row per line. Rows are parsed from the right
  (``rsplit(" ", E)``), because ``glove.840B.300d.txt`` has a few tokens that
  contain spaces. A row with too few values, a value that is not a number or
  extra numeric columns is a :class:`~xmtc.data.datasets.base.DataError` naming
  the file and line. An optional ``words`` set keeps only the rows needed.
- :func:`input_embeddings`: ``(len(vocab), E)``; ``<pad>`` row 0 is zero,
  words found in GloVe (exact, else lowercased) get their vector, the others
  (``<unk>`` included) U(-0.1, 0.1), seeded.
- :func:`label_embeddings`: the mean GloVe vector of the words of each label
  name (split on ``_``, ``-`` and whitespace, lowercased), random U(-0.1, 0.1)
  when no word is known; :func:`random_label_embeddings` (100-d) for labels
  that are item ids (Amazon-670K).

Each builder returns the matrix and a :class:`Coverage` report.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xmtc.data.datasets.base import DataError

_LABEL_SPLIT = re.compile(r"[_\-\s]+")
# the values of a row: decimal numbers separated by single spaces (a character-level check, 3x cheaper than parsing)
_VALUES = re.compile(r"[-+.0-9eE]+(?: [-+.0-9eE]+)*")


@dataclass
class GloVe:
    """Word vectors: ``vectors[index[w]]`` is the vector ``(E,)`` of word ``w``."""

    words: list[str]
    vectors: np.ndarray  # (n, E) float32
    path: str = ""

    def __post_init__(self):
        self.index = {w: i for i, w in enumerate(self.words)}

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def get(self, word: str, lower_fallback: bool = True) -> np.ndarray | None:
        i = self.index.get(word)
        if i is None and lower_fallback:
            i = self.index.get(word.lower())
        return None if i is None else self.vectors[i]

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index


@dataclass
class Coverage:
    """How many of ``n_total`` items got a pretrained vector."""

    n_total: int
    n_found: int

    @property
    def fraction(self) -> float:
        return self.n_found / self.n_total if self.n_total else 0.0

    def __str__(self) -> str:
        return f"{self.n_found:,}/{self.n_total:,} ({self.fraction:.1%})"


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def read_glove(path, words: Iterable[str] | None = None, *, dim: int | None = None, lowercase_match: bool = True) -> GloVe:
    """Read GloVe text vectors.

    Parameters
    ----------
    path : path
        ``.txt`` or ``.txt.gz``, UTF-8.
    words : iterable of str, optional
        Keep only these words (and, with ``lowercase_match``, rows whose
        lowercased token is one of them); all rows are still checked: the
        width of every row, and that a skipped row's values are written as
        numbers (kept rows are parsed in full).
    dim : int, optional
        Vector width E; default: from the first row. A first line of two
        integers (word2vec header ``count dim``) is skipped.

    Returns
    -------
    GloVe
        ``vectors`` ``(n, E)`` float32.
    """
    path = Path(path)
    keep = None if words is None else set(words)
    opener = gzip.open if path.name.endswith(".gz") else open
    out_words: list[str] = []
    rows: list[np.ndarray] = []
    try:
        with opener(path, "rb") as fb:
            for lineno, raw in enumerate(fb, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(
                        f"{path}: line {lineno}: undecodable bytes (not UTF-8) at column {exc.start + 1}: {exc.reason}"
                    ) from exc
                line = line.rstrip("\r\n").rstrip(" ")
                if not line:
                    continue
                if dim is None:
                    first = line.split(" ")
                    if lineno == 1 and len(first) == 2 and first[0].isdigit() and first[1].isdigit():
                        dim = int(first[1])  # word2vec header
                        continue
                    dim = len(first) - 1
                    if dim < 1:
                        raise DataError(f"{path}: line {lineno}: a GloVe row needs a token and values")
                parts = line.rsplit(" ", dim)
                if len(parts) != dim + 1 or not parts[0]:
                    raise DataError(
                        f"{path}: line {lineno}: expected a token and {dim} values, found {len(parts) - 1} fields"
                    )
                token = parts[0]
                if " " in token and all(_is_number(p) for p in token.split(" ")[1:]):
                    n = len(token.split(" ")) - 1 + dim
                    raise DataError(f"{path}: line {lineno}: expected {dim} values, found {n} (wrong width)")
                if keep is not None and token not in keep and not (lowercase_match and token.lower() in keep):
                    if not _VALUES.fullmatch(line, len(token) + 1):  # skipped rows are checked too, cheaply;
                        bad = [v for v in parts[1:] if not _is_number(v)]  # exactly only if that fails (nan, inf)
                        if bad:
                            raise DataError(f"{path}: line {lineno}: non-numeric value in vector: {bad[0]!r}")
                    continue
                try:
                    vec = np.array(parts[1:], dtype=np.float32)
                except ValueError as exc:
                    raise DataError(f"{path}: line {lineno}: non-numeric value in vector: {exc}") from exc
                out_words.append(token)
                rows.append(vec)
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read GloVe file: {exc}") from exc
    vectors = np.stack(rows) if rows else np.zeros((0, dim or 0), dtype=np.float32)
    return GloVe(out_words, vectors, str(path))


def input_embeddings(vocab, glove: GloVe | None, *, dim: int | None = None, seed: int = 0,
                     scale: float = 0.1) -> tuple[np.ndarray, Coverage]:
    """Input embedding matrix ``(len(vocab), E)`` float32 and its coverage.

    .. math:: e_w = \\mathrm{GloVe}(w) \\text{ if known, else } e_w \\sim U(-0.1, 0.1);\\quad e_{\\langle pad \\rangle} = 0

    Coverage counts the vocabulary words besides ``<pad>``/``<unk>``.
    """
    itos = vocab.itos if hasattr(vocab, "itos") else list(vocab)
    E = glove.dim if glove is not None else dim
    if E is None:
        raise ValueError("give glove or dim")
    rng = np.random.default_rng(seed)
    mat = rng.uniform(-scale, scale, size=(len(itos), E)).astype(np.float32)  # (V, E)
    found = 0
    if glove is not None:
        for i, w in enumerate(itos[2:], start=2):
            v = glove.get(w)
            if v is not None:
                mat[i] = v
                found += 1
    mat[0] = 0.0
    return mat, Coverage(max(0, len(itos) - 2), found)


def label_words(name: str) -> list[str]:
    """Words of a label name: split on ``_``, ``-`` and whitespace, lowercased."""
    return [w for w in _LABEL_SPLIT.split(name.lower()) if w]


def label_embeddings(label_names: Sequence[str], glove: GloVe, *, seed: int = 0,
                     scale: float = 0.1) -> tuple[np.ndarray, Coverage]:
    """Label embedding matrix ``(L, E)``: mean vector of each label name's words.

    .. math:: E_k = \\frac{1}{|W_k|} \\sum_{w \\in W_k} \\mathrm{GloVe}(w),\\quad
              W_k = \\{\\text{words of name}_k \\text{ found in GloVe}\\}

    A label none of whose words is known gets U(-0.1, 0.1) (seeded).
    Coverage counts the labels with at least one known word.
    """
    rng = np.random.default_rng(seed)
    mat = rng.uniform(-scale, scale, size=(len(label_names), glove.dim)).astype(np.float32)  # (L, E)
    found = 0
    for k, name in enumerate(label_names):
        vecs = [v for v in (glove.get(w) for w in label_words(name)) if v is not None]
        if vecs:
            mat[k] = np.mean(vecs, axis=0)
            found += 1
    return mat, Coverage(len(label_names), found)


def random_label_embeddings(n_labels: int, dim: int = 100, *, seed: int = 0, scale: float = 0.1) -> np.ndarray:
    """Random ``(n_labels, dim)`` U(-0.1, 0.1) label embeddings (labels that are item ids)."""
    return np.random.default_rng(seed).uniform(-scale, scale, size=(n_labels, dim)).astype(np.float32)


def glove_words_for(dataset) -> set[str]:
    """Words worth reading from a GloVe file for ``dataset``: its vocabulary and label-name words."""
    return set(dataset.vocab.itos) | {w for n in dataset.label_names for w in label_words(n)}


def dataset_label_embeddings(dataset, glove: GloVe | None, *, seed: int = 0,
                             random_dim: int = 100) -> tuple[np.ndarray, Coverage]:
    """Label embeddings ``(len(dataset.label_names), E)`` as the paper chose them:
    random ``random_dim``-d for ``amazon670k`` (or when ``glove`` is None),
    else the mean GloVe vector of the label name's words."""
    names = dataset.label_names
    if glove is None or dataset.name == "amazon670k":
        return random_label_embeddings(len(names), random_dim, seed=seed), Coverage(len(names), 0)
    return label_embeddings(names, glove, seed=seed)
