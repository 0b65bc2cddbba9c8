"""The OTSeq2Set loss (losses/set_loss.py): reference agreement, hand cases and invariances."""

import math

import numpy as np
import ot
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from losses import assign_targets, set_loss
from losses.set_loss import cosine_distance, set_loss_reference

TERMS = ("loss", "match", "ot")


def _batch(seed, B=5, N=6, V=40, n_max=6, E=8, dtype=torch.float64, empty_row=True):
    """Random tie-free batch: distinct gold labels per row (output ids >= 4)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, N, V, generator=g, dtype=dtype) * 2
    targets = torch.stack([torch.randperm(V - 4, generator=g)[:n_max] + 4 for _ in range(B)])
    counts = torch.randint(1, min(N, n_max) + 1, (B,), generator=g)
    if empty_row:
        counts[-1] = 0
    mask = torch.arange(n_max)[None] < counts[:, None]
    targets = targets.masked_fill(~mask, 0)
    emb = torch.randn(V, E, generator=g, dtype=dtype)
    return logits, targets, mask, emb


@pytest.mark.parametrize("ot_weight", [8.0, 0.0])
@pytest.mark.parametrize("scheme", ["all", "first_n"])
def test_matches_per_example_reference_forward_and_gradients(scheme, ot_weight):
    """The batched loss (fused softmax/NLL backward, batched IPOT) == plain autograd per example."""
    logits, targets, mask, emb = _batch(0)
    lf = logits.clone().requires_grad_()
    lr = logits.clone().requires_grad_()
    fast = set_loss(lf, targets, mask, emb, scheme=scheme, ot_weight=ot_weight)
    ref = set_loss_reference(lr, targets, mask, emb, scheme=scheme, ot_weight=ot_weight)
    for k in TERMS:
        assert fast[k].shape == ()
        torch.testing.assert_close(fast[k], ref[k], rtol=1e-9, atol=1e-10)
    fast["loss"].backward()
    ref["loss"].backward()
    torch.testing.assert_close(lf.grad, lr.grad, rtol=1e-8, atol=1e-10)
    none_f = set_loss(logits, targets, mask, emb, scheme=scheme, ot_weight=ot_weight, reduction="none")
    none_r = set_loss_reference(logits, targets, mask, emb, scheme=scheme, ot_weight=ot_weight, reduction="none")
    for k in ("loss", "match", "ot", "match_weight"):
        torch.testing.assert_close(none_f[k], none_r[k], rtol=1e-9, atol=1e-10)


def test_hand_computed_matching_loss():
    # N = 3 steps, V = 6, one gold label (id 5); step 1 is the most likely for it.
    logits = torch.log(torch.tensor([[
        [0.5, 0.1, 0.1, 0.1, 0.1, 0.1],
        [0.1, 0.1, 0.1, 0.1, 0.1, 0.5],
        [0.3, 0.1, 0.1, 0.1, 0.2, 0.2],
    ]], dtype=torch.float64))
    out = set_loss(logits, torch.tensor([[5]]), torch.tensor([[True]]), ot_weight=0.0, empty_weight=0.2)
    expected = (-math.log(0.5) + 0.2 * (-math.log(0.5)) + 0.2 * (-math.log(0.3))) / (1 + 0.2 + 0.2)
    assert out["match"].item() == pytest.approx(expected, rel=1e-12)
    assert out["ot"].item() == 0.0 and out["loss"].item() == pytest.approx(expected, rel=1e-12)
    # first_n: the label must take step 0
    out = set_loss(logits, torch.tensor([[5]]), torch.tensor([[True]]), ot_weight=0.0, scheme="first_n")
    expected = (-math.log(0.1) + 0.2 * (-math.log(0.1)) + 0.2 * (-math.log(0.3))) / 1.4
    assert out["match"].item() == pytest.approx(expected, rel=1e-12)


def test_ot_term_equals_exact_ot_of_cosine_cost():
    logits, targets, mask, emb = _batch(1, empty_row=False)
    out = set_loss(logits, targets, mask, emb, ipot_iter=2000, reduction="none")
    p = logits.softmax(-1)
    for b in range(logits.shape[0]):
        labels = targets[b][mask[b]]
        X, Y = (p[b] @ emb).numpy(), emb[labels].numpy()
        C = 1 - (X @ Y.T) / np.linalg.norm(X, axis=1)[:, None] / np.linalg.norm(Y, axis=1)[None]
        N, n = C.shape
        exact = ot.emd2(np.full(N, 1 / N), np.full(n, 1 / n), C)
        assert out["ot"][b].item() == pytest.approx(exact, rel=1e-3, abs=1e-6)


def test_total_is_match_plus_weighted_ot_and_mean_over_batch():
    logits, targets, mask, emb = _batch(2)
    out = set_loss(logits, targets, mask, emb, ot_weight=3.0)
    per = set_loss(logits, targets, mask, emb, ot_weight=3.0, reduction="none")
    torch.testing.assert_close(out["loss"], out["match"] + 3.0 * out["ot"])
    torch.testing.assert_close(out["ot"], per["ot"].mean())  # the empty row counts as 0
    assert per["ot"][-1].item() == 0.0
    torch.testing.assert_close(out["match"], (per["match"] * per["match_weight"]).sum() / per["match_weight"].sum())


def test_batch_of_one_equals_batch_of_copies():
    logits, targets, mask, emb = _batch(3, B=1, empty_row=False)
    one = set_loss(logits, targets, mask, emb)
    four = set_loss(logits.expand(4, -1, -1), targets.expand(4, -1), mask.expand(4, -1), emb)
    for k in TERMS:
        torch.testing.assert_close(one[k], four[k], rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), scheme=st.sampled_from(["all", "first_n"]), B=st.integers(1, 4),
       N=st.integers(1, 6), n_max=st.integers(1, 6))
def test_property_invariant_to_gold_label_order(seed, scheme, B, N, n_max):
    n_max = min(n_max, N)
    logits, targets, mask, emb = _batch(seed, B=B, N=N, n_max=n_max, empty_row=False)
    g = torch.Generator().manual_seed(seed + 1)
    perm = torch.stack([torch.randperm(n_max, generator=g) for _ in range(B)])  # (B, n_max)
    shuffled_t, shuffled_m = targets.gather(1, perm), mask.gather(1, perm)  # padding moves too
    a = set_loss(logits, targets, mask, emb, scheme=scheme, reduction="none")
    b = set_loss(logits, shuffled_t, shuffled_m, emb, scheme=scheme, reduction="none")
    for k in ("loss", "match", "ot", "match_weight"):
        torch.testing.assert_close(a[k], b[k], rtol=1e-6, atol=1e-9)
    # float32 as well
    a32 = set_loss(logits.float(), targets, mask, emb.float(), scheme=scheme)
    b32 = set_loss(logits.float(), shuffled_t, shuffled_m, emb.float(), scheme=scheme)
    for k in TERMS:
        torch.testing.assert_close(a32[k], b32[k], rtol=1e-5, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), scheme=st.sampled_from(["all", "first_n"]))
def test_property_equivariant_to_batch_order(seed, scheme):
    logits, targets, mask, emb = _batch(seed, B=5)
    perm = torch.randperm(5, generator=torch.Generator().manual_seed(seed))
    a = set_loss(logits, targets, mask, emb, scheme=scheme, reduction="none")
    b = set_loss(logits[perm], targets[perm], mask[perm], emb, scheme=scheme, reduction="none")
    for k in ("loss", "match", "ot", "match_weight"):
        torch.testing.assert_close(a[k][perm], b[k], rtol=1e-9, atol=1e-12)
    ma = set_loss(logits, targets, mask, emb, scheme=scheme)
    mb = set_loss(logits[perm], targets[perm], mask[perm], emb, scheme=scheme)
    for k in TERMS:
        torch.testing.assert_close(ma[k], mb[k], rtol=1e-9, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), extra=st.integers(1, 4), scheme=st.sampled_from(["all", "first_n"]))
def test_property_invariant_to_padding_label_columns(seed, extra, scheme):
    logits, targets, mask, emb = _batch(seed, B=4, N=5, n_max=4)
    g = torch.Generator().manual_seed(seed)
    junk = torch.randint(0, logits.shape[2], (4, extra), generator=g)  # any valid id in the padding
    t2 = torch.cat([targets, junk], 1)
    m2 = torch.cat([mask, torch.zeros(4, extra, dtype=torch.bool)], 1)
    a = set_loss(logits, targets, mask, emb, scheme=scheme, reduction="none")
    b = set_loss(logits, t2, m2, emb, scheme=scheme, reduction="none")
    for k in ("loss", "match", "ot"):
        torch.testing.assert_close(a[k], b[k], rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), scheme=st.sampled_from(["all", "first_n"]),
       beta=st.sampled_from([1.0, 0.5, 0.05]), scale=st.sampled_from([0.0, 1.0, 30.0]))
def test_property_gradients_finite(seed, scheme, beta, scale):
    logits, targets, mask, emb = _batch(seed, B=4, N=5, n_max=5, dtype=torch.float32)
    logits = (logits * scale).requires_grad_()  # scale 0: all ties; 30: saturated softmax
    emb = emb.clone().requires_grad_()
    out = set_loss(logits, targets, mask, emb, scheme=scheme, ipot_beta=beta)
    out["loss"].backward()
    assert all(torch.isfinite(out[k]) for k in TERMS)
    assert torch.isfinite(logits.grad).all()
    assert emb.grad is None  # embeddings are detached in the OT term


def test_bf16_autocast_inputs_computed_in_float32():
    logits, targets, mask, emb = _batch(4, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = set_loss(logits.bfloat16(), targets, mask, emb)
    assert all(out[k].dtype == torch.float32 for k in TERMS)
    ref = set_loss(logits.bfloat16().float(), targets, mask, emb)
    for k in TERMS:
        torch.testing.assert_close(out[k], ref[k], rtol=1e-5, atol=1e-6)


def test_ot_weight_zero_needs_no_embeddings_and_uses_log_softmax():
    logits, targets, mask, _ = _batch(5, dtype=torch.float32)
    logits = logits * 100  # log(softmax) would give -inf here
    out = set_loss(logits, targets, mask, ot_weight=0.0)
    assert out["ot"].item() == 0.0 and torch.isfinite(out["loss"])
    torch.testing.assert_close(out["loss"], out["match"])
    # the match term is the weighted NLL of Eq. 13 from its definition, logsumexp(z) - z_y, here in
    # float64, although float32 softmax is exactly 0 at some matched targets (log(softmax) = -inf)
    probs = torch.softmax(logits, -1)  # (B, N, V), what the loss matches on
    assigned = assign_targets(probs, targets, mask, "all", empty_id=0)  # (B, N); optimal: test_matching.py
    assert (probs.gather(2, assigned.unsqueeze(2)) == 0).any()  # the case log(softmax) cannot handle
    z = logits.double()
    nll = torch.logsumexp(z, -1) - z.gather(2, assigned.unsqueeze(2)).squeeze(2)  # (B, N)
    w = torch.where(assigned == 0, 0.2, 1.0).double()  # lambda_empty = 0.2 on the empty label
    torch.testing.assert_close(out["match"].double(), (w * nll).sum() / w.sum(), rtol=1e-6, atol=0)


def test_cosine_distance_hand_case():
    x = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    y = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]]])
    torch.testing.assert_close(cosine_distance(x, y), torch.tensor([[[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]]]))


def test_bad_arguments_raise_named_errors():
    logits, targets, mask, emb = _batch(6)
    with pytest.raises(ValueError, match="label_embeddings"):
        set_loss(logits, targets, mask)
    with pytest.raises(ValueError, match="label_embeddings must have shape"):
        set_loss(logits, targets, mask, emb[:5])
    with pytest.raises(ValueError, match="logits"):
        set_loss(logits[0], targets, mask, emb)
    with pytest.raises(ValueError, match="scheme"):
        set_loss(logits, targets, mask, emb, scheme="first")
    with pytest.raises(ValueError, match="target_mask"):
        set_loss(logits, targets, mask[:, :2], emb)
    with pytest.raises(ValueError, match="reduction"):
        set_loss(logits, targets, mask, emb, reduction="sum")
