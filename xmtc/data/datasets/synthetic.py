"""A seeded synthetic XMTC dataset with a planted, learnable label structure.

Generative story (all draws from ``numpy.random.default_rng(seed)``):

- ``n_labels`` labels, grouped into clusters of ``cluster_size`` that tend to
  co-occur; label popularity follows a Zipf-like law (a long tail, as in XMTC);
- each label owns ``words_per_label`` characteristic pseudo-words;
- a document draws ``k`` labels (``1 <= k <= max_labels``, geometric-like): the
  first by popularity, each further one from the same cluster with probability
  ``co_occurrence``, else by popularity;
- its text is ``doc_len`` words: every label contributes one of its words for
  sure, then each position is, with probability ``signal``, a word of one of
  its labels, else a background word (Zipf over ``n_noise_words``).

So a label is recoverable from the text (its words occur only with it), label
sets vary in size and labels co-occur. The whole thing is generated and
prepared in well under a second at the default size; it is never cached.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xmtc.data.datasets.base import RawSplit, prepare

DEFAULTS = dict(
    n_docs=2000,  # training documents (before the validation hold-out)
    n_test=None,  # default n_docs // 4
    n_labels=40,
    cluster_size=4,
    words_per_label=4,
    n_noise_words=400,
    doc_len=(20, 60),
    max_labels=6,
    mean_labels=2.5,
    co_occurrence=0.7,
    signal=0.4,
    seed=0,
)

_CONS = "bdfgklmnprstvz"
_VOW = "aeiou"


def _pseudo_word(i: int) -> str:
    """Deterministic pronounceable word for index ``i`` (3 syllables, unique)."""
    syl = [c + v for c in _CONS for v in _VOW]  # 70 syllables
    n = len(syl)
    return syl[i % n] + syl[(i // n) % n] + syl[(i // (n * n)) % n]


def resolve(name, data_dir: Path, options: dict):
    opts = dict(DEFAULTS)
    unknown = set(options) - set(DEFAULTS) - {"max_vocab"}
    if unknown:
        raise TypeError(f"synthetic: unknown option(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    opts.update(options)
    if opts["n_test"] is None:
        opts["n_test"] = max(1, opts["n_docs"] // 4)
    return [], opts


def build(name, data_dir, paths, opts, progress=None) -> dict:
    o = opts
    rng = np.random.default_rng(o["seed"])
    L, wpl = int(o["n_labels"]), int(o["words_per_label"])
    if L < 1 or o["n_docs"] < 1:
        raise ValueError("synthetic: n_labels and n_docs must be >= 1")
    # words: the first L * wpl are label words, then noise words
    label_words = np.arange(L * wpl).reshape(L, wpl)
    noise_ids = np.arange(L * wpl, L * wpl + int(o["n_noise_words"]))
    words = [_pseudo_word(i) for i in range(L * wpl + int(o["n_noise_words"]))]
    popularity = 1.0 / np.arange(1, L + 1) ** 0.8
    popularity = popularity[rng.permutation(L)]
    popularity /= popularity.sum()
    noise_p = 1.0 / np.arange(1, len(noise_ids) + 1)
    noise_p /= noise_p.sum()
    cluster = np.arange(L) // int(o["cluster_size"])
    members = [np.flatnonzero(cluster == c) for c in range(cluster.max() + 1)]
    names = [f"label_{k:03d}_{words[label_words[k, 0]]}" for k in range(L)]
    lo, hi = o["doc_len"]
    p_more = 1.0 - 1.0 / max(1.0, float(o["mean_labels"]))

    def doc(i: int) -> tuple[str, list[str]]:
        k = 1
        while k < o["max_labels"] and rng.random() < p_more:
            k += 1
        labs = [int(rng.choice(L, p=popularity))]
        while len(labs) < min(k, L):
            if rng.random() < o["co_occurrence"]:
                cand = int(rng.choice(members[cluster[labs[-1]]]))
            else:
                cand = int(rng.choice(L, p=popularity))
            if cand not in labs:
                labs.append(cand)
            elif len(members[cluster[labs[-1]]]) <= len(labs):  # cluster exhausted
                cand = int(rng.choice(L, p=popularity))
                if cand not in labs:
                    labs.append(cand)
        n = int(rng.integers(lo, hi + 1))
        sig = rng.random(n) < o["signal"]
        which = rng.integers(0, len(labs), n)
        lw = label_words[np.asarray(labs)[which], rng.integers(0, wpl, n)]
        nw = rng.choice(noise_ids, size=n, p=noise_p)
        toks = np.where(sig, lw, nw)
        sure = label_words[np.asarray(labs), rng.integers(0, wpl, len(labs))]
        toks = np.concatenate([sure, toks])
        rng.shuffle(toks)
        return " ".join(words[t] for t in toks), [names[x] for x in labs]

    raw = {}
    for split, n in (("train", int(o["n_docs"])), ("test", int(o["n_test"]))):
        rs = RawSplit()
        for i in range(n):
            text, labs = doc(i)
            rs.add(f"{split}-{i}", text, labs, f"synthetic {split} document {i}")
        raw[split] = rs
    meta = {"source": "synthetic", "options": {k: v for k, v in o.items()}}
    return prepare(
        name, raw, tokenizer="word", max_vocab=int(o.get("max_vocab", 500_000)), meta=meta, progress=progress
    )
