"""The encoder's linear-time CPU path equals the packed-sequence reference (values and gradients)."""

from __future__ import annotations

import pytest
import torch

from models.encoder import Encoder, bigru_packed, bigru_reversed, reverse_within_length


def _batch(lengths, S, vocab=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.as_tensor(lengths)
    mask = torch.arange(S)[None, :] < lengths[:, None]  # (B, S)
    src = torch.randint(2, vocab, (len(lengths), S), generator=g).masked_fill(~mask, 0)
    return src, mask


def _encoder(num_layers=2, dropout=0.0, seed=0, impl="auto"):
    torch.manual_seed(seed)  # the same weights for every impl
    return Encoder(50, 6, 5, 7, num_layers=num_layers, dropout=dropout, impl=impl).double()


def _run(enc, src, mask):
    enc.zero_grad()
    h, s0 = enc(src, mask)
    # a loss that weighs every position and both outputs differently
    w = torch.linspace(-1, 1, h.numel(), dtype=h.dtype).reshape(h.shape)
    ((h * w).sum() + (s0 ** 2).sum()).backward()
    return h.detach(), s0.detach(), {n: p.grad.clone() for n, p in enc.named_parameters()}


def test_reverse_within_length_is_its_own_inverse_and_keeps_padding():
    idx = reverse_within_length(torch.tensor([3, 1, 5]), 5)
    assert idx.tolist() == [[2, 1, 0, 3, 4], [0, 1, 2, 3, 4], [4, 3, 2, 1, 0]]
    x = torch.arange(15.0).reshape(3, 5)
    assert torch.equal(x.gather(1, idx).gather(1, idx), x)


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_reversed_equals_packed_values_and_gradients(num_layers):
    S = 9
    src, mask = _batch([9, 1, 4, 9, 2, 7], S)  # lengths 1 and S included, unsorted
    h_p, s_p, g_p = _run(_encoder(num_layers, impl="packed"), src, mask)
    h_r, s_r, g_r = _run(_encoder(num_layers, impl="reversed"), src, mask)
    torch.testing.assert_close(h_r, h_p, rtol=0, atol=1e-12)
    torch.testing.assert_close(s_r, s_p, rtol=0, atol=1e-12)
    assert (h_r[~mask] == 0).all()
    for name in g_p:
        torch.testing.assert_close(g_r[name], g_p[name], rtol=1e-10, atol=1e-12, msg=name)
    assert g_r["rnn.weight_hh_l0_reverse"].abs().sum() > 0  # the backward direction got a gradient


def test_reversed_last_state_is_forward_at_last_token_and_backward_at_first():
    enc = _encoder(2, impl="reversed")
    src, mask = _batch([5, 2, 3], 5)
    x = enc.embedding(src)
    h, last = bigru_reversed(enc.rnn, x, mask.sum(1))
    H = enc.rnn.hidden_size
    for b, n in enumerate([5, 2, 3]):
        torch.testing.assert_close(last[b, :H], h[b, n - 1, :H])
        torch.testing.assert_close(last[b, H:], h[b, 0, H:])
    _, last_packed = bigru_packed(enc.rnn, x, mask.sum(1))
    torch.testing.assert_close(last, last_packed, rtol=0, atol=1e-12)


def test_a_row_alone_equals_the_same_row_inside_a_padded_batch():
    enc = _encoder(2, impl="reversed").eval()
    src, mask = _batch([8, 3, 6], 8)
    h, s0 = enc(src, mask)
    for b, n in enumerate([8, 3, 6]):
        h1, s1 = enc(src[b:b + 1, :n], mask[b:b + 1, :n])
        torch.testing.assert_close(h1[0], h[b, :n], rtol=0, atol=1e-12)
        torch.testing.assert_close(s1[0], s0[b], rtol=0, atol=1e-12)


def test_eval_mode_with_dropout_equals_packed():
    src, mask = _batch([6, 2, 4], 6)
    h_p, s_p, _ = _run(_encoder(2, dropout=0.5, impl="packed").eval(), src, mask)
    h_r, s_r, _ = _run(_encoder(2, dropout=0.5, impl="reversed").eval(), src, mask)
    torch.testing.assert_close(h_r, h_p, rtol=0, atol=1e-12)
    torch.testing.assert_close(s_r, s_p, rtol=0, atol=1e-12)


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_training_dropout_between_layers_is_applied(num_layers, monkeypatch):
    import models.encoder as m

    enc = _encoder(num_layers, dropout=0.5, impl="reversed").train()
    calls = []
    real = m.F.dropout
    monkeypatch.setattr(m.F, "dropout", lambda x, p, training, *a: calls.append((tuple(x.shape), p, training))
                        or real(x, p, training, *a))
    B, S, E, H = 2, 6, 6, enc.rnn.hidden_size
    enc(*_batch([6, 4], S))
    # the word embeddings (nn.Dropout), then nn.GRU's sites: the input of every layer but the
    # first, at the GRU's rate
    assert calls == [((B, S, E), 0.5, True)] + [((B, S, 2 * H), 0.5, True)] * (num_layers - 1)
    calls.clear()
    enc.eval()(*_batch([6, 4], S))
    assert calls == [((B, S, E), 0.5, False)] + [((B, S, 2 * H), 0.5, False)] * (num_layers - 1)


def test_auto_uses_the_reversed_path_on_cpu(monkeypatch):
    enc = _encoder(1)
    called = []
    import models.encoder as m
    monkeypatch.setattr(m, "bigru_reversed", lambda *a: called.append(1) or bigru_packed(*a))
    src, mask = _batch([3, 2], 3)
    enc(src, mask)
    assert called == [1]


def test_empty_row_is_a_clear_error():
    enc = _encoder(1, impl="reversed")
    src, mask = _batch([3, 0], 3)
    with pytest.raises(ValueError, match="at least one real token"):
        enc(src, mask)
    with pytest.raises(ValueError, match="Encoder impl"):
        _encoder(1, impl="bogus")
