"""Dataset statistics in the form of the paper's Table 1.

Table 1 of Cao & Zhang (2022) lists, per dataset: N_train, N_test, the
vocabulary size D, the number of labels L, the mean labels per document L̄,
the mean documents per label L̂ and the mean words per document W̄ (train and
test). All label statistics here are counted on the whole training split
(``n_train`` is the split before any validation hold-out); ``n_labels`` counts
the labels that occur in training, ``n_labels_total`` those in use anywhere.
"""

from __future__ import annotations

import numpy as np

# (key, Table 1 heading) in display order
TABLE1_FIELDS = [
    ("n_train", "N_train"),
    ("n_valid", "N_valid"),
    ("n_test", "N_test"),
    ("vocab_size", "D (vocab)"),
    ("n_labels", "L (train labels)"),
    ("n_labels_total", "labels in use"),
    ("mean_labels", "L̄ labels/doc"),
    ("max_labels", "max labels/doc"),
    ("mean_docs_per_label", "L̂ docs/label"),
    ("mean_words_train", "W̄ train"),
    ("mean_words_test", "W̄ test"),
]


def compute_stats(ds) -> dict:
    """Table-1 statistics of an :class:`~xmtc.data.datasets.base.XMTCDataset`.

    Returns
    -------
    dict
        ``n_train`` (whole training split), ``n_valid``, ``n_test``,
        ``vocab_size`` (incl. ``<pad>``/``<unk>``), ``n_labels`` (labels in the
        training split), ``n_labels_total`` (labels in any split),
        ``n_labels_test_only``, ``mean_labels`` / ``max_labels`` (per training
        document), ``mean_labels_test``, ``max_labels_test``,
        ``mean_docs_per_label`` (training assignments / ``n_labels``),
        ``mean_words_train`` / ``mean_words_test`` (tokens per document),
        ``valid_source`` and ``skipped`` (counts of skipped documents).
    """
    tr, te, va = ds.train_full, ds.test, ds.valid
    lab_tr = tr.n_labels_per_doc
    lab_te = te.n_labels_per_doc
    n_in_use = len(ds.label_names)
    mean = lambda a: float(np.mean(a)) if len(a) else 0.0  # noqa: E731
    return {
        "name": ds.name,
        "n_train": len(tr),
        "n_valid": len(va),
        "n_test": len(te),
        "vocab_size": len(ds.vocab),
        "n_labels": ds.n_labels,
        "n_labels_total": n_in_use,
        "n_labels_test_only": n_in_use - ds.n_labels,
        "mean_labels": mean(lab_tr),
        "max_labels": int(lab_tr.max()) if len(lab_tr) else 0,
        "mean_labels_test": mean(lab_te),
        "max_labels_test": int(lab_te.max()) if len(lab_te) else 0,
        "mean_docs_per_label": float(lab_tr.sum() / ds.n_labels) if ds.n_labels else 0.0,
        "mean_words_train": mean(tr.lengths),
        "mean_words_test": mean(te.lengths),
        "valid_source": ds.valid_source,
        "skipped": ds.meta.get("skipped", {}),
    }
