"""Prediction on new text with a trained run directory (``examples/predict.py``).

:func:`load_run` recognises the two kinds of run directory the scripts write:

* a neural run (``examples/train_{otseq2set,seq2seq,mlc2seq,sgm}.py``):
  ``best.pt`` (else ``checkpoint.pt``), read with ``torch.load(weights_only=True)``,
  holds the model, its vocabulary, tokeniser and label names; a label's score is
  its highest probability over the decoding steps, the decoded set the model's own;
* a linear run (``examples/train_linear.py``): ``model.npz``
  (:meth:`baselines.linear.LinearOneVsRest.load`, no pickle) and ``vocab.json``
  (tokeniser, vocabulary, label names); a label's score is its SVM margin, the
  decoded set ``score > 0``, and documents are read whole.

Both give one :class:`Run`, with the calibrated threshold ``τ`` of
``metrics.json`` where the run stored one (:mod:`xmtc.calibration`);
:func:`predict_texts` labels raw texts with it: the decoded set, the set
``score ≥ τ`` (``calibrated=True``) or the ``top_k`` best-scoring labels.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from xmtc.train import checkpoint
from xmtc.train.runtime import select_device

#: The files that make a directory a run directory, by kind (first found wins).
NEURAL_WEIGHTS = ("best.pt", "checkpoint.pt")
LINEAR_MODEL, LINEAR_VOCAB = "model.npz", "vocab.json"


@dataclass
class Run:
    """A trained run loaded for prediction (:func:`load_run`).

    ``model`` is an ``nn.Module`` (``kind == "neural"``) or a
    ``baselines.linear.LinearOneVsRest`` (``kind == "linear"``);
    ``max_src_len`` is ``None`` where documents are read whole.
    """

    model: object
    config: dict
    label_names: list[str]
    vocab: object  # xmtc.data.text.Vocab
    tokenizer: str
    max_src_len: int | None
    device: torch.device
    #: ``metrics.json``'s ``calibrated`` entry (``{"rule", "tau", "valid", "test"}``), ``None`` if absent
    calibrated: dict | None = field(default=None)
    kind: str = "neural"

    def score(self, token_ids: list[np.ndarray], top_k: int | None = None) -> tuple[list[list[int]], np.ndarray]:
        """Label ids and scores of documents given as token-id arrays.

        Returns the decoded sets (with ``top_k``: the ``top_k`` best-scoring
        labels instead) as lists of label ids, and the scores ``(B, L)`` float32
        (probabilities for a neural run, margins for a linear one, ``-inf``
        for a label the linear model has no classifier for).
        """
        if self.kind == "linear":
            from baselines.linear import sets_from_scores, top_k_from_scores

            scores = self.model.decision_function(token_ids)  # (B, L)
            if top_k is None:
                return [sorted(s) for s in sets_from_scores(scores)], scores
            ids, _ = top_k_from_scores(scores, top_k)  # (B, k), -1 past the labels with a classifier
            return [[int(i) for i in row if i >= 0] for row in ids], scores
        from xmtc.data.batching import collate

        items = [(i, ids[: self.max_src_len], np.zeros(0, np.int64)) for i, ids in enumerate(token_ids)]
        with torch.no_grad():
            pred = self.model.predict(collate(items).to(self.device), top_k=top_k)
        return [list(labels) for labels in pred.labels], pred.scores.float().cpu().numpy()


def load_run(run_dir, *, device: str = "auto", model_type: str | None = None) -> Run:
    """Load a neural (``best.pt``, else ``checkpoint.pt``) or linear (``model.npz``) run directory.

    Raises
    ------
    xmtc.train.checkpoint.CheckpointError
        (one line) no such directory, a directory that is neither kind of run,
        unreadable weights, a linear run without ``vocab.json``, or
        ``model_type`` given and not the run's.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise checkpoint.CheckpointError(f"run directory {run_dir} not found")
    weights = next((run_dir / n for n in NEURAL_WEIGHTS if (run_dir / n).is_file()), None)
    if weights is not None:
        return _load_neural(run_dir, weights, device, model_type)
    if (run_dir / LINEAR_MODEL).is_file():
        if model_type is not None and model_type != "linear":
            raise checkpoint.CheckpointError(f"{run_dir} holds a 'linear' model, not {model_type!r}")
        return _load_linear(run_dir)
    raise checkpoint.CheckpointError(
        f"{run_dir} is not a run directory: it holds neither {' nor '.join(NEURAL_WEIGHTS)} (a neural run) "
        f"nor {LINEAR_MODEL} (a linear run) of examples/train_*.py")


def _load_neural(run_dir: Path, weights: Path, device: str, model_type: str | None) -> Run:
    from xmtc.data.text import Vocab
    from xmtc.registry import model_from_checkpoint

    state = checkpoint.load(weights, model_type=model_type)
    dev = select_device(device)
    model = model_from_checkpoint(state).to(dev).eval()
    return Run(model, state["config"], list(state["label_names"]), Vocab(state["vocab"]), state["tokenizer"],
               int(state["max_src_len"]), dev, _calibrated(run_dir), "neural")


def _load_linear(run_dir: Path) -> Run:
    from baselines.linear import LinearOneVsRest
    from xmtc.data.text import TOKENIZERS, Vocab

    path = run_dir / LINEAR_MODEL
    try:
        model = LinearOneVsRest.load(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:  # a damaged or foreign .npz
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise checkpoint.CheckpointError(f"cannot read the linear model {path}: {first}") from None
    vocab_path = run_dir / LINEAR_VOCAB
    if not vocab_path.is_file():
        raise checkpoint.CheckpointError(
            f"{run_dir} is a linear run without {LINEAR_VOCAB} (the vocabulary needed to read new text; "
            f"written by examples/train_linear.py since it stores one): train it again")
    saved = _json(vocab_path)
    if not isinstance(saved, dict) or not {"tokenizer", "vocab", "label_names"} <= set(saved):
        raise checkpoint.CheckpointError(f"{vocab_path} lacks 'tokenizer', 'vocab' or 'label_names'")
    if saved["tokenizer"] not in TOKENIZERS:
        raise checkpoint.CheckpointError(f"{vocab_path}: unknown tokenizer {saved['tokenizer']!r}")
    try:
        vocab = Vocab(saved["vocab"])
    except ValueError as e:
        raise checkpoint.CheckpointError(f"{vocab_path}: {e}") from None
    if (len(vocab), len(saved["label_names"])) != (model.n_features, model.n_labels):
        raise checkpoint.CheckpointError(
            f"{vocab_path} does not match {path}: {len(vocab)} words and {len(saved['label_names'])} labels, "
            f"the model {model.n_features} and {model.n_labels}")
    config = _json(run_dir / "config.json") if (run_dir / "config.json").is_file() else {}
    return Run(model, config, list(saved["label_names"]), vocab, saved["tokenizer"], None, torch.device("cpu"),
               _calibrated(run_dir), "linear")


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise checkpoint.CheckpointError(f"{path} is not valid JSON ({e})") from None


def _calibrated(run_dir: Path) -> dict | None:
    """The ``calibrated`` entry of the run's ``metrics.json`` (``None``: no file, or written before it existed)."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return None
    entry = _json(path)
    entry = entry.get("calibrated") if isinstance(entry, dict) else None
    return entry if isinstance(entry, dict) and "tau" in entry else None


def predict_texts(run: Run, texts: list[str], *, batch_size: int = 64, top_k: int | None = None,
                  calibrated: bool = False) -> list[list[tuple[str, float]]]:
    """Label raw texts with a loaded run.

    Returns, per text, the predicted labels as ``(name, score)`` pairs, best
    first (``score``: the label's highest probability over decoding steps, or
    its margin for a linear run). With ``top_k``, the ``top_k`` best-scoring
    labels instead of the decoded set; with ``calibrated``, every label whose
    score reaches the run's dev-chosen ``τ`` (the decoded set where the run
    kept it, ``τ = None``).
    """
    tau = None
    if calibrated:
        if top_k is not None:
            raise ValueError("choose one of top_k and calibrated")
        if run.calibrated is None:
            raise ValueError("this run stores no calibrated threshold (its metrics.json has no 'calibrated' "
                             "entry: trained before calibration existed, or not finished)")
        tau = run.calibrated["tau"]
    from xmtc.data.text import TOKENIZERS

    tokenize = TOKENIZERS[run.tokenizer]
    out: list[list[tuple[str, float]]] = []
    for s in range(0, len(texts), batch_size):
        token_ids = [run.vocab.encode(tokenize(t)) for t in texts[s : s + batch_size]]
        labels, scores = run.score(token_ids, top_k=top_k)
        for b, chosen in enumerate(labels):
            if tau is not None:
                chosen = np.flatnonzero(scores[b] >= tau).tolist()
            ranked = sorted(chosen, key=lambda k: (-float(scores[b, k]), k))
            out.append([(run.label_names[k], float(scores[b, k])) for k in ranked])
    return out


__all__ = ["Run", "load_run", "predict_texts"]
