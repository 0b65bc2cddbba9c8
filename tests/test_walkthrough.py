"""The walkthrough runs, docs/walkthrough.md is its current rendering, and its code references resolve.

``examples/walkthrough.py`` is the single source: ``docs/walkthrough.md`` is
generated from it (``python examples/walkthrough.py --markdown
docs/walkthrough.md``). References to the implementation are written
``path.py::name`` (``name`` may be dotted, e.g. ``Decoder.decode``); each one
is resolved by importing the module and getting the attribute, so renaming a
function without updating the walkthrough fails here.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "examples" / "walkthrough.py"
DOC = REPO / "docs" / "walkthrough.md"

CODE_REF = re.compile(r"([A-Za-z_][\w/]*\.py)::([A-Za-z_][\w.]*)")
FILE_REF = re.compile(r"`((?:examples|losses|models|xmtc|baselines|evaluation|docs|tests)/[\w/.]+\.(?:py|md))`")
OUTPUT_BLOCK = re.compile(r"\nOutput:\n\n```text\n.*?\n```\n", re.S)
REGENERATE = "python examples/walkthrough.py --markdown docs/walkthrough.md"


def code_refs(*paths: Path) -> list[tuple[str, str]]:
    refs = set()
    for path in paths:
        refs.update(CODE_REF.findall(path.read_text(encoding="utf-8")))
    return sorted(refs)


def resolve(path: str, name: str):
    """Import the module of ``path`` (a package module, or a script by file) and get ``name``."""
    file = REPO / path
    assert file.is_file(), f"{path} does not exist"
    parts = Path(path).with_suffix("").parts
    if (REPO / parts[0] / "__init__.py").is_file():
        module_name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        obj = importlib.import_module(module_name)
    else:  # a script such as examples/*.py: import it by path (its main is guarded)
        spec = importlib.util.spec_from_file_location(f"_ref_{parts[-1]}", file)
        obj = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(obj)
    for attr in name.split("."):
        assert hasattr(obj, attr), f"{path}::{name}: {attr!r} not found"
        obj = getattr(obj, attr)
    return obj


def test_walkthrough_runs_and_docs_are_current(tmp_path):
    """Run the whole walkthrough (its asserts included) and render it; the page must match, outputs aside."""
    rendered = tmp_path / "walkthrough.md"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--markdown", str(rendered)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"walkthrough failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert DOC.is_file(), f"docs/walkthrough.md is missing: {REGENERATE}"
    fresh = OUTPUT_BLOCK.sub("\n", rendered.read_text(encoding="utf-8"))
    stored = OUTPUT_BLOCK.sub("\n", DOC.read_text(encoding="utf-8"))
    assert fresh == stored, f"docs/walkthrough.md is out of date with examples/walkthrough.py: {REGENERATE}"
    assert "Output:" in DOC.read_text(encoding="utf-8"), "the page should show the cells' outputs"


def test_there_are_code_references():
    refs = code_refs(SCRIPT, DOC)
    assert len(refs) >= 15, refs
    # every paper step points at its implementation
    for must in ("losses/matching.py", "losses/ipot.py", "losses/set_loss.py", "models/lightconv.py",
                 "models/decoder.py", "losses/sequence.py"):
        assert any(p == must for p, _ in refs), f"no reference into {must}"


@pytest.mark.parametrize("path,name", code_refs(SCRIPT, DOC), ids=lambda v: str(v))
def test_code_reference_resolves(path, name):
    obj = resolve(path, name)
    assert callable(obj) or isinstance(obj, type), f"{path}::{name} is not a function or class"


def test_file_references_exist():
    text = SCRIPT.read_text(encoding="utf-8") + DOC.read_text(encoding="utf-8")
    files = set(FILE_REF.findall(text))
    assert files
    missing = sorted(f for f in files if not (REPO / f).is_file())
    assert not missing, f"referenced files that do not exist: {missing}"


def test_paper_equations_are_covered():
    """Every numbered equation of the paper (1-17) is named, alone or in a range such as Eq. 4-6."""
    text = SCRIPT.read_text(encoding="utf-8")
    seen = set()
    for a, b in re.findall(r"Eq\. (\d+)(?:-(\d+))?", text):
        seen.update(range(int(a), int(b or a) + 1))
    assert set(range(1, 18)) <= seen, f"equations not covered: {sorted(set(range(1, 18)) - seen)}"
