"""Switches between the authors' choices and this toolkit's first ones: each changes what it says."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch
from torch import nn

from models import LightConv, LightConvLayer, OTSeq2Set, OTSeq2SetConfig
from models.specials import EMPTY, N_SPECIAL
from xmtc.config import preset
from xmtc.registry import model_from_checkpoint

BASE = dict(vocab_size=40, n_labels=9, embed_dim=8, label_embed_dim=6, hidden_size=8,
            lightconv_kernels=(3, 7), lightconv_heads=2, n_steps=4, dropout=0.2)


def _model(**kw):
    torch.manual_seed(0)
    return OTSeq2Set(OTSeq2SetConfig(**dict(BASE, **kw)))


def _batch(lengths, S):
    mask = torch.arange(S)[None] < torch.tensor(lengths)[:, None]
    src = torch.randint(2, 40, (len(lengths), S), generator=torch.Generator().manual_seed(0)).masked_fill(~mask, 0)
    return src, mask


def test_empty_row_is_zero_only_when_asked():
    assert torch.equal(_model().label_embeddings[EMPTY], torch.zeros(6))  # the default: the authors' zero row
    uniform = _model(empty_init="uniform").label_embeddings
    assert uniform[EMPTY].abs().min() > 0 and uniform[EMPTY].abs().max() <= 0.1
    # label embeddings given for the labels only leave ∅ at zero; a full table is copied as given
    labels = torch.randn(9, 6)
    model = OTSeq2Set(OTSeq2SetConfig(**BASE), label_embeddings=labels)
    assert torch.equal(model.label_embeddings[EMPTY], torch.zeros(6))
    assert torch.equal(model.label_embeddings[N_SPECIAL:], labels)


def _dropout_calls(model, src, mask) -> dict[str, int]:
    """Calls of each active dropout module (p > 0) in one training forward."""
    calls: dict[str, int] = {}
    hooks = [m.register_forward_hook(lambda m, i, o, name=name: calls.__setitem__(name, calls.get(name, 0) + 1))
             for name, m in model.named_modules() if isinstance(m, nn.Dropout) and m.p > 0]
    model.train()(src, mask)
    for h in hooks:
        h.remove()
    return calls


def test_dropout_sites_counted():
    src, mask = _batch([9, 5], 9)
    authors = _model()
    assert _dropout_calls(authors, src, mask) == {"encoder.dropout": 1, "decoder.dropout": 4}
    assert authors.encoder.rnn.dropout == 0.2  # between the encoder's GRU layers
    everywhere = _model(dropout_sites="all")
    assert _dropout_calls(everywhere, src, mask) == {
        "encoder.dropout": 1, "encoder.output_dropout": 1, "lightconv.dropout": 1,  # one LightConv layer boundary
        "decoder.dropout": 4, "decoder.output_dropout": 4}


def test_authors_lightconv_one_kernel_per_channel_valid_padding_relu_last():
    torch.manual_seed(0)
    conv = LightConv(4, (3, 7), heads=2, last_stride=2, style="authors")
    assert [tuple(layer.weight.shape) for layer in conv.layers] == [(4, 3), (4, 7)]
    x = torch.randn(3, 12, 4)
    mask = torch.arange(12)[None] < torch.tensor([[12], [9], [2]])
    y, out_mask = conv(x, mask)
    # valid: 12 -> 10 positions; then K=7, stride 2: (10 - 7) // 2 + 1 = 2
    assert y.shape == (3, 2, 4)
    # real windows: l=12 -> 10 -> 2; l=9 -> 7 -> 1; l=2 -> 1 (forced) -> 1 (forced)
    assert out_mask.tolist() == [[True, True], [True, False], [True, False]]
    assert (y >= 0).all() and (y[~out_mask] == 0).all()
    y_ref, m_ref = conv.reference_forward(x, mask)
    torch.testing.assert_close(y, y_ref)
    assert torch.equal(out_mask, m_ref)


def test_valid_padding_output_equals_an_explicit_window_sum():
    torch.manual_seed(1)
    layer = LightConvLayer(3, 4, heads=3, stride=1, padding="valid")
    x = torch.randn(1, 6, 3)
    y, _ = layer(x, torch.ones(1, 6, dtype=torch.bool))
    w = torch.softmax(layer.weight, -1)  # (C, K), one kernel per channel
    for j in range(3):
        torch.testing.assert_close(y[0, j], (x[0, j:j + 4] * w.t()).sum(0))
    short, short_mask = layer(x[:, :2], torch.ones(1, 2, dtype=torch.bool))  # shorter than the kernel
    assert short.shape == (1, 1, 3) and short_mask.tolist() == [[True]]
    torch.testing.assert_close(short[0, 0], (x[0, :2] * w.t()[:2]).sum(0))


def test_heads_style_keeps_same_padding_and_shared_kernels():
    conv = LightConv(4, (3, 7), heads=2, last_stride=2, style="heads")
    assert [tuple(layer.weight.shape) for layer in conv.layers] == [(2, 3), (2, 7)]
    y, m = conv(torch.randn(2, 9, 4), torch.ones(2, 9, dtype=torch.bool))
    assert y.shape == (2, 5, 4) and m.shape == (2, 5)
    one_layer = LightConv(4, (3,), heads=2, last_stride=1, style="heads")  # a convex combination of x
    assert (one_layer(torch.randn(2, 9, 4), torch.ones(2, 9, dtype=torch.bool))[0] < 0).any()  # no ReLU on the output
    authors = LightConv(4, (3,), heads=2, last_stride=1, style="authors")
    assert (authors(torch.randn(2, 9, 4), torch.ones(2, 9, dtype=torch.bool))[0] >= 0).all()


def test_bad_choice_is_a_clear_error():
    with pytest.raises(ValueError, match="dropout_sites"):
        OTSeq2SetConfig(**dict(BASE, dropout_sites="some"))
    with pytest.raises(ValueError, match="lightconv_style"):
        OTSeq2SetConfig(**dict(BASE, lightconv_style="dynamic"))


def test_checkpoint_without_the_switches_loads_with_the_legacy_choices():
    old = _model(dropout_sites="all", lightconv_style="heads", empty_init="uniform")
    cfg = asdict(old.config)
    for k in ("dropout_sites", "lightconv_style", "empty_init"):
        del cfg[k]
    state = {"model_type": "otseq2set", "model_config": cfg, "model": old.state_dict()}
    model = model_from_checkpoint(state)
    assert model.config.lightconv_style == "heads" and model.config.dropout_sites == "all"
    src, mask = _batch([9, 3], 9)
    torch.testing.assert_close(model.eval()(src, mask), old.eval()(src, mask))


def test_authors_defaults_in_the_run_config():
    net = preset("eurlex57k").net
    assert (net.dropout_sites, net.lightconv_style, net.empty_init) == ("authors", "authors", "zero")
    assert preset("eurlex57k").train.amp is False  # float32, as the authors
    amazon = preset("amazon670k").net
    assert amazon.ot_weight == 0.0 and amazon.use_lightconv is False  # the authors' final Amazon-670K config
