"""Bidirectional GRU encoder (paper Section 2.2, Eq. 2-3).

.. math::

    \\overrightarrow{h}_i = \\overrightarrow{\\mathrm{GRU}}(\\overrightarrow{h}_{i-1}, e(x_i)),\\quad
    \\overleftarrow{h}_i = \\overleftarrow{\\mathrm{GRU}}(\\overleftarrow{h}_{i+1}, e(x_i)),\\quad
    h_i = [\\overrightarrow{h}_i ; \\overleftarrow{h}_i]

Two layers, run over packed sequences so that padding never enters a
recurrence. The decoder starts from
``s_0 = tanh(W [h→_l ; h←_1])``: the top layer's forward state at the last real
token and its backward state at the first token.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class Encoder(nn.Module):
    """Embedding + dropout + multi-layer bidirectional GRU + start-state bridge.

    Parameters
    ----------
    vocab_size : int
        Input vocabulary size (id 0 is ``<pad>``).
    embed_dim : int
        Word embedding width ``E``.
    hidden_size : int
        GRU width per direction; the states ``h_i`` have ``2 * hidden_size``.
    decoder_hidden : int
        Width of the decoder state ``s_0``.
    num_layers : int
        Stacked GRU layers (paper: 2).
    dropout : float
        Dropout on embeddings, between GRU layers and on the outputs.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, decoder_hidden: int,
                 num_layers: int = 2, dropout: float = 0.2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(embed_dim, hidden_size, num_layers=num_layers, batch_first=True,
                          bidirectional=True, dropout=dropout if num_layers > 1 else 0.0)
        self.bridge = nn.Linear(2 * hidden_size, decoder_hidden)
        self.output_size = 2 * hidden_size

    def load_embeddings(self, embeddings: torch.Tensor) -> None:
        """Copy an ``(vocab_size, embed_dim)`` matrix into the embedding table."""
        with torch.no_grad():
            self.embedding.weight.copy_(torch.as_tensor(embeddings, dtype=self.embedding.weight.dtype))

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a right-padded batch.

        Parameters
        ----------
        src : LongTensor (B, S)
        src_mask : BoolTensor (B, S), True on real tokens (a prefix of each row).

        Returns
        -------
        h : Tensor (B, S, 2 * hidden_size), zero on padding.
        s0 : Tensor (B, decoder_hidden)
        """
        B, S = src.shape
        x = self.dropout(self.embedding(src))  # (B, S, E)
        lengths = src_mask.sum(1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, h_n = self.rnn(packed)  # h_n: (layers * 2, B, H)
        h, _ = pad_packed_sequence(out, batch_first=True, total_length=S)  # (B, S, 2H)
        last = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # (B, 2H): [h→_l ; h←_1]
        s0 = torch.tanh(self.bridge(last))  # (B, D)
        return self.dropout(h), s0
