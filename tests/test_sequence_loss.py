"""Sequence cross-entropy (losses/sequence.py): hand cases, padding, and order dependence."""

import math

import pytest
import torch
import torch.nn.functional as F

from losses import sequence_cross_entropy


def test_hand_computed_mean_over_real_positions():
    probs = torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]], dtype=torch.float64)
    targets = torch.tensor([[0, 1, 2]])
    mask = torch.tensor([[True, True, False]])
    out = sequence_cross_entropy(probs.log(), targets, mask)
    expected = (-math.log(0.5) - math.log(0.8)) / 2
    assert out["ce"].item() == pytest.approx(expected, rel=1e-12)
    assert out["loss"] is out["ce"]


def test_matches_torch_cross_entropy_with_ignore_index():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 7, 11, generator=g)
    targets = torch.randint(0, 11, (4, 7), generator=g)
    mask = torch.rand(4, 7, generator=g) < 0.7
    out = sequence_cross_entropy(logits, targets, mask)
    ref = F.cross_entropy(logits.reshape(-1, 11), targets.masked_fill(~mask, -100).reshape(-1), ignore_index=-100)
    torch.testing.assert_close(out["loss"], ref)


def test_changes_with_label_order():
    """Unlike the set loss, shuffling the gold sequence changes the loss."""
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 4, 10, generator=g, dtype=torch.float64)
    targets = torch.tensor([[4, 5, 6, 3]])  # three labels then EOS
    mask = torch.ones(1, 4, dtype=torch.bool)
    shuffled = torch.tensor([[6, 4, 5, 3]])
    a = sequence_cross_entropy(logits, targets, mask)["loss"]
    b = sequence_cross_entropy(logits, shuffled, mask)["loss"]
    assert abs(a.item() - b.item()) > 1e-3


def test_padding_and_gradients_finite_and_no_positions():
    logits = (torch.randn(2, 3, 5) * 50).requires_grad_()
    targets = torch.tensor([[1, 2, -7], [0, 0, 0]])  # junk id under the padding
    mask = torch.tensor([[True, True, False], [False, False, False]])
    out = sequence_cross_entropy(logits, targets, mask)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and torch.isfinite(logits.grad).all()
    assert logits.grad[1].abs().sum() == 0
    empty = sequence_cross_entropy(logits, targets, torch.zeros(2, 3, dtype=torch.bool))
    assert empty["loss"].item() == 0.0


def test_bf16_input_computed_in_float32():
    logits = torch.randn(2, 3, 5)
    targets = torch.tensor([[1, 2, 3], [0, 4, 1]])
    mask = torch.ones(2, 3, dtype=torch.bool)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sequence_cross_entropy(logits.bfloat16(), targets, mask)
    assert out["loss"].dtype == torch.float32
    torch.testing.assert_close(out["loss"], sequence_cross_entropy(logits.bfloat16().float(), targets, mask)["loss"])


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="targets"):
        sequence_cross_entropy(torch.randn(2, 3, 5), torch.zeros(2, 4, dtype=torch.long), torch.ones(2, 4, dtype=torch.bool))
