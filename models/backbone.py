"""Encoder + (optional) LightConv + attention decoder, shared by every model.

OTSeq2Set (paper Section 2.2) and the sequence baselines of Section 3.3
(Seq2Seq, MLC2Seq, SGM) share this network; they differ only in how the
decoder is driven (student vs. teacher forcing), in the loss, and in the
switches of their config. :class:`BackboneConfig` holds the common settings
(paper Section 3.4: 300-d embeddings, hidden 512, 2 encoder layers, dropout
0.2, weights initialised U(-0.1, 0.1)).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .decoder import Decoder, Memory
from .encoder import Encoder
from .lightconv import LightConv
from .specials import N_SPECIAL


@dataclass
class BackboneConfig:
    """Settings shared by all models.

    vocab_size : input vocabulary (id 0 = ``<pad>``, 1 = ``<unk>``).
    n_labels : training labels; the decoder predicts ``V = N_SPECIAL + n_labels`` ids.
    embed_dim / label_embed_dim : word and label embedding widths.
    hidden_size : GRU width (encoder per direction and decoder).
    use_lightconv, lightconv_kernels, lightconv_heads, last_stride : Eq. 7.
    bottleneck : ``None`` (Eq. 9) or the bottleneck size ``b`` (Eq. 10).
    init_range : weights are drawn from U(-init_range, init_range).
    """

    vocab_size: int
    n_labels: int
    embed_dim: int = 300
    label_embed_dim: int = 300
    hidden_size: int = 512
    encoder_layers: int = 2
    dropout: float = 0.2
    use_lightconv: bool = True
    lightconv_kernels: tuple[int, ...] = (3, 7, 15, 30)
    lightconv_heads: int = 16
    last_stride: int = 3
    bottleneck: int | None = None
    init_range: float = 0.1

    @property
    def n_outputs(self) -> int:
        return N_SPECIAL + self.n_labels

    def to_dict(self) -> dict:
        return asdict(self)


class EncoderDecoder(nn.Module):
    """The network of Fig. 1 without its training objective.

    Parameters
    ----------
    config : BackboneConfig (or a subclass)
    embeddings : Tensor (vocab_size, embed_dim), optional
        Initial word embeddings (GloVe in the paper).
    label_embeddings : Tensor (V, label_embed_dim) or (n_labels, label_embed_dim), optional
        Initial label embeddings (mean word vector of each label name); with
        ``n_labels`` rows the specials keep their random initialisation.
    global_embedding_tau : float, optional
        Enables SGM's global embedding in the decoder.
    """

    label_order = "file"

    def __init__(self, config: BackboneConfig, embeddings: torch.Tensor | None = None,
                 label_embeddings: torch.Tensor | None = None, global_embedding_tau: float | None = None):
        super().__init__()
        self.config = config
        c = config
        self.encoder = Encoder(c.vocab_size, c.embed_dim, c.hidden_size, c.hidden_size,
                               num_layers=c.encoder_layers, dropout=c.dropout)
        ctx = self.encoder.output_size
        self.lightconv = (LightConv(ctx, c.lightconv_kernels, c.lightconv_heads, c.last_stride, c.dropout)
                          if c.use_lightconv else None)
        self.decoder = Decoder(c.n_outputs, c.label_embed_dim, c.hidden_size, ctx,
                               use_lightconv=c.use_lightconv, bottleneck=c.bottleneck,
                               dropout=c.dropout, global_embedding_tau=global_embedding_tau)
        self.reset_parameters(embeddings, label_embeddings)

    def reset_parameters(self, embeddings=None, label_embeddings=None) -> None:
        """U(-r, r) for every weight (paper Section 3.4), then copy the given embeddings."""
        r = self.config.init_range
        for p in self.parameters():
            nn.init.uniform_(p, -r, r)
        with torch.no_grad():
            if embeddings is not None:
                self.encoder.load_embeddings(embeddings)
            self.encoder.embedding.weight[0].zero_()  # <pad>
            if label_embeddings is not None:
                table = self.decoder.embedding.weight
                label_embeddings = torch.as_tensor(label_embeddings, dtype=table.dtype)
                if label_embeddings.shape[0] == table.shape[0]:
                    table.copy_(label_embeddings)
                elif label_embeddings.shape[0] == self.config.n_labels:
                    table[N_SPECIAL:].copy_(label_embeddings)
                else:
                    raise ValueError(f"label_embeddings has {label_embeddings.shape[0]} rows, expected "
                                     f"{table.shape[0]} (V) or {self.config.n_labels} (n_labels)")

    @property
    def label_embeddings(self) -> torch.Tensor:
        """The decoder's label embedding table ``E``, shape ``(V, label_embed_dim)``."""
        return self.decoder.embedding.weight

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> tuple[Memory, torch.Tensor]:
        """``src (B, S)``, ``src_mask (B, S)`` -> decoder memory and ``s_0 (B, D)``."""
        h, s0 = self.encoder(src, src_mask)  # (B, S, Dh), (B, D)
        if self.lightconv is None:
            return self.decoder.memory(h, src_mask), s0
        hh, hh_mask = self.lightconv(h, src_mask)  # (B, S', Dh), (B, S')
        return self.decoder.memory(h, src_mask, hh, hh_mask), s0

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (all, or only those with ``requires_grad``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
