"""Losses of OTSeq2Set (EMNLP 2022, Section 2.3) and of its sequence baselines.

- :mod:`losses.ipot` — batched IPOT optimal transport (Xie et al. 2020), validated against POT;
- :mod:`losses.matching` — Hungarian assignment of gold labels to decoding steps (Eq. 11-12);
- :mod:`losses.set_loss` — the OTSeq2Set loss: matching NLL + lambda * semantic OT (Eq. 13-17);
- :mod:`losses.sequence` — token cross-entropy for Seq2Seq / MLC2Seq / SGM.

A leaf package: it imports only torch, numpy and scipy.
"""

from .ipot import ipot, ipot_reference, ipot_value
from .matching import assign_targets, assign_targets_reference
from .sequence import sequence_cross_entropy
from .set_loss import cosine_distance, set_loss, set_loss_reference

__all__ = [
    "ipot",
    "ipot_value",
    "ipot_reference",
    "assign_targets",
    "assign_targets_reference",
    "set_loss",
    "set_loss_reference",
    "cosine_distance",
    "sequence_cross_entropy",
]
