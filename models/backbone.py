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
from typing import get_args

import torch
from torch import nn

from .attention import AttentionImpl
from .decoder import Decoder, Memory, OutputImpl
from .encoder import Encoder, EncoderImpl
from .lightconv import LightConv
from .specials import EMPTY, N_SPECIAL


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

    Choices where the authors' code and this toolkit's first version differ
    (``docs/fidelity.md`` has the measurements; the defaults are the authors'):

    dropout_sites : ``"authors"``: dropout on the word embeddings, between the
        encoder's GRU layers and on the decoder's input label embedding only.
        ``"all"``: also on the encoder outputs, between LightConv layers and on
        the output layer's whole input ``z``.
    lightconv_style : ``"authors"`` (one kernel per channel, no padding, ReLU
        after every layer) or ``"heads"`` (``lightconv_heads`` shared kernels,
        "same" padding); see ``models/lightconv.py``.
    empty_init : ``"zero"``: the ∅ row of the label embedding table starts at
        zero (the authors' ∅ is their padding row); ``"uniform"``: U(-r, r) like
        every other row.

    Speed choices: each picks between a slow readable reference and a fast path
    that computes the same function up to float rounding (``tests/test_cpu_paths.py``
    compares them, values and gradients). They own no weights, so a checkpoint
    loads with any of them; the defaults are the fastest paths that need no compiling.

    encoder_impl : how padding is kept out of the BiGRU (``models/encoder.py``).
        ``"packed"``: the reference, PyTorch's packed sequences; cuDNN runs them
        natively, so it is the fast path on CUDA, but its CPU backward is O(S²)
        (5.1 s vs 0.94 s for a plain GRU at B=32, S=512). ``"reversed"``: each row
        reversed within its length for the backward direction, linear in S, the
        fast path on a CPU. ``"auto"`` (default): packed on CUDA, reversed elsewhere.
    attention_impl : the attention scores and context (``models/attention.py``).
        ``"reference"``: Eq. 4 as written (``tanh``, autograd's ``bmm``) on every
        device. ``"auto"`` (default): on a CPU, ``tanh`` rewritten as a sigmoid
        (~8x faster there) and the context's backward as a broadcast outer product
        (~2.5x faster); the reference elsewhere (memory-bound on CUDA, no gain).
        ``"compiled"``: ``"auto"`` with the CPU path in float32/float64 compiled
        by ``torch.compile``: ~10% faster OTSeq2Set steps, but seconds of
        compiling per process, so it pays off on long runs only (``train.compile``,
        ``--compile``; falls back to ``"auto"`` with a warning where the compiler fails).
    output_impl : the backward of the decoder's ``V``-wide output layer in
        training (``models/decoder.py``). ``"per_step"``: the reference, autograd
        through one product per step, each adding a ``(V, z)`` gradient.
        ``"batched"`` (default): one product for all steps (``_StepLinear``),
        faster at large ``V`` on any device. SGM's global embedding feeds each
        step's logits into the next, so it always takes the per-step path.
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
    dropout_sites: str = "authors"
    lightconv_style: str = "authors"
    empty_init: str = "zero"
    encoder_impl: EncoderImpl = "auto"
    attention_impl: AttentionImpl = "auto"
    output_impl: OutputImpl = "batched"

    #: what a checkpoint written before these switches existed was trained with (a checkpoint
    #: without the speed choices gets their defaults: they change no weight)
    LEGACY_CHOICES = {"dropout_sites": "all", "lightconv_style": "heads", "empty_init": "uniform"}

    def __post_init__(self):
        for name, allowed in (("dropout_sites", ("authors", "all")), ("lightconv_style", ("authors", "heads")),
                              ("empty_init", ("zero", "uniform")), ("encoder_impl", get_args(EncoderImpl)),
                              ("attention_impl", get_args(AttentionImpl)), ("output_impl", get_args(OutputImpl))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")

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
        everywhere = c.dropout_sites == "all"
        self.encoder = Encoder(c.vocab_size, c.embed_dim, c.hidden_size, c.hidden_size,
                               num_layers=c.encoder_layers, dropout=c.dropout, output_dropout=everywhere,
                               impl=c.encoder_impl)
        ctx = self.encoder.output_size
        self.lightconv = (LightConv(ctx, c.lightconv_kernels, c.lightconv_heads, c.last_stride,
                                    c.dropout if everywhere else 0.0, style=c.lightconv_style)
                          if c.use_lightconv else None)
        self.decoder = Decoder(c.n_outputs, c.label_embed_dim, c.hidden_size, ctx,
                               use_lightconv=c.use_lightconv, bottleneck=c.bottleneck,
                               dropout=c.dropout, global_embedding_tau=global_embedding_tau,
                               output_dropout=everywhere, output_impl=c.output_impl,
                               attention_impl=c.attention_impl)
        self.reset_parameters(embeddings, label_embeddings)

    def reset_parameters(self, embeddings=None, label_embeddings=None) -> None:
        """U(-r, r) for every weight (paper Section 3.4), ∅'s row zeroed if asked, then the given embeddings copied."""
        r = self.config.init_range
        for p in self.parameters():
            nn.init.uniform_(p, -r, r)
        with torch.no_grad():
            if embeddings is not None:
                self.encoder.load_embeddings(embeddings)
            self.encoder.embedding.weight[0].zero_()  # <pad>
            if self.config.empty_init == "zero":
                self.decoder.embedding.weight[EMPTY].zero_()  # E_∅ = 0, the authors' padding row (a full table overrides)
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
