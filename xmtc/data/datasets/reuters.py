"""Reuters-21578, Distribution 1.0, ModApte split (Lewis 1997; Yang & Liu 1999).

Read from ``reuters21578.tar.gz`` (the public UCI archive layout, members
``reut2-000.sgm`` … ``reut2-021.sgm``) or from a folder holding those files.

ModApte: ``LEWISSPLIT="TRAIN"`` / ``"TEST"`` with ``TOPICS="YES"`` gives
9,603 / 3,299 documents. We keep the 90 topics that have at least one training
and one test document, restrict every document's topics to them and keep the
documents that carry at least one: **7,770 train / 3,019 test** from this
archive. Many papers quote 7,769 training documents; the split definition
above gives 7,770 from the public archive, and we keep all of them rather than
drop one document on an unverified guess of which (``stats()`` reports what
was read; the tests pin 7,770 / 3,019 / 90).

Text = ``TITLE`` + ``BODY`` (falling back to the whole ``TEXT`` element for
the few documents without them), SGML entities unescaped, control characters
removed. The archive predates UTF-8 and holds one non-ASCII byte (0xFC in
``reut2-017.sgm``), so files are decoded as Latin-1, which never fails.
Labels are topic codes (``earn``, ``acq``, ...); file order is the order of the
``<D>`` elements.

With ``download=True`` and no archive in the data directory, the archive is
fetched from its public home (:data:`URL`) into the data directory and kept
only if its SHA-256 is :data:`SHA256`; offline, or on a checksum mismatch, the
error says so and what to do.
"""

from __future__ import annotations

import hashlib
import html
import re
import urllib.request
from pathlib import Path

from evaluation.report import atomic_write
from xmtc.data.datasets.archive import iter_members
from xmtc.data.datasets.base import DataError, RawSplit, prepare

ARCHIVE = "reuters21578.tar.gz"
HOME = "https://archive.ics.uci.edu/dataset/137/reuters+21578+text+categorization+collection"
URL = "https://kdd.ics.uci.edu/databases/reuters21578/reuters21578.tar.gz"
SHA256 = "78daf724697c3cd74d05efa47fc0134f4e5c334b04406e4744ac87cbffd11284"
_SGM = re.compile(r"(^|/)reut2-\d{3}\.sgm$")
_DOC = re.compile(r"<REUTERS([^>]*)>(.*?)</REUTERS>", re.S)
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_TOPICS = re.compile(r"<TOPICS>(.*?)</TOPICS>", re.S)
_D = re.compile(r"<D>(.*?)</D>", re.S)
_TITLE = re.compile(r"<TITLE>(.*?)</TITLE>", re.S)
_BODY = re.compile(r"<BODY>(.*?)</BODY>", re.S)
_TEXT = re.compile(r"<TEXT[^>]*>(.*?)</TEXT>", re.S)
_TAG = re.compile(r"<[^>]+>")
_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def download(dest: Path, url: str = URL, sha256: str = SHA256, timeout: float = 60.0) -> Path:
    """Fetch the archive to ``dest`` (atomically), checking its SHA-256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            data = r.read()
    except OSError as exc:
        raise FileNotFoundError(
            f"reuters: {dest} is absent and downloading {url} failed ({exc}); this machine seems offline. "
            f"Copy {ARCHIVE} into {dest.parent} (public release: {HOME})."
        ) from exc
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise DataError(f"reuters: {url} gave a file with SHA-256 {got}, expected {sha256}; not kept")
    with atomic_write(dest, "wb", permissions=0o644) as f:
        f.write(data)
    return dest


def resolve(name, data_dir: Path, options: dict):
    fetch = options.pop("download", False)
    for cand in (data_dir / ARCHIVE, data_dir / "reuters21578"):
        if cand.is_file():
            return [cand], options
        if cand.is_dir() and sorted(cand.glob("reut2-*.sgm")):
            return sorted(cand.glob("reut2-*.sgm")), options
    if fetch:
        return [download(data_dir / ARCHIVE)], options
    raise FileNotFoundError(
        f"reuters: searched {data_dir} for {ARCHIVE} (or a folder reuters21578/ with reut2-000.sgm … "
        f"reut2-021.sgm) and found neither. The public release (Reuters-21578, Distribution 1.0) is at {HOME}; "
        f"load('reuters', ..., download=True) fetches it (checksum-checked) when online."
    )


def _clean(s: str) -> str:
    return _CTRL.sub(" ", html.unescape(s)).strip()


def parse_sgml(content: bytes, where: str):
    """Yield ``(newid, attrs, topics, text, line)`` for each ``<REUTERS>`` element."""
    text = content.decode("latin-1")
    n_docs, line, pos = 0, 1, 0
    for m in _DOC.finditer(text):
        n_docs += 1
        line += text.count("\n", pos, m.start())  # incremental: linear in the file
        pos = m.start()
        attrs = dict(_ATTR.findall(m.group(1)))
        if "NEWID" not in attrs or "LEWISSPLIT" not in attrs or "TOPICS" not in attrs:
            raise DataError(f"{where}:{line}: <REUTERS> element without NEWID/LEWISSPLIT/TOPICS attributes")
        body = m.group(2)
        tm = _TOPICS.search(body)
        topics = [_clean(t) for t in _D.findall(tm.group(1))] if tm else []
        title, main = _TITLE.search(body), _BODY.search(body)
        parts = [_clean(x.group(1)) for x in (title, main) if x]
        if not any(parts):
            tx = _TEXT.search(body)
            parts = [_clean(_TAG.sub(" ", tx.group(1)))] if tx else []
        yield attrs["NEWID"], attrs, topics, "\n".join(p for p in parts if p), line
    if n_docs == 0 and b"<REUTERS" in content:
        raise DataError(f"{where}: unterminated <REUTERS> element (truncated file?)")


def build(name, data_dir, paths, opts, progress=None) -> dict:
    opts = dict(opts)
    max_vocab = opts.pop("max_vocab", 500_000)
    on_empty = opts.pop("on_empty", "error")
    if opts:
        raise TypeError(f"reuters: unknown option(s) {sorted(opts)}")
    if len(paths) == 1 and paths[0].name.endswith((".tar.gz", ".tgz", ".tar")):
        members = iter_members(paths[0], lambda n: bool(_SGM.search(n)))
        label = str(paths[0]) + ":"
    else:
        members = ((p.name, p.read_bytes()) for p in paths)
        label = str(paths[0].parent) + "/"
    docs = {"TRAIN": [], "TEST": []}
    n_files = 0
    for i, (member, content) in enumerate(sorted(members)):
        n_files += 1
        where = f"{label}{member}"
        for newid, attrs, topics, text, line in parse_sgml(content, where):
            split = attrs["LEWISSPLIT"]
            if attrs["TOPICS"] == "YES" and split in docs:
                docs[split].append((int(newid), topics, text, f"{where}:{line}"))
        if progress is not None:
            progress("read reuters", i + 1, 22)
    if n_files == 0:
        raise DataError(f"{paths[0]}: no reut2-NNN.sgm members found")
    modapte = {s: len(v) for s, v in docs.items()}
    in_train = {t for _, ts, _, _ in docs["TRAIN"] for t in ts}
    in_test = {t for _, ts, _, _ in docs["TEST"] for t in ts}
    keep = in_train & in_test
    raw = {}
    for split, key in (("train", "TRAIN"), ("test", "TEST")):
        rs = RawSplit()
        for newid, topics, text, where in sorted(docs[key]):
            kept = [t for t in topics if t in keep]
            if kept:
                rs.add(str(newid), text, kept, where)
        raw[split] = rs
    meta = {
        "source": str(paths[0]),
        "modapte_documents": modapte,  # TOPICS="YES" train / test: 9,603 / 3,299
        "n_topics_kept": len(keep),
        "note": "ModApte, 90 topics with >= 1 train and >= 1 test document",
    }
    return prepare(name, raw, tokenizer="word", max_vocab=max_vocab, on_empty=on_empty, meta=meta, progress=progress)
