"""Shared fixtures: where the real data lives.

Tests that read real data take the ``data_dir`` fixture. It is ``$XMTC_DATA``
when set (CI sets it to ``../shared/data``), else ``../shared/data`` beside the
checkout; a test is skipped, with the reason, only where the data is absent.
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    env = os.environ.get("XMTC_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = _data_dir()
    if not path.is_dir():
        pytest.skip(f"real data directory {path} not found (set XMTC_DATA)")
    return path
