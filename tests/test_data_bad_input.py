"""Bad input: every case gives a clear error naming the file and line (or a
documented, counted skip), never silently shifted labels. Fixtures are made
here, in tmp_path."""

import io
import json
import tarfile
import warnings

import pytest

from xmtc.data import datasets
from xmtc.data.datasets import DataError


# ----------------------------------------------------------------- AttentionXML layout
# the two test documents of every case below but the first (which gives its own)
TEST_DOCS = {"test_texts": ["a b", "c d"], "test_labels": ["L1", "L2"]}


def load_eurlex(root, **kw):
    return datasets.load("eurlex", root, cache=False, **kw)


def test_axml_good_fixture_and_no_test_leak(write_axml, tmp_path):
    write_axml(tmp_path, "EUR-Lex", train_texts=["a b c", "b c", "c"], train_labels=["L1 L2", "L2", "L3"],
               test_texts=["zzz a", "b"], test_labels=["L9 L1", "L2"])
    ds = load_eurlex(tmp_path)
    assert ds.n_labels == 3 and ds.label_names[:3] == ["L2", "L1", "L3"] and ds.label_names[3] == "L9"
    assert "zzz" not in ds.vocab and ds.test[0].tokens.tolist() == [1, ds.vocab["a"]]
    assert ds.label_counts.tolist() == [2, 1, 1, 0]


def test_line_count_mismatch(write_axml, tmp_path):
    write_axml(tmp_path, "EUR-Lex", train_texts=["a b", "c d", "e"], train_labels=["L1", "L2"], **TEST_DOCS)
    with pytest.raises(DataError, match=r"train_texts\.txt has 3 lines but .*train_labels\.txt has 2"):
        load_eurlex(tmp_path)


def test_empty_document_error_and_counted_skip(write_axml, tmp_path):
    write_axml(tmp_path, "EUR-Lex", train_texts=["a b", "   ", "c"], train_labels=["L1", "L2", "L1"], **TEST_DOCS)
    with pytest.raises(DataError, match=r"train_texts\.txt: line 2 .*empty"):
        load_eurlex(tmp_path)
    with pytest.warns(UserWarning, match="1 empty"):
        ds = load_eurlex(tmp_path, on_empty="skip")
    assert ds.stats()["n_train"] == 2 and ds.meta["skipped"]["train"]["empty"] == 1
    # the documents after the skipped one keep their own labels (nothing shifts)
    assert [ds.label_names[k] for k in ds.train_full[1].labels] == ["L1"]
    assert ds.vocab.decode(ds.train_full[1].tokens) == ["c"]


def test_document_without_labels_counted_skip_or_error(write_axml, tmp_path):
    write_axml(tmp_path, "EUR-Lex", train_texts=["a b", "c d", "e f"], train_labels=["L1", "", "L3"], **TEST_DOCS)
    with pytest.warns(UserWarning, match="skipped 1 document"):
        ds = load_eurlex(tmp_path)
    assert ds.stats()["n_train"] == 2 and ds.meta["skipped"]["train"]["unlabelled"] == 1
    assert ds.train_full[1].id == "train-2" and [ds.label_names[k] for k in ds.train_full[1].labels] == ["L3"]
    with pytest.raises(DataError, match=r"train_texts\.txt: line 2 .*no labels"):
        load_eurlex(tmp_path, on_unlabelled="error")


def test_undecodable_bytes(write_axml, tmp_path):
    write_axml(tmp_path, "EUR-Lex", train_texts=b"a b\nc \xff\xfe d\ne\n", train_labels=["L1", "L2", "L3"], **TEST_DOCS)
    with pytest.raises(DataError, match=r"train_texts\.txt: line 2: undecodable bytes"):
        load_eurlex(tmp_path)


def test_missing_files_name_directory_files_and_release(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        datasets.load("wiki10", tmp_path)
    msg = str(e.value)
    assert str(tmp_path) in msg and "train_texts.txt" in msg and "train_labels.txt" in msg
    assert "github.com/yourh/AttentionXML" in msg
    with pytest.raises(FileNotFoundError, match="reuters21578.tar.gz"):
        datasets.load("reuters", tmp_path)
    with pytest.raises(FileNotFoundError, match="EURLEX57K"):
        datasets.load("eurlex57k", tmp_path)


def test_label_map_file(tmp_path):
    folder = tmp_path / "AmazonCat-13K"
    folder.mkdir()
    for n, s in (("train_texts.txt", "a b\nc\n"), ("train_labels.txt", "1 0\n2\n"),
                 ("test_texts.txt", "a\n"), ("test_labels.txt", "0\n")):
        (folder / n).write_text(s)
    (folder / "Yf.txt").write_bytes("books\ncaf\xe9  music\nhome & garden\n".encode("latin-1"))
    ds = datasets.load("amazoncat", tmp_path, cache=False)
    assert [ds.label_names[k] for k in ds.train_full[0].labels] == ["café music", "books"]


# ----------------------------------------------------------------- EURLEX57K
def eurlex_doc(celex, concepts, body="Some body text."):
    return {"celex_id": celex, "uri": "u", "type": "Regulation", "concepts": concepts, "title": f"Title {celex}",
            "header": "HEADER", "recitals": "Whereas", "main_body": [body, "Article 2"], "attachments": "Done"}


def write_eurlex57k(root, bad=None):
    base = root / "EURLEX57K"
    docs = {"train": [("3A", ["1", "2"]), ("3B", ["2"])], "dev": [("3C", ["2", "7"])], "test": [("3D", ["1", "9"])]}
    for split, lst in docs.items():
        (base / split).mkdir(parents=True)
        for celex, concepts in lst:
            (base / split / f"{celex}.json").write_text(json.dumps(eurlex_doc(celex, concepts), indent=1))
    (base / "EURLEX57K.json").write_text(json.dumps({"1": {"label": "fruit"}, "2": {"label": "import"}}))
    if bad is not None:
        (base / "train" / "3Z.json").write_bytes(bad)
    return base


def tar_folder(folder, archive):
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, arcname=folder.name)
    return archive


def test_eurlex57k_tiny_folder_and_archive_agree(tmp_path):
    base = write_eurlex57k(tmp_path / "f")
    a = datasets.load("eurlex57k", tmp_path / "f", cache=False)
    tar_folder(base, tmp_path / "EURLEX57K.tar.gz")
    b = datasets.load("eurlex57k", tmp_path, cache=False)
    for ds in (a, b):
        assert (len(ds.train), len(ds.valid), len(ds.test)) == (2, 1, 1)
        assert ds.n_labels == 2 and ds.label_names[:2] == ["import", "fruit"] and set(ds.label_names[2:]) == {"7", "9"}
        assert ds.train[0].text.split("\n")[:3] == ["Title 3A", "HEADER", "Whereas"]
        assert "Done" not in ds.train[0].text  # attachments left out
    assert a.vocab.itos == b.vocab.itos


def test_eurlex57k_malformed_json(tmp_path):
    write_eurlex57k(tmp_path, bad=b'{"celex_id": "3Z",\n "concepts": ["1"\n "title": "x"}')
    with pytest.raises(DataError, match=r"train/3Z\.json: line 3 column 2: malformed JSON"):
        datasets.load("eurlex57k", tmp_path, cache=False)


def test_eurlex57k_undecodable_and_missing_fields(tmp_path):
    write_eurlex57k(tmp_path / "a", bad=b'{"celex_id": "3Z",\n "title": "\xff"}')
    with pytest.raises(DataError, match=r"3Z\.json: line 2: undecodable"):
        datasets.load("eurlex57k", tmp_path / "a", cache=False)
    write_eurlex57k(tmp_path / "b", bad=b'{"celex_id": "3Z"}')
    with pytest.raises(DataError, match=r"3Z\.json: .*concepts"):
        datasets.load("eurlex57k", tmp_path / "b", cache=False)


def test_eurlex57k_doc_without_concepts_is_counted(tmp_path):
    write_eurlex57k(tmp_path, bad=json.dumps(eurlex_doc("3Z", [])).encode())
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ds = datasets.load("eurlex57k", tmp_path, cache=False)
    assert ds.meta["skipped"]["train"]["unlabelled"] == 1 and len(ds.train) == 2 and w


def test_truncated_and_wrong_archive(tmp_path):
    base = write_eurlex57k(tmp_path / "src")
    good = tar_folder(base, tmp_path / "good.tar.gz").read_bytes()
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "EURLEX57K.tar.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"t/EURLEX57K\.tar\.gz: not a readable .tar.gz archive"):
        datasets.load("eurlex57k", tmp_path / "t", cache=False)
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "reuters21578.tar.gz").write_bytes(b"this is not an archive at all" * 10)
    with pytest.raises(DataError, match=r"w/reuters21578\.tar\.gz: not a readable"):
        datasets.load("reuters", tmp_path / "w", cache=False)


def test_archive_member_escaping_directory_is_refused(tmp_path):
    archive = tmp_path / "EURLEX57K.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        data = json.dumps(eurlex_doc("3E", ["1"])).encode()
        info = tarfile.TarInfo("EURLEX57K/../../evil/train/3E.json")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    with pytest.raises(DataError, match="unsafe member name"):
        datasets.load("eurlex57k", tmp_path, cache=False)
    assert not (tmp_path.parent / "evil").exists()


# ----------------------------------------------------------------- Reuters SGML
SGM = """<!DOCTYPE lewis SYSTEM "lewis.dtd">
<REUTERS TOPICS="YES" LEWISSPLIT="TRAIN" CGISPLIT="TRAINING-SET" OLDID="1" NEWID="1">
<TOPICS><D>grain</D><D>wheat</D></TOPICS>
<TEXT><TITLE>GRAIN &amp; WHEAT</TITLE><BODY>Wheat prices rose.</BODY></TEXT>
</REUTERS>
<REUTERS TOPICS="YES" LEWISSPLIT="TRAIN" CGISPLIT="TRAINING-SET" OLDID="2" NEWID="2">
<TOPICS><D>rare</D></TOPICS>
<TEXT><TITLE>ONLY IN TRAIN</TITLE><BODY>Rare topic.</BODY></TEXT>
</REUTERS>
<REUTERS TOPICS="NO" LEWISSPLIT="TRAIN" CGISPLIT="TRAINING-SET" OLDID="3" NEWID="3">
<TOPICS></TOPICS><TEXT><TITLE>NOT MODAPTE</TITLE></TEXT>
</REUTERS>
<REUTERS TOPICS="YES" LEWISSPLIT="TEST" CGISPLIT="TRAINING-SET" OLDID="4" NEWID="4">
<TOPICS><D>wheat</D><D>corn</D><D>grain</D></TOPICS>
<TEXT TYPE="BRIEF"><TITLE>Wheat and corn</TITLE></TEXT>
</REUTERS>
"""


def test_reuters_tiny_modapte_from_folder(tmp_path):
    folder = tmp_path / "reuters21578"
    folder.mkdir()
    (folder / "reut2-000.sgm").write_bytes(SGM.encode("latin-1"))
    ds = datasets.load("reuters", tmp_path, cache=False, valid_fraction=0.0)
    # topics with >= 1 train and >= 1 test document: grain, wheat; doc 2 (only 'rare') dropped
    assert sorted(ds.label_names) == ["grain", "wheat"] and ds.stats()["n_train"] == 1
    assert ds.train_full[0].text == "GRAIN & WHEAT\nWheat prices rose."
    assert [ds.label_names[k] for k in ds.test[0].labels] == ["wheat", "grain"]


def test_reuters_download_offline_and_checksum(tmp_path, monkeypatch):
    import urllib.request

    from xmtc.data.datasets import reuters

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(FileNotFoundError, match="offline"):
        datasets.load("reuters", tmp_path, download=True)

    class Fake(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Fake(b"not the archive"))
    with pytest.raises(DataError, match="SHA-256"):
        datasets.load("reuters", tmp_path, download=True)
    assert not (tmp_path / reuters.ARCHIVE).exists() and not list(tmp_path.glob("*.tmp"))
