"""OTSeq2Set: a set decoder trained with bipartite matching and semantic OT.

Paper Section 2 (Fig. 1). The network is :class:`models.backbone.EncoderDecoder`
(BiGRU encoder, LightConv, masked attention, GRU decoder with optional
bottleneck) run for ``N`` steps with *student forcing*: step ``t`` is fed the
argmax of ``p_{t-1}`` in training as in inference (Eq. 8). The ``N`` output
distributions are treated as an unordered set: the loss (Eq. 11-17, in
``losses.set_loss``) matches them to the gold labels with the Hungarian method
(unmatched steps are trained towards ∅) and adds ``λ`` times the OT distance
between expected and gold label embeddings.

Ablations of Section 3.6 are config switches: ``use_lightconv=False``,
``ot_weight=0`` (the "BM" model), ``scheme="first_n"``, ``bottleneck=b``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from losses.set_loss import EMPTY_WEIGHT

from .backbone import BackboneConfig, EncoderDecoder
from .prediction import Prediction, prediction_from_steps
from .specials import BOS, EOS, N_SPECIAL, PAD


@dataclass
class OTSeq2SetConfig(BackboneConfig):
    """OTSeq2Set settings (defaults: Eurlex-4K, Table 2 and Section 3.4).

    n_steps : decoder steps ``N`` (max labels per document in the dataset).
    scheme : ``"all"`` or ``"first_n"`` bipartite matching (Eq. 11-12).
    empty_weight : ``λ_∅`` of Eq. 13.
    ot_weight : ``λ`` of Eq. 17 (0 disables the OT term).
    ipot_beta, ipot_iter, ipot_inner_iter : IPOT settings (Eq. 16).
    mask_repeats : masked softmax at inference (a label is never emitted twice).
    ipot_impl : ``"auto"`` (compiled IPOT loop on CUDA, eager elsewhere), ``"eager"`` or
        ``"fused"`` (see :func:`losses.set_loss.set_loss`); same plan up to rounding.
    """

    n_steps: int = 24
    scheme: str = "all"
    empty_weight: float = EMPTY_WEIGHT
    ot_weight: float = 8.0
    ipot_beta: float = 1.0
    ipot_iter: int = 50
    ipot_inner_iter: int = 1
    mask_repeats: bool = False
    ipot_impl: str = "auto"


class OTSeq2Set(EncoderDecoder):
    """Sequence-to-set model (Eq. 2-10) with the set loss of Eq. 17.

    Parameters
    ----------
    config : OTSeq2SetConfig
    embeddings : Tensor (vocab_size, embed_dim), optional
    label_embeddings : Tensor (V or n_labels, label_embed_dim), optional
    """

    label_order = "file"  # the set loss ignores the order

    def __init__(self, config: OTSeq2SetConfig, embeddings=None, label_embeddings=None):
        super().__init__(config, embeddings, label_embeddings)

    def _forbidden(self, device) -> torch.Tensor:
        forbidden = torch.zeros(self.config.n_outputs, dtype=torch.bool, device=device)
        forbidden[[PAD, BOS, EOS]] = True  # ∅ stays allowed
        return forbidden

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor, targets=None, target_mask=None,
                *, inference: bool = False):
        """Student-forced decoding over ``N`` steps.

        Parameters
        ----------
        src : LongTensor (B, S)
        src_mask : BoolTensor (B, S)
        targets, target_mask : ignored (the set model never uses teacher forcing).
        inference : bool
            Mask ``PAD``/``BOS``/``EOS`` (and repeats if ``config.mask_repeats``).

        Returns
        -------
        logits : Tensor (B, N, V)
        """
        return self.decode(src, src_mask, inference=inference).logits

    def decode(self, src, src_mask, *, inference: bool = False):
        """Like :meth:`forward` but returns the full :class:`models.decoder.DecodeOutput`."""
        memory, s0 = self.encode(src, src_mask)
        forbidden = self._forbidden(src.device) if inference else None
        return self.decoder.decode(memory, s0, self.config.n_steps, forbidden=forbidden,
                                   forbid_repeats=inference and self.config.mask_repeats)

    def compute_loss(self, batch) -> dict[str, torch.Tensor]:
        """Set loss (Eq. 17) of a batch: ``{"loss", "match", "ot"}``.

        ``targets = batch.labels + N_SPECIAL`` where ``batch.label_mask``; the
        label embeddings passed to the OT term are the decoder's table (the loss
        detaches them).
        """
        from losses.set_loss import set_loss

        c = self.config
        logits = self(batch.src, batch.src_mask)  # (B, N, V)
        targets = batch.labels + N_SPECIAL  # (B, n_max)
        return set_loss(logits.float(), targets, batch.label_mask,
                        self.label_embeddings if c.ot_weight > 0 else None,
                        scheme=c.scheme, empty_weight=c.empty_weight, ot_weight=c.ot_weight,
                        ipot_beta=c.ipot_beta, ipot_iter=c.ipot_iter, ipot_inner_iter=c.ipot_inner_iter,
                        ipot_impl=c.ipot_impl)

    @torch.no_grad()
    def predict(self, batch, top_k: int | None = None) -> Prediction:
        """Label sets (distinct non-∅ argmaxes of the ``N`` steps) and max-probability scores.

        ``PAD``/``BOS``/``EOS`` are masked out (∅ is kept and dropped from the
        sets). Call ``model.eval()`` first to switch dropout off.
        """
        out = self.decode(batch.src, batch.src_mask, inference=True)
        return prediction_from_steps(out.logits, out.tokens, out.alive, top_k=top_k)
