"""Tokenisation and the token vocabulary.

Two tokenisers, as the data comes in two forms:

- raw text (EURLEX57K, Reuters-21578, ``*_raw_texts.txt``): lowercased word
  tokens, ``\\w+`` runs of letters and digits (:func:`word_tokenize`);
- pre-tokenised AttentionXML texts (``*_texts.txt``): whitespace split, the
  tokens kept as they are (:func:`whitespace_tokenize`).

The vocabulary (:class:`Vocab`) is built from the training split only, most
frequent first with ties broken alphabetically, capped at ``max_size`` entries
(500,000 in the paper) including the two specials ``<pad>`` = 0 and
``<unk>`` = 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

PAD, UNK = 0, 1
PAD_TOKEN, UNK_TOKEN = "<pad>", "<unk>"
DEFAULT_MAX_VOCAB = 500_000

_WORD = re.compile(r"\w+")


def word_tokenize(text: str) -> list[str]:
    """Lowercased word tokens of raw text (runs of letters, digits, ``_``)."""
    return _WORD.findall(text.lower())


def whitespace_tokenize(text: str) -> list[str]:
    """Tokens of pre-tokenised text: split on whitespace, nothing else."""
    return text.split()


TOKENIZERS = {"word": word_tokenize, "whitespace": whitespace_tokenize}


class Vocab:
    """Token <-> id mapping with ``<pad>`` = 0 and ``<unk>`` = 1.

    Parameters
    ----------
    itos : sequence of str
        Tokens by id; ``itos[0]`` must be ``<pad>`` and ``itos[1]`` ``<unk>``.
    """

    def __init__(self, itos: Sequence[str]):
        if len(itos) < 2 or itos[0] != PAD_TOKEN or itos[1] != UNK_TOKEN:
            raise ValueError("a Vocab starts with '<pad>', '<unk>'")
        self.itos = list(itos)
        self._stoi: dict[str, int] | None = None

    @property
    def stoi(self) -> dict[str, int]:
        if self._stoi is None:
            self._stoi = {t: i for i, t in enumerate(self.itos)}
        return self._stoi

    @classmethod
    def build(
        cls,
        documents: Iterable[Iterable[str]],
        max_size: int = DEFAULT_MAX_VOCAB,
        min_freq: int = 1,
    ) -> "Vocab":
        """Vocabulary of the given (training) token lists.

        Tokens are ranked by count (descending), ties alphabetically; at most
        ``max_size`` entries including the two specials.
        """
        counts: dict[str, int] = {}
        for tokens in documents:
            for t in tokens:
                counts[t] = counts.get(t, 0) + 1
        return cls.from_counts(counts, max_size=max_size, min_freq=min_freq)

    @classmethod
    def from_counts(
        cls, counts: dict[str, int], max_size: int = DEFAULT_MAX_VOCAB, min_freq: int = 1
    ) -> "Vocab":
        if max_size < 2:
            raise ValueError(f"max_size must be >= 2 (the specials), got {max_size}")
        kept = [(t, c) for t, c in counts.items() if c >= min_freq and t not in (PAD_TOKEN, UNK_TOKEN)]
        kept.sort(key=lambda tc: (-tc[1], tc[0]))
        return cls([PAD_TOKEN, UNK_TOKEN] + [t for t, _ in kept[: max_size - 2]])

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        return self.stoi.get(token, UNK)

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """Token ids ``(l,)`` int32; unknown tokens map to ``<unk>``."""
        stoi = self.stoi
        return np.fromiter((stoi.get(t, UNK) for t in tokens), dtype=np.int32)

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[int(i)] for i in ids]

    def __getstate__(self):
        return {"itos": self.itos}

    def __setstate__(self, state):
        self.itos = state["itos"]
        self._stoi = None

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)})"
