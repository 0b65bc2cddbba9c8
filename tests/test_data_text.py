"""Tokenisers and the vocabulary (xmtc/data/text.py)."""

import numpy as np
import pytest

from xmtc.data.text import PAD, UNK, Vocab, whitespace_tokenize, word_tokenize


def test_word_tokenize_lowercases_and_splits_punctuation():
    assert word_tokenize("Hello, World! It's 2024-01-02.") == ["hello", "world", "it", "s", "2024", "01", "02"]
    assert word_tokenize("") == []


def test_whitespace_tokenize_keeps_tokens_as_they_are():
    assert whitespace_tokenize("  Foo bar\tBAZ,  qux\n") == ["Foo", "bar", "BAZ,", "qux"]


def test_vocab_specials_order_and_cap():
    docs = [["b", "a", "c"], ["a", "b"], ["a", "d"]]
    v = Vocab.build(docs)
    # <pad>, <unk>, then count descending, ties alphabetical
    assert v.itos == ["<pad>", "<unk>", "a", "b", "c", "d"]
    assert v["<pad>"] == PAD == 0 and v["<unk>"] == UNK == 1
    capped = Vocab.build(docs, max_size=4)
    assert capped.itos == ["<pad>", "<unk>", "a", "b"]
    assert capped.encode(["a", "c", "zzz"]).tolist() == [2, UNK, UNK]
    assert capped.encode([]).dtype == np.int32
    assert capped.decode([2, 3, 1]) == ["a", "b", "<unk>"]


def test_vocab_rejects_bad_itos_and_pickles():
    import pickle

    with pytest.raises(ValueError):
        Vocab(["a", "b"])
    v = Vocab.build([["x", "y", "x"]])
    w = pickle.loads(pickle.dumps(v))
    assert w.itos == v.itos and w["x"] == v["x"] == 2
