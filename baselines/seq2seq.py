"""Sequence baselines of paper Section 3.3: Seq2Seq, MLC2Seq and SGM.

All three are the :class:`models.backbone.EncoderDecoder` network (by default
without LightConv, as in the paper's baselines) trained with teacher forcing
and token cross-entropy to emit the gold labels as a sequence closed by
``EOS``; at inference they decode greedily until ``EOS`` or ``max_steps``.

* Seq2Seq (Bahdanau et al., 2015): labels in file order.
* MLC2Seq (Nam et al., 2017): labels from frequent to rare (the data layer
  orders them, reading :attr:`label_order`).
* SGM (Yang et al., 2018): MLC2Seq order, the global embedding
  (:class:`models.decoder.GlobalEmbedding`, ``τ = 0.1``) as decoder input and a
  masked softmax at inference so that a label is never emitted twice.

Specials (∅, ``PAD``, ``BOS``) are never predicted; ``EOS`` ends a sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models.backbone import BackboneConfig, EncoderDecoder
from models.prediction import Prediction, prediction_from_steps
from models.specials import BOS, EMPTY, EOS, N_SPECIAL, PAD


@dataclass
class Seq2SeqConfig(BackboneConfig):
    """Settings of the sequence baselines.

    max_steps : longest label sequence decoded at inference (``EOS`` included).
    global_embedding : SGM's global embedding; ``tau`` its temperature.
    mask_repeats : masked softmax at inference (a label is never emitted twice).
    """

    use_lightconv: bool = False
    max_steps: int = 25
    global_embedding: bool = False
    tau: float = 0.1
    mask_repeats: bool = False


def sequence_targets(labels: torch.Tensor, label_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decoder inputs and targets for teacher forcing.

    Real labels are packed to the front (keeping their order), shifted to
    output ids and closed by ``EOS``.

    Parameters
    ----------
    labels : LongTensor (B, n_max), dataset ids.
    label_mask : BoolTensor (B, n_max)

    Returns
    -------
    inputs : LongTensor (B, n_max + 1), ``BOS y_1 ... y_n PAD ...``
    targets : LongTensor (B, n_max + 1), ``y_1 ... y_n EOS PAD ...``
    target_mask : BoolTensor (B, n_max + 1), True on ``y_1 .. y_n, EOS``.
    """
    B = labels.shape[0]
    order = torch.argsort((~label_mask).to(torch.int8), dim=1, stable=True)  # real labels first
    packed = (labels + N_SPECIAL).gather(1, order)  # (B, n_max)
    lengths = label_mask.sum(1)  # (B,)
    pos = torch.arange(labels.shape[1] + 1, device=labels.device).expand(B, -1)  # (B, n_max + 1)
    body = torch.cat([packed, packed.new_full((B, 1), PAD)], dim=1)
    targets = torch.where(pos < lengths[:, None], body, torch.full_like(body, PAD))
    targets = torch.where(pos == lengths[:, None], torch.full_like(body, EOS), targets)
    inputs = torch.cat([targets.new_full((B, 1), BOS), targets[:, :-1]], dim=1)
    inputs = inputs.masked_fill(inputs == EOS, PAD)
    return inputs, targets, pos <= lengths[:, None]


class Seq2Seq(EncoderDecoder):
    """Attention Seq2Seq over label sequences in file order.

    Parameters
    ----------
    config : Seq2SeqConfig
    embeddings : Tensor (vocab_size, embed_dim), optional
    label_embeddings : Tensor (V or n_labels, label_embed_dim), optional
    """

    label_order = "file"

    def __init__(self, config: Seq2SeqConfig, embeddings=None, label_embeddings=None):
        super().__init__(config, embeddings, label_embeddings,
                         global_embedding_tau=config.tau if config.global_embedding else None)

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor, targets=None, target_mask=None):
        """Teacher-forced logits ``(B, T, V)`` for ``targets (B, T)`` (output ids).

        ``targets`` is the target sequence (``y_1 .. y_n EOS PAD ..``); the
        decoder is fed ``BOS y_1 .. y_{T-1}``. Without targets, greedy decoding
        for ``max_steps`` steps.
        """
        memory, s0 = self.encode(src, src_mask)
        if targets is None:
            return self.decoder.decode(memory, s0, self.config.max_steps).logits
        inputs = torch.cat([targets.new_full((targets.shape[0], 1), BOS), targets[:, :-1]], dim=1)
        inputs = inputs.masked_fill((inputs == EOS) | (inputs == EMPTY), PAD)
        return self.decoder.decode(memory, s0, targets.shape[1], inputs=inputs).logits

    def compute_loss(self, batch) -> dict[str, torch.Tensor]:
        """Token cross-entropy over ``y_1 .. y_n EOS`` in the batch's label order."""
        from losses.sequence import sequence_cross_entropy

        _, targets, target_mask = sequence_targets(batch.labels, batch.label_mask)
        logits = self(batch.src, batch.src_mask, targets, target_mask)  # (B, T, V)
        return sequence_cross_entropy(logits.float(), targets, target_mask)

    def _forbidden(self, device) -> torch.Tensor:
        forbidden = torch.zeros(self.config.n_outputs, dtype=torch.bool, device=device)
        forbidden[[EMPTY, PAD, BOS]] = True  # EOS stays allowed: it ends the sequence
        return forbidden

    @torch.no_grad()
    def predict(self, batch, top_k: int | None = None) -> Prediction:
        """Greedy decoding until ``EOS`` (or ``max_steps``); labels before ``EOS``.

        ∅/``PAD``/``BOS`` are masked out, and with ``mask_repeats`` (SGM) every
        label already emitted. Call ``model.eval()`` first to switch dropout off.
        """
        memory, s0 = self.encode(batch.src, batch.src_mask)
        out = self.decoder.decode(memory, s0, self.config.max_steps, forbidden=self._forbidden(s0.device),
                                  forbid_repeats=self.config.mask_repeats, stop_at_eos=True)
        return prediction_from_steps(out.logits, out.tokens, out.alive, top_k=top_k)


class MLC2Seq(Seq2Seq):
    """Seq2Seq trained on labels sorted from frequent to rare (Nam et al., 2017)."""

    label_order = "frequency"


@dataclass
class SGMConfig(Seq2SeqConfig):
    """SGM: global embedding (τ = 0.1) and masked softmax at inference."""

    global_embedding: bool = True
    tau: float = 0.1
    mask_repeats: bool = True


class SGM(Seq2Seq):
    """Sequence generation model of Yang et al. (2018), frequency order."""

    label_order = "frequency"

    def __init__(self, config: SGMConfig, embeddings=None, label_embeddings=None):
        super().__init__(config, embeddings, label_embeddings)
