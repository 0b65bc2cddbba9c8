"""Sequence cross-entropy for the Seq2Seq / MLC2Seq / SGM baselines (OTSeq2Set Section 3.3).

The baselines are trained by teacher forcing on the label sequence in a fixed
order (file order for Seq2Seq, frequent-to-rare for MLC2Seq and SGM), ending
with EOS. Unlike the set loss (:mod:`losses.set_loss`), this loss depends on
the order of the targets: it is *not* permutation invariant.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["sequence_cross_entropy"]


def sequence_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, target_mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    r"""Mean token cross-entropy over the real target positions.

    .. math::

        \mathcal{L}_{CE} = -\frac{1}{\sum_{b,t} m_{bt}} \sum_{b,t} m_{bt} \log p_{bt}(y_{bt})

    with :math:`\log p` from ``log_softmax`` in float32 (float64 stays float64).

    Parameters
    ----------
    logits : Tensor, shape (B, T, V)
        Decoder scores at each target position.
    targets : LongTensor, shape (B, T)
        Target output ids; entries where ``target_mask`` is False are ignored.
    target_mask : BoolTensor, shape (B, T)
        True on real target positions (including the final EOS).

    Returns
    -------
    dict of str to Tensor
        ``{"loss", "ce"}``, both the same 0-d tensor (0 when there is no real
        position).
    """
    if logits.dim() != 3:
        raise ValueError(f"logits must have shape (B, T, V), got {tuple(logits.shape)}")
    if tuple(targets.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"targets must have shape (B, T) = {tuple(logits.shape[:2])}, got {tuple(targets.shape)}")
    if tuple(target_mask.shape) != tuple(targets.shape):
        raise ValueError(f"target_mask must have shape {tuple(targets.shape)}, got {tuple(target_mask.shape)}")
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=logits.device.type, enabled=False):
        mask = target_mask.to(device=logits.device, dtype=torch.bool)  # (B, T)
        index = targets.to(device=logits.device, dtype=torch.long).masked_fill(~mask, 0)  # (B, T)
        log_probs = F.log_softmax(logits.to(dtype), dim=-1)  # (B, T, V)
        nll = -log_probs.gather(2, index.unsqueeze(2)).squeeze(2)  # (B, T)
        nll = nll.masked_fill(~mask, 0.0)
        ce = nll.sum() / mask.sum().clamp(min=1).to(dtype)
    return {"loss": ce, "ce": ce}
