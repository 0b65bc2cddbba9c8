"""Sequence baselines of paper Section 3.3 built from ``models`` parts.

``Seq2Seq`` (file order), ``MLC2Seq`` (frequency order), ``SGM`` (frequency
order, global embedding, masked softmax at inference).
"""

from .seq2seq import SGM, MLC2Seq, Seq2Seq, Seq2SeqConfig, SGMConfig, sequence_targets

__all__ = ["Seq2Seq", "MLC2Seq", "SGM", "Seq2SeqConfig", "SGMConfig", "sequence_targets"]
