"""GloVe reading and the embedding matrices (xmtc/data/embeddings.py)."""

import gzip

import numpy as np
import pytest

from xmtc.data.datasets import DataError
from xmtc.data.embeddings import (
    GloVe,
    dataset_label_embeddings,
    input_embeddings,
    label_embeddings,
    label_words,
    random_label_embeddings,
    read_glove,
)
from xmtc.data.text import Vocab

ROWS = [
    "the 0.1 0.2 0.3",
    "import 1.0 0.0 -1.0",
    "fruit 0.0 2.0 4.0",
    ". . . 0.5 0.5 0.5",  # 840B-style token containing spaces
    "at name@domain.com 1 2 3",
]


def write(path, rows, gz=False):
    data = ("\n".join(rows) + "\n").encode()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_read_glove_parses_from_the_right(tmp_path, gz):
    p = write(tmp_path / ("v.txt.gz" if gz else "v.txt"), ROWS, gz)
    g = read_glove(p)
    assert g.dim == 3 and len(g) == 5 and g.vectors.dtype == np.float32
    assert g.words[3] == ". . ." and np.allclose(g.get(". . ."), [0.5, 0.5, 0.5])
    assert g.words[4] == "at name@domain.com" and np.allclose(g.get("at name@domain.com"), [1, 2, 3])
    assert np.allclose(g.get("import"), [1, 0, -1])
    assert np.allclose(g.get("Import"), [1, 0, -1])  # lowercase fallback
    sub = read_glove(p, words={"fruit", "zzz"})
    assert sub.words == ["fruit"]


def test_read_glove_wrong_width_names_file_and_line(tmp_path):
    p = write(tmp_path / "short.txt", ROWS[:2] + ["fruit 0.0 2.0"])
    with pytest.raises(DataError, match=r"short\.txt: line 3: expected a token and 3 values"):
        read_glove(p)
    p = write(tmp_path / "long.txt", ROWS[:2] + ["fruit 0.0 2.0 4.0 5.0"])
    with pytest.raises(DataError, match=r"long\.txt: line 3: expected 3 values, found 4"):
        read_glove(p)
    p = write(tmp_path / "nan.txt", ROWS[:2] + ["fruit 0.0 x 4.0"])
    with pytest.raises(DataError, match=r"nan\.txt: line 3: non-numeric"):
        read_glove(p)
    p = write(tmp_path / "dim.txt", ROWS)
    with pytest.raises(DataError, match=r"dim\.txt: line 1"):
        read_glove(p, dim=4)


@pytest.mark.parametrize("gz", [False, True])
def test_read_glove_words_filter_still_checks_every_row(tmp_path, gz):
    # a text file that is not GloVe: rows of four words parse as "token + 3 values" by width
    prose = ["the quick brown fox", "jumps over a dog", "and then it sleeps"]
    p = write(tmp_path / ("prose.txt.gz" if gz else "prose.txt"), prose, gz)
    with pytest.raises(DataError, match=r"prose\.txt(\.gz)?: line 1: non-numeric value in vector: 'quick'"):
        read_glove(p, words={"wheat"})
    p = write(tmp_path / "late.txt", ROWS[:3] + ["dog 0.1 two 0.3"] + ROWS[3:])  # a bad row the filter skips
    with pytest.raises(DataError, match=r"late\.txt: line 4: non-numeric value in vector: 'two'"):
        read_glove(p, words={"fruit"})
    p = write(tmp_path / "odd.txt", ROWS + ["inf nan -inf 1e-3", "x -1.5E+2 +.5 7."])  # numbers that float() takes
    assert read_glove(p, words={"fruit"}).words == ["fruit"]
    assert len(read_glove(p)) == len(ROWS) + 2


def test_read_glove_undecodable(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"the 0.1 0.2 0.3\ncaf\xe9 1 2 3\n")
    with pytest.raises(DataError, match=r"bad\.txt: line 2: undecodable"):
        read_glove(p)


def test_input_embeddings_pad_zero_known_copied_oov_uniform(tmp_path):
    g = read_glove(write(tmp_path / "v.txt", ROWS))
    vocab = Vocab(["<pad>", "<unk>", "the", "fruit", "zzz", "qqq"])
    m, cov = input_embeddings(vocab, g, seed=0)
    assert m.shape == (6, 3) and m.dtype == np.float32
    assert (m[0] == 0).all()
    assert np.allclose(m[2], [0.1, 0.2, 0.3]) and np.allclose(m[3], [0, 2, 4])
    assert (np.abs(m[[1, 4, 5]]) <= 0.1).all() and not np.allclose(m[4], m[5])
    assert (cov.n_total, cov.n_found) == (4, 2) and cov.fraction == 0.5
    m2, _ = input_embeddings(vocab, g, seed=0)
    assert np.array_equal(m, m2)  # seeded


def test_label_embeddings_mean_of_name_words():
    g = GloVe(["import", "fruit", "tax"], np.array([[1, 0, -1], [0, 2, 4], [3, 3, 3]], dtype=np.float32))
    assert label_words("Fruit_import-tax  policy") == ["fruit", "import", "tax", "policy"]
    names = ["import fruit", "fruit-tax_policy", "nothing known", "Tax"]
    m, cov = label_embeddings(names, g, seed=1)
    assert np.allclose(m[0], [0.5, 1.0, 1.5])
    assert np.allclose(m[1], [1.5, 2.5, 3.5])  # 'policy' unknown: mean of the known words
    assert (np.abs(m[2]) <= 0.1).all()  # random
    assert np.allclose(m[3], [3, 3, 3])
    assert (cov.n_total, cov.n_found) == (4, 3)


def test_random_label_embeddings_for_item_ids():
    class DS:
        name = "amazon670k"
        label_names = ["12", "34", "56"]

    g = GloVe(["12"], np.ones((1, 3), np.float32))
    m, cov = dataset_label_embeddings(DS(), g)
    assert m.shape == (3, 100) and cov.n_found == 0 and (np.abs(m) <= 0.1).all()
    assert np.array_equal(random_label_embeddings(3, seed=0), random_label_embeddings(3, seed=0))


def test_real_glove_subset(data_dir):
    path = data_dir / "glove.6B.50d.subset.txt.gz"
    if not path.exists():
        pytest.skip("GloVe subset not in the data directory")
    g = read_glove(path, words={"the", "wheat", "grain", "zzzqqq"})
    assert g.dim == 50 and set(g.words) == {"the", "wheat", "grain"}
