"""Dataset objects shared by every source, and the preparation pipeline.

A source reader (``reuters.py``, ``eurlex57k.py``, ...) returns :class:`RawSplit`
objects (document ids, texts, label keys in file order, and where each document
came from, for error messages). :func:`prepare` turns them into compact arrays:

1. tokenise every document once (provisional ids from one growing dict);
2. count tokens on the **training split only** and build the vocabulary from
   those counts (so a word seen only in test maps to ``<unk>``);
3. number the labels: labels of the training split first, by training count
   descending, ties by key; then labels seen only in validation / test, by key
   (``docs/contracts.md``, "Label ids");
4. store each split as flat arrays (token ids and label ids concatenated, with
   offsets), which pickle and load in a fraction of a second.

:class:`XMTCDataset` wraps the arrays; where a source has no dev split it holds
out a seeded ``valid_fraction`` of the training split as validation (the
vocabulary, label numbering and label counts stay those of the whole training
split, as ``stats()["n_train"]`` reports; test never contributes).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from xmtc.data.text import (
    DEFAULT_MAX_VOCAB,
    PAD_TOKEN,
    TOKENIZERS,
    UNK,
    UNK_TOKEN,
    Vocab,
)

Progress = Callable[[str, int, "int | None"], None]
"""``progress(stage, done, total)``; library code reports, scripts display."""

PREPARED_VERSION = 1


class DataError(ValueError):
    """Bad input data; the message names the file (and line or member)."""


@dataclass(frozen=True, slots=True)
class Document:
    """One document: ``tokens`` are token ids ``(l,)``, ``labels`` dataset label ids in file order."""

    id: str
    text: str
    tokens: np.ndarray
    labels: tuple[int, ...]


@dataclass
class RawSplit:
    """What a reader returns for one split (before tokenisation)."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    labels: list[list[str]] = field(default_factory=list)
    where: list[str] = field(default_factory=list)  # "file:line" / "archive:member"

    def add(self, doc_id: str, text: str, labels: Sequence[str], where: str) -> None:
        self.ids.append(doc_id)
        self.texts.append(text)
        self.labels.append(list(labels))
        self.where.append(where)

    def __len__(self) -> int:
        return len(self.ids)


# --------------------------------------------------------------------------- splits
class Split:
    """The documents of one split, stored as flat (CSR-like) arrays.

    ``rows`` selects a subset of the stored documents (a view; used for the
    validation hold-out); positions ``0 .. len-1`` index the view.
    """

    def __init__(self, name: str, state: dict, rows: np.ndarray | None = None):
        self.name = name
        self._s = state
        self._rows = rows

    # ---- construction
    @staticmethod
    def build_state(ids, texts, token_arrays, label_arrays) -> dict:
        enc = [t.encode("utf-8") for t in texts]
        text_offsets = np.zeros(len(enc) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in enc], out=text_offsets[1:])
        tok_offsets = np.zeros(len(token_arrays) + 1, dtype=np.int64)
        np.cumsum([len(a) for a in token_arrays], out=tok_offsets[1:])
        lab_offsets = np.zeros(len(label_arrays) + 1, dtype=np.int64)
        np.cumsum([len(a) for a in label_arrays], out=lab_offsets[1:])
        cat = lambda arrs: np.concatenate(arrs).astype(np.int32) if arrs else np.zeros(0, np.int32)  # noqa: E731
        return {
            "ids": list(ids),
            "text": b"".join(enc),
            "text_offsets": text_offsets,
            "tokens": cat(token_arrays),
            "token_offsets": tok_offsets,
            "labels": cat([np.asarray(a, dtype=np.int32) for a in label_arrays]),
            "label_offsets": lab_offsets,
        }

    def subset(self, positions: np.ndarray, name: str | None = None) -> "Split":
        rows = self.rows[np.asarray(positions, dtype=np.int64)]
        return Split(name or self.name, self._s, rows)

    # ---- access
    @property
    def rows(self) -> np.ndarray:
        if self._rows is None:
            return np.arange(len(self._s["ids"]), dtype=np.int64)
        return self._rows

    def __len__(self) -> int:
        return len(self._s["ids"]) if self._rows is None else len(self._rows)

    def _row(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"document {i} out of range for split {self.name!r} of {n}")
        i = i % n if n else i
        return i if self._rows is None else int(self._rows[i])

    def tokens(self, i: int) -> np.ndarray:
        """Token ids ``(l,)`` int32 of document ``i``."""
        r, o = self._row(i), self._s["token_offsets"]
        return self._s["tokens"][o[r] : o[r + 1]]

    def labels(self, i: int) -> np.ndarray:
        """Dataset label ids ``(n,)`` int32 of document ``i``, file order."""
        r, o = self._row(i), self._s["label_offsets"]
        return self._s["labels"][o[r] : o[r + 1]]

    def text(self, i: int) -> str:
        r, o = self._row(i), self._s["text_offsets"]
        return self._s["text"][o[r] : o[r + 1]].decode("utf-8")

    def doc_id(self, i: int) -> str:
        return self._s["ids"][self._row(i)]

    def __getitem__(self, i: int) -> Document:
        return Document(self.doc_id(i), self.text(i), self.tokens(i), tuple(int(x) for x in self.labels(i)))

    def __iter__(self) -> Iterator[Document]:
        for i in range(len(self)):
            yield self[i]

    @property
    def ids(self) -> list[str]:
        return [self._s["ids"][r] for r in self.rows]

    @property
    def lengths(self) -> np.ndarray:
        """Token counts ``(len,)`` int64."""
        o = self._s["token_offsets"]
        return (o[1:] - o[:-1])[self.rows]

    @property
    def n_labels_per_doc(self) -> np.ndarray:
        o = self._s["label_offsets"]
        return (o[1:] - o[:-1])[self.rows]

    def label_sets(self) -> list[set[int]]:
        """Gold label-id sets of every document (for ``evaluation.evaluate``)."""
        return [set(self.labels(i).tolist()) for i in range(len(self))]

    def all_label_ids(self) -> np.ndarray:
        """Label ids of all documents concatenated (for counting)."""
        if self._rows is None:
            return self._s["labels"]
        o = self._s["label_offsets"]
        return np.concatenate([self._s["labels"][o[r] : o[r + 1]] for r in self._rows] or [np.zeros(0, np.int32)])

    def __repr__(self) -> str:
        return f"Split({self.name!r}, {len(self)} documents)"


# --------------------------------------------------------------------------- dataset
class XMTCDataset:
    """A prepared dataset (see ``docs/contracts.md``, "Datasets").

    Attributes
    ----------
    train, valid, test : Split
    train_full : Split
        The whole training split (``train`` + held-out ``valid`` where the
        source has no dev split).
    label_names : list of str
        Readable label names by id; ids ``0 .. n_labels-1`` occur in training.
    label_keys : list of str
        The source's own label identifiers (EUROVOC ids, topic names, ...).
    n_labels : int
        Number of labels that occur in the training split.
    label_counts : ndarray ``(len(label_names),)``
        Training-split document count of every label (0 for test-only labels).
    vocab : Vocab
    max_src_len : int or None
        Tokens per document the loaders keep (the first ones; ``None``: all). Not a
        property of the data: ``xmtc.data.loading.load_data`` sets it from the run's
        ``data.max_src_len``.
    meta : dict
        Source, tokeniser, skipped-document counts, notes.
    """

    def __init__(self, prepared: dict, *, valid_fraction: float = 0.1, seed: int = 0):
        self.name: str = prepared["name"]
        self.vocab = Vocab(prepared["vocab"])
        self.label_keys: list[str] = prepared["label_keys"]
        self.label_names: list[str] = prepared["label_names"]
        self.n_labels: int = int(prepared["n_labels"])
        self.label_counts: np.ndarray = prepared["label_counts"]
        self.meta: dict = prepared["meta"]
        self.max_src_len: int | None = None
        splits = {k: Split(k, v) for k, v in prepared["splits"].items()}
        self.train_full = splits["train"]
        self.test = splits["test"]
        if "valid" in splits:
            self.train, self.valid = splits["train"], splits["valid"]
            self.valid_source = "dev"
        else:
            tr, va = holdout_positions(len(self.train_full), valid_fraction, seed)
            self.train = self.train_full.subset(tr, "train")
            self.valid = self.train_full.subset(va, "valid")
            self.valid_source = f"held out from train ({valid_fraction:.0%}, seed {seed})"

    @property
    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "valid": self.valid, "test": self.test}

    def label_order(self, order: str = "file") -> np.ndarray | None:
        """Rank of every label id for ordering targets, or ``None`` for file order.

        ``"frequency"``: descending training count, ties by label id (stable).
        """
        if order == "file":
            return None
        if order != "frequency":
            raise ValueError(f"label order must be 'file' or 'frequency', got {order!r}")
        perm = np.lexsort((np.arange(len(self.label_counts)), -self.label_counts))
        rank = np.empty_like(perm)
        rank[perm] = np.arange(len(perm))
        return rank

    def stats(self) -> dict:
        from xmtc.data.datasets.stats import compute_stats

        return compute_stats(self)

    def __repr__(self) -> str:
        return (
            f"XMTCDataset({self.name!r}: train={len(self.train)} valid={len(self.valid)} "
            f"test={len(self.test)} labels={self.n_labels}/{len(self.label_names)} vocab={len(self.vocab)})"
        )


def holdout_positions(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(n)`` into (train, valid) positions, each sorted."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {fraction}")
    n_valid = int(round(n * fraction))
    if fraction > 0 and n > 1:
        n_valid = max(1, n_valid)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])


# --------------------------------------------------------------------------- preparation
def prepare(
    name: str,
    raw: dict[str, RawSplit],
    *,
    tokenizer: str = "word",
    max_vocab: int = DEFAULT_MAX_VOCAB,
    label_name_map: dict[str, str] | None = None,
    on_empty: str = "error",
    on_unlabelled: str = "skip",
    meta: dict | None = None,
    progress: Progress | None = None,
) -> dict:
    """Tokenise, build vocabulary and label ids from training data, pack arrays.

    Parameters
    ----------
    raw : dict
        ``{"train": RawSplit, "test": RawSplit}`` and optionally ``"valid"``.
    on_empty : {"error", "skip"}
        A document with no tokens: raise :class:`DataError` naming where it
        came from, or skip it (counted in ``meta["skipped"]``).
    on_unlabelled : {"skip", "error"}
        A document without labels: skipped and counted (default; the
        AttentionXML convention) or an error.
    """
    for opt, val in (("on_empty", on_empty), ("on_unlabelled", on_unlabelled)):
        if val not in ("error", "skip"):
            raise ValueError(f"{opt} must be 'error' or 'skip', got {val!r}")
    tokenize = TOKENIZERS[tokenizer]
    meta = dict(meta or {})
    skipped: dict[str, dict[str, int]] = {}
    order = [s for s in ("train", "valid", "test") if s in raw]
    prov: dict[str, int] = {}  # token -> provisional id (all splits; counts come from train only)
    encoded: dict[str, tuple] = {}
    for split in order:
        rs = raw[split]
        keep_ids, keep_texts, toks, labs = [], [], [], []
        n_empty = n_unlab = 0
        total = len(rs)
        for j in range(total):
            labels = list(dict.fromkeys(rs.labels[j]))  # de-duplicate, keep file order
            if not labels:
                if on_unlabelled == "error":
                    raise DataError(f"{rs.where[j]}: document {rs.ids[j]!r} has no labels")
                n_unlab += 1
                continue
            tokens = tokenize(rs.texts[j])
            if not tokens:
                if on_empty == "error":
                    raise DataError(f"{rs.where[j]}: document {rs.ids[j]!r} is empty (no tokens)")
                n_empty += 1
                continue
            for t in set(tokens).difference(prov):  # new words get the next provisional ids
                prov[t] = len(prov)
            toks.append(np.fromiter(map(prov.__getitem__, tokens), dtype=np.int32, count=len(tokens)))
            labs.append(labels)
            keep_ids.append(rs.ids[j])
            keep_texts.append(rs.texts[j])
            if progress is not None and (j % 2000 == 0 or j == total - 1):
                progress(f"tokenise {split}", j + 1, total)
        if n_empty or n_unlab:
            skipped[split] = {"empty": n_empty, "unlabelled": n_unlab}
            warnings.warn(
                f"{name} {split}: skipped {n_unlab} document(s) without labels and {n_empty} empty document(s)",
                stacklevel=3,
            )
        encoded[split] = (keep_ids, keep_texts, toks, labs)
    if not encoded["train"][0]:
        raise DataError(f"{name}: the training split has no usable documents")

    # vocabulary from the training split only
    train_prov = np.concatenate(encoded["train"][2])
    counts = np.bincount(train_prov, minlength=len(prov))
    itos_prov = list(prov)  # provisional id -> token
    seen = np.flatnonzero(counts)
    ranked = sorted(seen.tolist(), key=lambda i: (-counts[i], itos_prov[i]))[: max(0, max_vocab - 2)]
    remap = np.full(len(prov), UNK, dtype=np.int32)
    remap[np.asarray(ranked, dtype=np.int64)] = np.arange(2, 2 + len(ranked), dtype=np.int32)
    vocab = [PAD_TOKEN, UNK_TOKEN] + [itos_prov[i] for i in ranked]

    # labels: training labels first (count desc, key), then the rest (key)
    train_counts: dict[str, int] = {}
    for labels in encoded["train"][3]:
        for k in labels:
            train_counts[k] = train_counts.get(k, 0) + 1
    train_keys = sorted(train_counts, key=lambda k: (-train_counts[k], k))
    extra = sorted({k for s in order if s != "train" for labels in encoded[s][3] for k in labels} - train_counts.keys())
    label_keys = train_keys + extra
    key_to_id = {k: i for i, k in enumerate(label_keys)}
    label_counts = np.array([train_counts.get(k, 0) for k in label_keys], dtype=np.int64)
    name_map = label_name_map or {}
    label_names = [name_map.get(k, k) for k in label_keys]

    splits = {}
    for split in order:
        ids, texts, toks, labs = encoded[split]
        tok_arrays = [remap[a] for a in toks]
        lab_arrays = [[key_to_id[k] for k in labels] for labels in labs]
        splits[split] = Split.build_state(ids, texts, tok_arrays, lab_arrays)
    meta.update(skipped=skipped, tokenizer=tokenizer, max_vocab=max_vocab)
    return {
        "version": PREPARED_VERSION,
        "name": name,
        "splits": splits,
        "vocab": vocab,
        "label_keys": label_keys,
        "label_names": label_names,
        "n_labels": len(train_keys),
        "label_counts": label_counts,
        "meta": meta,
    }
