"""The README is a short user guide whose commands agree with each other and with the repository.

Checked without running anything (milliseconds): its length, the citation and
links, that every run directory a command reads is one a command writes, that
every ``--data NAME`` is a dataset the scripts know, that every relative link
in README.md and docs/*.md resolves, and that the headline table quotes the
committed seed-0 records.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from evaluation.significance import seed_summary
from xmtc.config import DATASETS

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MAX_LINES = 250


def _text(path: Path | None = None) -> str:
    return (path or README).read_text(encoding="utf-8")


def _commands(text: str) -> list[list[str]]:
    """The shell commands of a Markdown text, as argument lists (environment assignments dropped).

    Commands are the lines of fenced ``bash`` blocks (continuations joined,
    comments cut) and inline code spans that start with ``python`` or ``torchrun``.
    """
    lines: list[str] = []
    for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, flags=re.S):
        lines += block.replace("\\\n", " ").splitlines()
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    lines += [s for s in re.findall(r"`([^`\n]+)`", prose) if re.match(r"(\w+=\S+\s+)*(python|torchrun)\b", s)]
    out = []
    for line in lines:
        args = shlex.split(line, comments=True)
        while args and re.match(r"^[A-Za-z_]\w*=", args[0]):  # XMTC_DATA=... python ...
            args.pop(0)
        if args and args[0] in ("python", "python3", "torchrun"):
            out.append(args)
    return out


def _option(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def _script(args: list[str]) -> str:
    return next((Path(a).name for a in args if a.endswith(".py")), "")


def _positional_after_script(args: list[str], skip: int = 0) -> str | None:
    """The first positional argument after the script (after ``skip`` sub-command words).

    The README writes the run directory right after the script, before options that take values.
    """
    i = next(i for i, a in enumerate(args) if a.endswith(".py")) + 1 + skip
    return next((a for a in args[i:] if not a.startswith("-")), None)


def _norm(run: str) -> str:
    run = run.rstrip("/")
    return run[: -len("/config.json")] if run.endswith("/config.json") else run


def test_readme_is_short():
    n = len(_text().splitlines())
    assert n <= MAX_LINES, f"README.md has {n} lines; the guide keeps at most {MAX_LINES} (details go to docs/)"


def test_readme_cites_the_paper_and_links_the_code():
    text = _text()
    entry = re.search(r"@inproceedings\{[\w-]+,(.*?)\n\}", text, flags=re.S)
    assert entry, "no BibTeX @inproceedings entry"
    for field in ("title", "author", "booktitle", "year", "url"):
        assert re.search(rf"\b{field}\s*=", entry.group(1)), f"BibTeX entry lacks {field}"
    assert "Cao, Jie and Zhang, Yin" in entry.group(1)
    assert "https://aclanthology.org/2022.emnlp-main.354" in text
    assert "https://github.com/caojie54/OTSeq2Set" in text


def test_commands_are_found():
    """The parser sees the README's commands (a check of the checks below)."""
    cmds = _commands(_text())
    scripts = {_script(c) for c in cmds}
    assert {"train_otseq2set.py", "evaluate.py", "predict.py", "plots.py"} <= scripts, scripts
    assert any("--resume" in c for c in cmds)


def test_every_run_directory_read_is_written():
    cmds = _commands(_text())
    written = {_norm(_option(c, "--out")) for c in cmds if _option(c, "--out") and "--resume" not in c}
    read: list[tuple[str, str]] = []
    for c in cmds:
        script = _script(c)
        if script in ("evaluate.py", "predict.py"):
            read.append((script, _positional_after_script(c)))
        elif script == "plots.py" and "run" in c:
            read.append((script, _positional_after_script(c, skip=1)))
        if "--resume" in c:
            read.append(("--resume", _option(c, "--out")))
        if _option(c, "--config"):
            read.append(("--config", _option(c, "--config")))
    assert read, "no command reads a run directory"
    for how, run in read:
        assert run is not None, f"{how}: no run directory in a README command"
        assert _norm(run) in written, (
            f"README: {how} reads {run}, which no README command writes with --out (written: {sorted(written)})")


def test_every_data_name_is_a_known_dataset():
    text = _text()
    names = set(re.findall(r"--data(?:\s+|=)([A-Za-z0-9_]+)", text))
    for c in _commands(text):  # --data takes several names in dataset_stats.py
        if "--data" in c:
            i = c.index("--data") + 1
            while i < len(c) and not c[i].startswith("-"):
                names.add(c[i])
                i += 1
    names = {n for n in names if not n.isupper()}  # metavariables such as NAME
    assert names, "no --data NAME in the README"
    unknown = sorted(names - set(DATASETS))
    assert not unknown, f"README uses --data {unknown}, not in xmtc.config.DATASETS {DATASETS}"


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return s.replace(" ", "-")


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    text = re.sub(r"```.*?```", "", _text(path), flags=re.S)
    anchors = {_slug(h) for h in re.findall(r"^#+\s+(.*)$", text, flags=re.M)}
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        if not file:
            assert anchor in anchors, f"{path.name}: link #{anchor} names no heading of the page"
            continue
        assert (path.parent / file).exists(), f"{path.name}: link {target} points at no file"


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_reference_to_a_file_outside_the_repository(path):
    assert "DESIGN.md" not in _text(path), f"{path.name} cites DESIGN.md, which is not in the repository"


def test_headline_table_quotes_the_records():
    # a cell "65.44" is the seed-0 record; "83.73 ± 0.57" the mean ± sample std of every committed seed
    rows = {"OTSeq2Set": "otseq2set", "MLC2Seq": "mlc2seq", "Seq2Seq": "seq2seq", "SGM": "sgm",
            "linear one-vs-rest, TF-IDF (`examples/train_linear.py`)": "linear"}
    text = _text()
    header = re.search(r"^\| model \| EURLEX57K \| Reuters-21578 \|$", text, flags=re.M)
    assert header, "no headline table | model | EURLEX57K | Reuters-21578 |"
    cell = r"([\d.]+(?: ± [\d.]+)?)"
    checked = 0
    for label, run in rows.items():
        m = re.search(rf"^\| {re.escape(label)} \| {cell} \| {cell} \|$", text, flags=re.M)
        assert m, f"headline table has no row {label}"
        for dataset, quoted in zip(("eurlex57k", "reuters"), m.groups()):
            records = sorted((ROOT / "results" / dataset / run).glob("seed*/metrics.json"))
            f1s = [100 * json.loads(r.read_text())["test"]["micro_f1"] for r in records]
            if "±" in quoted:
                mean, std = seed_summary(f1s)
                assert len(f1s) > 1 and quoted == f"{mean:.2f} ± {std:.2f}", \
                    f"README {label} {dataset}: {quoted}, records {f1s}"
            else:
                seed0 = ROOT / "results" / dataset / run / "seed0" / "metrics.json"
                assert seed0.is_file(), f"README {label} {dataset}: {quoted} quotes no committed seed-0 record"
                assert quoted == f"{100 * json.loads(seed0.read_text())['test']['micro_f1']:.2f}", \
                    f"README {label} {dataset}: {quoted}"
            checked += 1
    assert checked == 2 * len(rows)
