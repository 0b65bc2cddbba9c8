"""Special symbols of the decoder's output vocabulary.

The decoder predicts over ``V = N_SPECIAL + n_labels`` symbols: the specials
first, then the real labels, so that a dataset label id ``k`` is the output id
``k + N_SPECIAL``.

``EMPTY`` is the paper's empty label (written ∅): the target of a decoding step
that no gold label is assigned to by the bipartite matching (Eq. 11-13).
``PAD``, ``BOS`` and ``EOS`` serve the sequence baselines (Seq2Seq, MLC2Seq,
SGM): padding of target sequences, the decoder's start symbol and the end of
the label sequence.
"""

EMPTY = 0
PAD = 1
BOS = 2
EOS = 3
N_SPECIAL = 4
SPECIAL_NAMES = ("<empty>", "<pad>", "<bos>", "<eos>")


def to_output_ids(label_ids):
    """Dataset label ids -> decoder output ids (works on ints and tensors)."""
    return label_ids + N_SPECIAL


def to_label_ids(output_ids):
    """Decoder output ids -> dataset label ids (negative for specials)."""
    return output_ids - N_SPECIAL
