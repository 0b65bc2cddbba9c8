"""Bidirectional GRU encoder (paper Section 2.2, Eq. 2-3).

.. math::

    \\overrightarrow{h}_i = \\overrightarrow{\\mathrm{GRU}}(\\overrightarrow{h}_{i-1}, e(x_i)),\\quad
    \\overleftarrow{h}_i = \\overleftarrow{\\mathrm{GRU}}(\\overleftarrow{h}_{i+1}, e(x_i)),\\quad
    h_i = [\\overrightarrow{h}_i ; \\overleftarrow{h}_i]

Two layers; padding never enters a recurrence. The decoder starts from
``s_0 = tanh(W [h→_l ; h←_1])``: the top layer's forward state at the last real
token ``l`` and its backward state at the first token.

Two exact ways to keep padding out of the recurrences, chosen by device:

* :func:`bigru_packed` (the readable reference, and the CUDA path): PyTorch's
  packed sequences. cuDNN runs them natively, so on a GPU this is the fast
  path. On a CPU, PyTorch slices the packed input once per time step and the
  backward of every slice writes a zero gradient of the *whole* input, so the
  backward costs O(S²) (2 layers, B=32, E=64, H=128, S=512, forward + backward:
  5.10 s packed vs 0.94 s for a plain ``nn.GRU`` over the padded tensor;
  ``docs/cpu.md``).
* :func:`bigru_reversed` (the CPU path): per layer, the forward direction runs
  over the right-padded batch as it is — a real position only sees the real
  tokens before it, padding comes after — and the backward direction runs
  forward over each row *reversed within its own length* (a gather), so again
  every real token comes before the padding; its outputs are gathered back.
  Linear in S, within float rounding of the packed path (tested, values and
  gradients).

Both use the same parameters (those of one bidirectional ``nn.GRU``), so a
checkpoint trained on one device loads on the other. :class:`Encoder` picks one
by its ``impl`` argument (``BackboneConfig.encoder_impl``): ``"auto"`` (packed on
CUDA, reversed elsewhere), or ``"packed"`` / ``"reversed"`` on every device (the
tests build both and compare).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


#: the accepted values of :class:`Encoder`'s ``impl`` (``BackboneConfig.encoder_impl``)
EncoderImpl = Literal["auto", "packed", "reversed"]


def bigru_packed(rnn: nn.GRU, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: a bidirectional ``rnn`` over packed sequences.

    Parameters
    ----------
    rnn : nn.GRU, bidirectional, ``batch_first=True``.
    x : Tensor (B, S, E), right-padded.
    lengths : LongTensor (B,), real tokens per row (>= 1).

    Returns
    -------
    h : Tensor (B, S, 2H), the top layer's ``[h→_i ; h←_i]``, zero on padding.
    last : Tensor (B, 2H), ``[h→_l ; h←_1]`` of the top layer.
    """
    S = x.shape[1]
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, h_n = rnn(packed)  # h_n: (layers * 2, B, H)
    h, _ = pad_packed_sequence(out, batch_first=True, total_length=S)  # (B, S, 2H)
    return h, torch.cat([h_n[-2], h_n[-1]], dim=-1)


def reverse_within_length(lengths: torch.Tensor, S: int) -> torch.Tensor:
    """Index ``(B, S)`` that reverses the first ``lengths[b]`` positions of row ``b``, padding in place.

    ``lengths``: LongTensor (B,), each in [1, S].

    Its own inverse: ``x.gather(1, idx)`` twice gives ``x`` back.
    """
    pos = torch.arange(S, device=lengths.device)[None, :]  # (1, S)
    last = lengths[:, None] - 1  # (B, 1)
    return torch.where(pos <= last, last - pos, pos)  # (B, S)


def _gru_direction(x: torch.Tensor, weights: list[torch.Tensor], hidden_size: int) -> torch.Tensor:
    """One direction of one layer over ``x (B, S, in)`` from a zero state: outputs ``(B, S, H)``."""
    h0 = x.new_zeros(1, x.shape[0], hidden_size)  # (1, B, H)
    # the op nn.GRU calls (torch._VF is private API; stable across torch 2.x): has_biases, one layer,
    # no dropout, train (cuDNN's backward requires it), unidirectional, batch_first
    out, _ = torch._VF.gru(x, h0, weights, True, 1, 0.0, torch.is_grad_enabled(), False, True)
    return out


def bigru_reversed(rnn: nn.GRU, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Same as :func:`bigru_packed`, linear in S on a CPU: each row reversed within its length for ``h←``.

    Parameters, returns and parameters used: as :func:`bigru_packed`
    (``rnn``'s weights ``*_l{k}`` and ``*_l{k}_reverse``; dropout ``rnn.dropout``
    between layers in training, as ``nn.GRU`` applies it).
    """
    B, S, _ = x.shape
    H = rnn.hidden_size
    if bool((lengths < 1).any()):
        raise ValueError("every row needs at least one real token (src_mask has an empty row)")
    rev = reverse_within_length(lengths, S)  # (B, S)
    rev_in = rev[:, :, None].expand(B, S, x.shape[-1])  # (B, S, E) gather index for the input
    rev_out = rev[:, :, None].expand(B, S, H)  # (B, S, H)
    layer_in = x
    for k in range(rnn.num_layers):
        if k > 0 and rnn.dropout > 0:
            layer_in = F.dropout(layer_in, rnn.dropout, rnn.training)
        if k == 1:
            rev_in = rev[:, :, None].expand(B, S, 2 * H)
        w = [getattr(rnn, f"{n}_l{k}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        w_rev = [getattr(rnn, f"{n}_l{k}_reverse") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        fwd = _gru_direction(layer_in, w, H)  # (B, S, H): exact at real positions
        bwd = _gru_direction(layer_in.gather(1, rev_in), w_rev, H).gather(1, rev_out)  # (B, S, H)
        layer_in = torch.cat([fwd, bwd], dim=-1)  # (B, S, 2H)
    mask = (torch.arange(S, device=x.device)[None, :] < lengths[:, None]).unsqueeze(-1)  # (B, S, 1)
    h = layer_in.masked_fill(~mask, 0.0)  # (B, S, 2H)
    last_fwd = h[torch.arange(B, device=x.device), lengths - 1, :H]  # (B, H): h→ at the last real token
    return h, torch.cat([last_fwd, h[:, 0, H:]], dim=-1)  # (B, 2H): [h→_l ; h←_1]


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
        Dropout on the embeddings and between GRU layers (the authors' sites).
    output_dropout : bool
        Also dropout on the outputs ``h`` (this toolkit's earlier default).
    impl : {"auto", "packed", "reversed"}
        How padding is kept out of the recurrences (see the module docstring):
        ``"packed"`` (:func:`bigru_packed`, the readable reference, fast on CUDA),
        ``"reversed"`` (:func:`bigru_reversed`, linear in ``S`` on a CPU), or
        ``"auto"``: packed on CUDA, reversed elsewhere.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, decoder_hidden: int,
                 num_layers: int = 2, dropout: float = 0.2, output_dropout: bool = False,
                 impl: EncoderImpl = "auto"):
        super().__init__()
        if impl not in get_args(EncoderImpl):
            raise ValueError(f"Encoder impl must be one of {', '.join(get_args(EncoderImpl))}; got {impl!r}")
        self.impl = impl
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(embed_dim, hidden_size, num_layers=num_layers, batch_first=True,
                          bidirectional=True, dropout=dropout if num_layers > 1 else 0.0)
        self.bridge = nn.Linear(2 * hidden_size, decoder_hidden)
        self.output_size = 2 * hidden_size
        self.output_dropout = nn.Dropout(dropout) if output_dropout else nn.Identity()

    def load_embeddings(self, embeddings: torch.Tensor) -> None:
        """Copy an ``(vocab_size, embed_dim)`` matrix into the embedding table."""
        with torch.no_grad():
            self.embedding.weight.copy_(torch.as_tensor(embeddings, dtype=self.embedding.weight.dtype))

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a right-padded batch.

        Parameters
        ----------
        src : LongTensor (B, S)
        src_mask : BoolTensor (B, S), True on real tokens (a non-empty prefix of each row).

        Returns
        -------
        h : Tensor (B, S, 2 * hidden_size), zero on padding.
        s0 : Tensor (B, decoder_hidden)
        """
        x = self.dropout(self.embedding(src))  # (B, S, E)
        lengths = src_mask.sum(1)  # (B,)
        impl = self.impl if self.impl != "auto" else ("packed" if src.is_cuda else "reversed")
        bigru = bigru_packed if impl == "packed" else bigru_reversed
        h, last = bigru(self.rnn, x, lengths)  # (B, S, 2H), (B, 2H)
        s0 = torch.tanh(self.bridge(last))  # (B, D)
        return self.output_dropout(h), s0
