"""Shared fixtures: where the real data lives, and the repository's scripts as modules.

Tests that read real data take the ``data_dir`` fixture. It is ``$XMTC_DATA``
when set (CI sets it to ``../shared/data``), else ``../shared/data`` beside the
checkout; a test is skipped, with the reason, only where the data is absent.
"""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    env = os.environ.get("XMTC_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


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
    path = _data_dir()
    if not path.is_dir():
        pytest.skip(f"real data directory {path} not found (set XMTC_DATA)")
    return path
