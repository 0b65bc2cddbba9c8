"""Shared fixtures, and the two tiers of the suite.

Tiers
-----
``python -m pytest -q`` runs everything; it is what CI runs (``.ci/run``, with
``XMTC_DATA`` set). ``python -m pytest -q -m "not slow"`` is the developer's
quick pass: it leaves out the tests marked ``@pytest.mark.slow`` and still
imports and exercises every package (losses, models, baselines, evaluation,
``xmtc`` config/data/train/reporting) and runs every example script once in
its cheapest form::

    XMTC_DATA=../shared/data python -m pytest -q                  # complete (CI)
    XMTC_DATA=../shared/data python -m pytest -q -m "not slow"    # quick pass

Slow (``@pytest.mark.slow``), each with what keeps its subject in the quick pass:

- preparing EURLEX57K from its archive (test_data_real.py): Reuters and the
  Amazon-670K sample, and the cache-hit check on Reuters;
- training on a Reuters subset through the script (test_examples.py): the
  synthetic runs of every training script;
- starting processes for the test: two DDP ranks on uneven shards
  (test_distributed.py; two ranks on even shards stay), two ranks stopped
  together (test_resume_midepoch.py), the SIGINT variant of a real training
  process stopped by a signal (SIGTERM stays), a script's one-line error from a
  real process (test_examples.py) and ``dataset_stats.py``'s bad name and
  truncated archive in one (test_script_errors.py; the in-process checks and
  one real ``dataset_stats.py`` stay), the linear baseline's fitting workers
  (test_linear.py);
- a resumed script run with a corrupted optimizer or RNG state, and one
  interrupted mid-epoch (test_examples.py): a resume that reaches the
  uninterrupted result there, and test_resume_midepoch.py's stops at each
  position, which are bit-identical only if both states come back;
- a model learning a synthetic task from scratch, one per model
  (test_models_learning.py): test_engine.py's ``fit`` learns and keeps the best epoch;
- the train-step benchmark's whole script (test_train_step_bench.py): its
  timed step, profiler and shapes.

Measured on a 2-core machine while two EURLEX57K trainings kept both cores busy
(load average about 3, ``OMP_NUM_THREADS=1``): complete 223 s, quick 110-127 s
(101 s without ``XMTC_DATA``, the real-data tests skipped). What is left in the
quick pass is spread over many tests of 0.5-3 s; the largest, about 13 s, is
test_two_ranks_match_one_process, the quick pass's only run of DDP with two ranks.

Fixtures
--------
``data_dir``: the real data, ``$XMTC_DATA``. A test that reads real data takes
it and is skipped, with the reason, where the variable is unset or names no
directory; no test names a data path of its own. ``stand_in_data_dir``: a
temporary data directory as ``$XMTC_DATA`` holding a stand-in for the GloVe file
the CPU presets name, for tests that resolve such a config without reading the
vectors. ``load_script``: a repository script as a module. ``one_thread``: torch
on one thread for a module. ``write_axml``: a small AttentionXML-layout dataset.
"""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load_script(path: str):
    """Import a script of the repository (``"examples/train_sgm.py"``) as a module: the scripts are
    not a package, and their ``main`` is guarded, so importing runs nothing. Each call runs the
    script's module code again (no cache). The module is registered in ``sys.modules`` under its
    name, as an import would, which dataclasses and pickling need."""
    file = REPO / path
    name = f"script_{file.parent.name}_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


@pytest.fixture(scope="session")
def load_script():
    """``load_script("examples/benchmark.py")`` -> the script as a module."""
    return _load_script


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``$XMTC_DATA``; the test is skipped where it is unset or not a directory."""
    env = os.environ.get("XMTC_DATA")
    if not env:
        pytest.skip("needs the real data: set XMTC_DATA to the data directory")
    path = Path(env)
    if not path.is_dir():
        pytest.skip(f"XMTC_DATA={env} is not a directory")
    return path


@pytest.fixture
def stand_in_data_dir(tmp_path, monkeypatch) -> Path:
    """A data directory, set as ``$XMTC_DATA``, with a stand-in for the CPU presets' GloVe file.

    Resolving a config only checks that the file exists; nothing here reads the vectors.
    """
    from xmtc.config import preset

    data = tmp_path / "data"
    data.mkdir()
    (data / preset("eurlex57k", variant="cpu").data.embeddings).write_bytes(b"x")
    monkeypatch.setenv("XMTC_DATA", str(data))
    return data


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread while a module runs: tiny models train faster, do not slow down when the
    cores are shared, and sum floats in the same order in every run. Module scope, so that it is in
    force before a module's shared runs; a module takes it with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


AXML_TINY = {"train_texts": ["a b c", "b c", "c d"], "train_labels": ["1 2", "2", "3"],
             "test_texts": ["a z"], "test_labels": ["2 5"]}


def _write_axml(root: Path, folder: str = "Amazon-670K", **files) -> Path:
    """Write ``root/folder/{train,test}_{texts,labels}.txt`` (the AttentionXML layout) and return the folder.

    Each file is given as its lines, or as raw bytes; one not given is :data:`AXML_TINY`'s: three
    training documents, one test document with a label unseen in training (``5``) and a word
    unseen in training (``z``).
    """
    unknown = set(files) - set(AXML_TINY)
    if unknown:
        raise TypeError(f"unknown files {sorted(unknown)}")
    out = root / folder
    out.mkdir(parents=True, exist_ok=True)
    for name, lines in {**AXML_TINY, **files}.items():
        data = lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode()
        (out / f"{name}.txt").write_bytes(data)
    return out


@pytest.fixture(scope="session")
def write_axml():
    """``write_axml(root, folder="Amazon-670K", train_texts=[...], ...)`` -> the dataset folder."""
    return _write_axml
