"""EURLEX57K (Chalkidis et al., ACL 2019), the original per-document release.

Read from ``EURLEX57K.tar.gz`` (members ``EURLEX57K/{train,dev,test}/<celex>.json``
and ``EURLEX57K/EURLEX57K.json``) without extracting it, or from the extracted
folder ``EURLEX57K/`` (preferred when both exist). The release's own split is
used: 45,000 train / 6,000 dev (our ``valid``) / 6,000 test; 4,271 EUROVOC
concepts are in use, 4,108 of them in train.

Text = ``title`` + ``header`` + ``recitals`` + ``main_body`` (a list of
paragraphs), joined by newlines; ``attachments`` are left out, as in the
paper's setting. Labels = ``concepts`` (EUROVOC ids, file order); label names
= the ``label`` field of ``EURLEX57K.json`` (the id itself when absent).
Documents are ordered by file name within each split.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from xmtc.data.datasets.archive import iter_members
from xmtc.data.datasets.base import DataError, RawSplit, prepare

ARCHIVE = "EURLEX57K.tar.gz"
HOME = "http://nlp.cs.aueb.gr/software_and_datasets/EURLEX57K/ (also on the Hugging Face hub: 'eurlex')"
_DOC = re.compile(r"(?:^|/)(train|dev|test)/([^/]+)\.json$")
_LABELS = re.compile(r"(?:^|/)EURLEX57K\.json$")
FIELDS = ("title", "header", "recitals", "main_body")
_SPLIT = {"train": "train", "dev": "valid", "test": "test"}


def resolve(name, data_dir: Path, options: dict):
    folder = data_dir / "EURLEX57K"
    if (folder / "train").is_dir():
        files = sorted(folder.glob("*/*.json")) + sorted(folder.glob("*.json"))
        return files, options
    if (data_dir / "train").is_dir() and (data_dir / "EURLEX57K.json").is_file():
        return sorted(data_dir.glob("*/*.json")) + [data_dir / "EURLEX57K.json"], options
    if (data_dir / ARCHIVE).is_file():
        return [data_dir / ARCHIVE], options
    raise FileNotFoundError(
        f"eurlex57k: searched {data_dir} for {ARCHIVE} or an extracted folder EURLEX57K/ with "
        f"train/, dev/, test/ and EURLEX57K.json, and found neither. The public release is at {HOME}."
    )


def parse_document(content: bytes, where: str) -> tuple[str, str, list[str]]:
    """``(celex_id, text, concepts)`` of one JSON document; :class:`DataError` on bad input."""
    try:
        s = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{where}: line {line}: undecodable bytes (not UTF-8) at byte {exc.start}") from exc
    try:
        d = json.loads(s)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: line {exc.lineno} column {exc.colno}: malformed JSON: {exc.msg}") from exc
    if not isinstance(d, dict) or "concepts" not in d or "celex_id" not in d:
        raise DataError(f"{where}: line 1: JSON document without 'celex_id' / 'concepts'")
    parts = []
    for f in FIELDS:
        v = d.get(f) or ""
        parts.extend(v if isinstance(v, list) else [v])
    return str(d["celex_id"]), "\n".join(p for p in parts if p), [str(c) for c in d["concepts"]]


def build(name, data_dir, paths, opts, progress=None) -> dict:
    opts = dict(opts)
    max_vocab = opts.pop("max_vocab", 500_000)
    on_empty = opts.pop("on_empty", "error")
    on_unlabelled = opts.pop("on_unlabelled", "skip")
    if opts:
        raise TypeError(f"eurlex57k: unknown option(s) {sorted(opts)}")
    want = lambda n: bool(_DOC.search(n) or _LABELS.search(n))  # noqa: E731
    if len(paths) == 1 and paths[0].name.endswith((".tar.gz", ".tgz", ".tar")):
        members = iter_members(paths[0], want)
        prefix = f"{paths[0]}:"
    else:
        root = paths[0].parent.parent
        members = ((str(p.relative_to(root)), p.read_bytes()) for p in paths if want(str(p.relative_to(root))))
        prefix = f"{root}/"
    docs: dict[str, list] = {"train": [], "valid": [], "test": []}
    label_map: dict[str, str] = {}
    seen_labels_file = False
    for i, (member, content) in enumerate(members):
        where = prefix + member
        if _LABELS.search(member):
            seen_labels_file = True
            try:
                table = json.loads(content.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise DataError(f"{where}: malformed label file: {exc}") from exc
            label_map = {str(k): str(v.get("label", k)) if isinstance(v, dict) else str(v) for k, v in table.items()}
            continue
        split = _SPLIT[_DOC.search(member).group(1)]
        docs[split].append((member, *parse_document(content, where), where))
        if progress is not None and i % 2000 == 0:
            progress("read eurlex57k", i, 57_001)
    if not seen_labels_file:
        raise DataError(f"{prefix.rstrip(':/')}: no EURLEX57K.json (label names) found")
    for split, lst in docs.items():
        if not lst:
            raise DataError(f"{prefix.rstrip(':/')}: no documents for split {split!r}")
    raw = {}
    for split, lst in docs.items():
        rs = RawSplit()
        for member, celex, text, concepts, where in sorted(lst):
            rs.add(celex, text, concepts, where)
        raw[split] = rs
    meta = {"source": str(paths[0]) if len(paths) == 1 else prefix, "text_fields": list(FIELDS)}
    return prepare(
        name,
        raw,
        tokenizer="word",
        max_vocab=max_vocab,
        label_name_map=label_map,
        on_empty=on_empty,
        on_unlabelled=on_unlabelled,
        meta=meta,
        progress=progress,
    )
