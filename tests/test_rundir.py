"""The run directory's I/O (xmtc/train/rundir.py) and the one atomic writer (evaluation.atomic_write).

Checked on values: a write that fails half-way leaves the old file byte for
byte and no temporary behind; the permissions asked for are the file's;
``update_metrics`` keeps every other key and refuses an unfinished run;
``read_predictions`` reads what ``write_predictions`` wrote (plain and gzip)
and names the file and line of a bad row.
"""

from __future__ import annotations

import gzip
import json
import stat

import pytest

from evaluation import atomic_write
from xmtc.data.datasets.base import RawSplit, XMTCDataset, prepare
from xmtc.train import rundir


def test_atomic_write_is_all_or_nothing(tmp_path):
    path = tmp_path / "sub" / "f.json"
    with atomic_write(path) as f:
        f.write("old")
    assert path.read_text() == "old"
    with pytest.raises(RuntimeError):
        with atomic_write(path) as f:
            f.write("half of the new")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.json"]  # no temporary left
    with atomic_write(path, "wb", permissions=0o644) as f:
        f.write(b"new")
    assert path.read_bytes() == b"new" and stat.S_IMODE(path.stat().st_mode) == 0o644
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(path, "a"):
            pass


def _tiny():
    tr, te = RawSplit(), RawSplit()
    tr.add("t0", "w x", ["a", "b"], "mem:0")
    tr.add("t1", "x y", ["b"], "mem:1")
    te.add("s0", "w", ["a", "c"], "mem:2")
    te.add("s1", "y", ["b"], "mem:3")
    return XMTCDataset(prepare("tiny", {"train": tr, "test": te}), valid_fraction=0.0)


def test_predictions_round_trip_plain_and_gzip(tmp_path):
    ds = _tiny()
    path = rundir.write_predictions(tmp_path, ds.test, [{ds.label_names.index("a")}, set()], ds.label_names)
    rows = rundir.read_predictions(tmp_path)
    assert rows == [("s0", {"a", "c"}, {"a"}), ("s1", {"b"}, set())]
    gz = tmp_path / "p.tsv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert rundir.read_predictions(gz) == rows


def test_bad_predictions_name_the_file_and_line(tmp_path):
    bad = tmp_path / "predictions.tsv"
    bad.write_text("doc_id\tgold\tpredicted\nd1\ta\n")
    with pytest.raises(ValueError, match=r"predictions.tsv:2: expected 3 tab-separated fields, got 2"):
        rundir.read_predictions(tmp_path)
    bad.write_text("id\tgold\n")
    with pytest.raises(ValueError, match="expected the header doc_id, gold, predicted"):
        rundir.read_predictions(bad)
    with pytest.raises(FileNotFoundError, match="no predictions.tsv"):
        rundir.read_predictions(tmp_path / "nowhere")


def test_update_metrics_keeps_the_rest_and_refuses_an_unfinished_run(tmp_path):
    rundir.write_metrics(tmp_path, [{"epoch": 1}], {"epoch": 1, "micro_f1": 0.5})
    with pytest.raises(ValueError, match="has not finished"):
        rundir.update_metrics(tmp_path, calibrated={"tau": 0.3})
    rundir.write_metrics(tmp_path, [{"epoch": 1}], {"epoch": 1, "micro_f1": 0.5}, {"micro_f1": 0.4},
                         {"train_time_s": 3.0})
    before = rundir.read_metrics(tmp_path)
    rundir.update_metrics(tmp_path, calibrated={"tau": 0.3})
    after = rundir.read_metrics(tmp_path / "metrics.json")
    assert after == {**before, "calibrated": {"tau": 0.3}}


def test_read_json_errors_are_one_line(tmp_path):
    (tmp_path / "metrics.json").write_text("{broken")
    with pytest.raises(ValueError, match=r"metrics.json is not valid JSON \(.*line 1 column 2"):
        rundir.read_metrics(tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="expected a JSON object, got list"):
        rundir.read_metrics(tmp_path)
