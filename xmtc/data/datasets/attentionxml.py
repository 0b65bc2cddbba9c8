"""The AttentionXML data layout (You et al., NeurIPS 2019), used by the paper.

One folder per dataset holding, one document per line::

    train_texts.txt   train_labels.txt   test_texts.txt   test_labels.txt
    (or train_raw_texts.txt / test_raw_texts.txt, raw text)

``*_texts.txt`` are pre-tokenised (split on whitespace, tokens kept as they
are); ``*_raw_texts.txt`` are raw text (lowercased word tokens). Labels are
space-separated on the matching line. Wiki10-31K and AmazonCat-13K give
numeric label ids; when ``Y.txt`` (Wiki10-31K) or ``Yf.txt`` (AmazonCat-13K,
Latin-1) is present, label ``i`` is named by its line ``i`` (whitespace
collapsed, stripped), as the paper's code did. Amazon-670K labels are item ids.

Checks (each a :class:`DataError` naming the file and line): texts and labels
files with different line counts, undecodable bytes (files are UTF-8), an empty
document (or ``on_empty="skip"``, counted). A document with an empty label line
is skipped and counted (``on_unlabelled="skip"``, the default: the XC
repository's files contain such rows) or an error with ``"error"``.
There is no dev split: validation is a seeded hold-out of train.
"""

from __future__ import annotations

import re
from pathlib import Path

from xmtc.data.datasets.base import DataError, RawSplit, prepare

HOME = "https://github.com/yourh/AttentionXML (data links in its README; also http://manikvarma.org/downloads/XC/XMLRepository.html)"
FOLDERS = {
    "eurlex": ("EUR-Lex", "Eurlex-4K", "eurlex"),
    "wiki10": ("Wiki10-31K", "wiki10"),
    "amazoncat": ("AmazonCat-13K", "amazoncat"),
    "amazon670k": ("Amazon-670K", "amazon670k", "amazon670k-sample"),
}
LABEL_MAP = {"wiki10": ("Y.txt", "utf-8"), "amazoncat": ("Yf.txt", "latin-1")}


def _expected(text: str) -> list[str]:
    stem = "texts" if text != "raw" else "raw_texts"
    return [f"{s}_{stem}.txt" for s in ("train", "test")] + ["train_labels.txt", "test_labels.txt"]


def resolve(name, data_dir: Path, options: dict):
    text = options.get("text", "auto")
    if text not in ("auto", "texts", "raw"):
        raise ValueError(f"{name}: option text must be 'auto', 'texts' or 'raw', got {text!r}")
    searched = [data_dir / f for f in FOLDERS[name]] + [data_dir]
    for folder in searched:
        for kind in (["texts", "raw"] if text == "auto" else [text]):
            files = [folder / f for f in _expected(kind)]
            if all(f.is_file() for f in files):
                opts = dict(options, text=kind)
                mp = LABEL_MAP.get(name)
                if mp and (folder / mp[0]).is_file():
                    files.append(folder / mp[0])
                return files, opts
    raise FileNotFoundError(
        f"{name}: searched {', '.join(str(s) for s in searched)} for "
        f"{', '.join(_expected('texts'))} (or *_raw_texts.txt) and found no complete set. "
        f"The user brings these files: the public release of the AttentionXML layout is at {HOME}."
    )


def read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 file (no line ends); :class:`DataError` names file and line on bad bytes."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    try:
        return [ln.decode("utf-8").rstrip("\r") for ln in lines]
    except UnicodeDecodeError:
        for i, ln in enumerate(lines):
            try:
                ln.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path}: line {i + 1}: undecodable bytes (not UTF-8) at column {exc.start + 1}: {exc.reason}"
                ) from exc
        raise


def read_label_map(path: Path, encoding: str) -> dict[str, str]:
    """Line ``i`` of ``Y.txt`` / ``Yf.txt`` names label ``i`` (whitespace collapsed)."""
    text = path.read_bytes().decode(encoding)
    return {str(i): re.sub(r"\s+", " ", ln).strip() for i, ln in enumerate(text.splitlines())}


def build(name, data_dir, paths, opts, progress=None) -> dict:
    opts = dict(opts)
    kind = opts.pop("text")
    max_vocab = opts.pop("max_vocab", 500_000)
    on_empty = opts.pop("on_empty", "error")
    on_unlabelled = opts.pop("on_unlabelled", "skip")
    if opts:
        raise TypeError(f"{name}: unknown option(s) {sorted(opts)}")
    folder = paths[0].parent
    raw = {}
    for split in ("train", "test"):
        tpath = folder / f"{split}_{'texts' if kind == 'texts' else 'raw_texts'}.txt"
        lpath = folder / f"{split}_labels.txt"
        texts, labels = read_lines(tpath), read_lines(lpath)
        if len(texts) != len(labels):
            raise DataError(
                f"{tpath} has {len(texts)} lines but {lpath} has {len(labels)}: texts and labels must "
                f"match line by line (first line beyond the shorter file: {min(len(texts), len(labels)) + 1})"
            )
        rs = RawSplit()
        for i, (t, lab) in enumerate(zip(texts, labels)):
            rs.add(f"{split}-{i}", t, lab.split(), f"{tpath}: line {i + 1} (labels: {lpath.name})")
        raw[split] = rs
        if progress is not None:
            progress(f"read {name} {split}", len(rs), len(rs))
    label_map = None
    mp = LABEL_MAP.get(name)
    if mp and (folder / mp[0]).is_file():
        label_map = read_label_map(folder / mp[0], mp[1])
    meta = {
        "source": str(folder),
        "text": kind,
        "label_names": "item ids (use random label embeddings)" if name == "amazon670k" else "from files",
    }
    return prepare(
        name,
        raw,
        tokenizer="whitespace" if kind == "texts" else "word",
        max_vocab=max_vocab,
        label_name_map=label_map,
        on_empty=on_empty,
        on_unlabelled=on_unlabelled,
        meta=meta,
        progress=progress,
    )
