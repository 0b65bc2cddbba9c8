"""Unit tests of models/: shapes, masks, LightConv reference, forcing, parameter counts."""

import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import losses.set_loss  # noqa: F401 -- OTSeq2Set.compute_loss imports it lazily; an ImportError must fail
from models import (BahdanauAttention, Bottleneck, Decoder, LightConv, LightConvLayer, OTSeq2Set,
                    OTSeq2SetConfig, prediction_from_steps)
from models.specials import BOS, EMPTY, EOS, N_SPECIAL, PAD

VOCAB, N_LABELS = 60, 12


def small_config(**kw) -> OTSeq2SetConfig:
    base = dict(vocab_size=VOCAB, n_labels=N_LABELS, embed_dim=16, label_embed_dim=8, hidden_size=16,
                lightconv_heads=4, n_steps=5, dropout=0.0)
    base.update(kw)
    return OTSeq2SetConfig(**base)


def make_batch(lengths, S=None, seed=0, labels=None):
    g = torch.Generator().manual_seed(seed)
    S = S or max(lengths)
    src = torch.randint(2, VOCAB, (len(lengths), S), generator=g)
    mask = torch.arange(S)[None, :] < torch.tensor(lengths)[:, None]  # (B, S)
    src = src.masked_fill(~mask, 0)
    if labels is None:
        labels = [[1, 2], [3], [4, 5, 6]] * len(lengths)
        labels = labels[: len(lengths)]
    n_max = max(len(l) for l in labels)
    lab = torch.tensor([l + [0] * (n_max - len(l)) for l in labels])
    lab_mask = torch.tensor([[True] * len(l) + [False] * (n_max - len(l)) for l in labels])
    return SimpleNamespace(src=src, src_mask=mask, labels=lab, label_mask=lab_mask,
                           index=torch.arange(len(lengths)))


# -- shapes and init ---------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [{}, {"use_lightconv": False}, {"bottleneck": 7}, {"last_stride": 4}])
def test_otseq2set_shapes(kw):
    torch.manual_seed(0)
    model = OTSeq2Set(small_config(**kw))
    batch = make_batch([9, 4, 1])
    logits = model(batch.src, batch.src_mask)
    assert logits.shape == (3, 5, N_SPECIAL + N_LABELS)
    assert torch.isfinite(logits).all()
    pred = model.eval().predict(batch)
    assert len(pred.labels) == 3 and pred.scores.shape == (3, N_LABELS)
    assert pred.scores.dtype == torch.float32
    for s in pred.labels:
        assert all(0 <= k < N_LABELS for k in s)


def test_init_uniform_and_embeddings_copied():
    emb = torch.randn(VOCAB, 16)
    lab = torch.randn(N_LABELS, 8)
    model = OTSeq2Set(small_config(), embeddings=emb, label_embeddings=lab)
    assert torch.equal(model.encoder.embedding.weight[1:], emb[1:])
    assert torch.equal(model.encoder.embedding.weight[0], torch.zeros(16))  # <pad>
    assert torch.equal(model.label_embeddings[N_SPECIAL:], lab)
    for name, p in model.named_parameters():
        if "embedding" not in name:
            assert p.abs().max() <= 0.1, name
    full = torch.randn(N_SPECIAL + N_LABELS, 8)
    assert torch.equal(OTSeq2Set(small_config(), label_embeddings=full).label_embeddings, full)
    with pytest.raises(ValueError):
        OTSeq2Set(small_config(), label_embeddings=torch.randn(3, 8))


# -- attention ------------------------------------------------------------------------------------

def test_attention_weights_zero_on_padding():
    torch.manual_seed(0)
    att = BahdanauAttention(6, 10, 8)
    keys = torch.randn(2, 7, 10)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0, 0], [1] * 7]).bool()
    ctx, w = att(torch.randn(2, 6), keys, att.project_keys(keys), mask)
    assert torch.all(w[~mask] == 0)
    torch.testing.assert_close(w.sum(-1), torch.ones(2))
    torch.testing.assert_close(ctx[0], (w[0, :3, None] * keys[0, :3]).sum(0))


@pytest.mark.parametrize("kw", [{}, {"use_lightconv": False}])
def test_padding_tokens_change_nothing(kw):
    torch.manual_seed(0)
    model = OTSeq2Set(small_config(**kw)).eval()
    batch = make_batch([11, 3, 1], S=14)
    noisy = batch.src.clone()
    noisy[~batch.src_mask] = torch.randint(2, VOCAB, (int((~batch.src_mask).sum()),))
    a = model(batch.src, batch.src_mask)
    b = model(noisy, batch.src_mask)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


# -- LightConv ------------------------------------------------------------------------------------

def _lightconv_case(lengths, kernels, stride, heads=2, C=4, seed=0):
    torch.manual_seed(seed)
    conv = LightConv(C, kernels, heads, last_stride=stride).double()
    S = max(lengths)
    x = torch.randn(len(lengths), S, C, dtype=torch.float64)
    mask = torch.arange(S)[None] < torch.tensor(lengths)[:, None]
    return conv, x, mask


@settings(max_examples=25, deadline=None)
@given(lengths=st.lists(st.integers(1, 40), min_size=1, max_size=3), stride=st.integers(1, 4),
       kernels=st.sampled_from([(3, 7, 15, 30), (3,), (30,), (2, 5)]))
def test_lightconv_fast_equals_reference(lengths, stride, kernels):
    conv, x, mask = _lightconv_case(lengths, kernels, stride)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    y1, m1 = conv(x1, mask)
    y2, m2 = conv.reference_forward(x2, mask)
    assert torch.equal(m1, m2)
    torch.testing.assert_close(y1, y2)
    g = torch.randn_like(y1)
    grads1 = torch.autograd.grad((y1 * g).sum(), [x1, *conv.parameters()])
    grads2 = torch.autograd.grad((y2 * g).sum(), [x2, *conv.parameters()])
    for a, b in zip(grads1, grads2):
        torch.testing.assert_close(a, b)


def _lightconv_from_the_equation(conv, x, mask):
    """LightConv built from the documented equation only, sharing no code with models/lightconv.py.

    Per layer (module docstring and ``LightConvLayer``): kernel of head h = softmax of its K weights;
    channel c uses head c % H; padded inputs are zero; "same" padding of K - 1 positions, the
    extra one of an even kernel on the right (the kernel 30 reads 14 positions back and 15 ahead),
    which is PyTorch's own ``padding="same"`` split; then every s-th output (output j centred on
    input j * s); an output is real iff j < ceil(l / s) for a document of l real tokens, and zero
    otherwise; ReLU between layers.
    """
    lengths = mask.sum(1)  # (B,)
    for i, layer in enumerate(conv.layers):
        if i > 0:
            x = torch.relu(x)
        H, K = layer.weight.shape
        C, s = x.shape[2], layer.stride
        e = torch.exp(layer.weight - layer.weight.max(dim=1, keepdim=True).values)  # (H, K)
        head_kernels = e / e.sum(dim=1, keepdim=True)  # (H, K), softmax over the taps
        w = head_kernels[torch.arange(C) % H]  # (C, K), channel c -> head c % H
        x = x * mask.unsqueeze(2).to(x.dtype)  # (B, S, C), zero padding
        y = F.conv1d(x.transpose(1, 2), w.unsqueeze(1), padding="same", groups=C)  # (B, C, S), stride 1
        y = y[:, :, ::s].transpose(1, 2)  # (B, ceil(S / s), C), output j at input j * s
        lengths = torch.div(lengths + s - 1, s, rounding_mode="floor")  # ceil(l / s) real outputs
        mask = torch.arange(y.shape[1])[None] < lengths[:, None]  # (B, ceil(S / s))
        x = y * mask.unsqueeze(2).to(y.dtype)
    return x, mask


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@settings(max_examples=25, deadline=None)
@given(lengths=st.lists(st.integers(1, 40), min_size=1, max_size=3), stride=st.integers(1, 4),
       kernels=st.sampled_from([(3, 7, 15, 30), (30,), (2, 5), (4,)]))
def test_lightconv_equals_the_equation(lengths, stride, kernels):
    conv, x, mask = _lightconv_case(lengths, kernels, stride)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    y1, m1 = conv(x1, mask)
    y2, m2 = _lightconv_from_the_equation(conv, x2, mask)
    assert torch.equal(m1, m2)
    # LightConvLayer.kernel() takes the softmax in float32, the equation here in float64
    torch.testing.assert_close(y1, y2, rtol=1e-6, atol=1e-7)
    g = torch.randn_like(y1)
    grads1 = torch.autograd.grad((y1 * g).sum(), [x1, *conv.parameters()])
    grads2 = torch.autograd.grad((y2 * g).sum(), [x2, *conv.parameters()])
    for a, b in zip(grads1, grads2):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("K,back,ahead", [(3, 1, 1), (7, 3, 3), (30, 14, 15), (2, 0, 1)])
def test_lightconv_window_by_hand(K, back, ahead):
    # an impulse at input p reaches outputs p - ahead .. p + back, and output p reads it with tap `back`
    layer = LightConvLayer(1, K, heads=1).double()
    with torch.no_grad():
        layer.weight.copy_(torch.arange(K, dtype=torch.float64)[None])  # distinct taps
    taps = torch.softmax(layer.weight.detach()[0], 0)  # (K,)
    S, p = 50, 20
    x = torch.zeros(1, S, 1, dtype=torch.float64)
    x[0, p, 0] = 1.0
    y, _ = layer(x, torch.ones(1, S, dtype=torch.bool))
    reached = torch.nonzero(y[0, :, 0]).flatten().tolist()
    assert reached == list(range(p - ahead, p + back + 1))
    # y_j = sum_k taps_k x_{j + k - back}: output j reads input p with tap p - j + back
    for j in reached:
        assert y[0, j, 0].item() == pytest.approx(taps[p - j + back].item(), rel=1e-6)


@pytest.mark.parametrize("length", [1, 2, 5, 51, 52])
def test_lightconv_short_inputs_and_mask(length):
    conv, x, mask = _lightconv_case([length], (3, 7, 15, 30), 3)
    y, m = conv(x, mask)
    assert y.shape == (1, -(-length // 3), 4)
    assert m.all()
    # the same document padded inside a longer batch gives the same real outputs
    conv2, xb, maskb = _lightconv_case([length, 60], (3, 7, 15, 30), 3)
    xb[0, :length] = x[0]
    xb[0, length:] = 123.0  # garbage on padding
    yb, mb = conv(xb, maskb)
    assert int(mb[0].sum()) == -(-length // 3)
    torch.testing.assert_close(yb[0, : y.shape[1]], y[0])
    assert torch.all(yb[0, y.shape[1]:] == 0)


def test_lightconv_kernel_is_softmax_shared_per_head():
    layer = LightConvLayer(6, 5, heads=3)
    k = layer.kernel()
    assert k.shape == (6, 5)
    torch.testing.assert_close(k.sum(-1), torch.ones(6))
    torch.testing.assert_close(k[0], k[3])  # channel c uses head c % H
    assert sum(p.numel() for p in layer.parameters()) == 3 * 5


# -- decoder: forcing, bottleneck -------------------------------------------------------------------

def test_student_forcing_feeds_previous_argmax():
    torch.manual_seed(0)
    model = OTSeq2Set(small_config(n_steps=6)).eval()
    batch = make_batch([8, 5])
    fed = []
    hook = model.decoder.embedding.register_forward_hook(lambda m, inp, out: fed.append(inp[0].clone()))
    out = model.decode(batch.src, batch.src_mask)
    hook.remove()
    fed = torch.stack(fed, 1)  # (B, N)
    assert torch.all(fed[:, 0] == BOS)
    assert torch.equal(fed[:, 1:], out.logits.argmax(-1)[:, :-1])
    assert torch.equal(out.tokens, out.logits.argmax(-1))
    # teacher-forcing the same symbols reproduces the student-forced logits
    memory, s0 = model.encode(batch.src, batch.src_mask)
    teacher = model.decoder.decode(memory, s0, 6, inputs=fed)
    torch.testing.assert_close(teacher.logits, out.logits)


def test_bottleneck_parameter_count():
    V, z, b = 37, 23, 5
    assert sum(p.numel() for p in Bottleneck(z, b, V).parameters()) == (V + z) * b + b + V
    kw = dict(n_outputs=V, embed_dim=7, hidden_size=6, context_dim=5, use_lightconv=True)
    full, bott = Decoder(**kw), Decoder(**kw, bottleneck=b)
    z = full.out_features
    assert z == 6 + 2 * 5 + 7
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(bott) - count(full) == ((V + z) * b + b + V) - (z * V + V)


def _expected_parameters(c: OTSeq2SetConfig) -> int:
    """Hand count of the network's parameters (PyTorch GRU: 3 gates, two biases)."""
    H, E, L, D = c.hidden_size, c.embed_dim, c.label_embed_dim, c.hidden_size
    V, Dh = N_SPECIAL + c.n_labels, 2 * c.hidden_size
    gru = lambda i, h: 3 * (i * h + h * h + 2 * h)
    enc = c.vocab_size * E + 2 * gru(E, H) + 2 * (c.encoder_layers - 1) * gru(Dh, H) + Dh * D + D
    n_ctx = 2 if c.use_lightconv else 1
    att = D * D + Dh * D + D + D
    z = D + n_ctx * Dh + L
    out = z * V + V if c.bottleneck is None else (V + z) * c.bottleneck + c.bottleneck + V
    kernels = Dh if c.lightconv_style == "authors" else c.lightconv_heads  # one per channel, or shared heads
    conv = kernels * sum(c.lightconv_kernels) if c.use_lightconv else 0
    return enc + conv + V * L + att + gru(L + n_ctx * Dh, D) + out


@pytest.mark.parametrize("kw", [{}, {"use_lightconv": False}, {"bottleneck": 9}, {"encoder_layers": 1},
                                {"lightconv_style": "heads"}])
def test_num_parameters_matches_hand_count(kw):
    c = small_config(**kw)
    model = OTSeq2Set(c)
    assert model.num_parameters() == _expected_parameters(c)
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())


# -- batches, prediction, loss, dtype ---------------------------------------------------------------

def test_batch_of_one_equals_batch_of_copies_and_mixed_batch():
    torch.manual_seed(0)
    model = OTSeq2Set(small_config()).eval()
    one = make_batch([7])
    copies = SimpleNamespace(**{k: v.repeat(4, *[1] * (v.dim() - 1)) for k, v in vars(one).items()})
    mixed = make_batch([7, 13, 2], seed=1)
    mixed.src[0, :7] = one.src[0]
    a = model(one.src, one.src_mask)
    torch.testing.assert_close(model(copies.src, copies.src_mask), a.expand(4, -1, -1))
    torch.testing.assert_close(model(mixed.src, mixed.src_mask)[:1], a, atol=1e-5, rtol=1e-5)
    assert model.predict(copies).labels == model.predict(one).labels * 4


def test_prediction_drops_specials_and_dead_steps():
    V = N_SPECIAL + 5
    logits = torch.zeros(1, 4, V)
    tokens = torch.tensor([[N_SPECIAL + 2, EMPTY, N_SPECIAL + 2, N_SPECIAL + 4]])
    alive = torch.tensor([[True, True, True, False]])
    for t, k in enumerate(tokens[0]):
        logits[0, t, k] = 5.0
    pred = prediction_from_steps(logits, tokens, alive)
    assert pred.labels == [{2}]
    assert pred.scores.shape == (1, 5)
    assert pred.scores[0].argmax() == 2 and pred.scores[0, 4] < 0.5  # dead step ignored
    assert prediction_from_steps(logits, tokens, alive, top_k=2).labels[0] >= {2}


def test_set_model_never_predicts_pad_bos_eos():
    torch.manual_seed(0)
    model = OTSeq2Set(small_config()).eval()
    with torch.no_grad():
        model.decoder.output.bias[[PAD, BOS, EOS]] = 50.0
    batch = make_batch([6, 3])
    out = model.decode(batch.src, batch.src_mask, inference=True)
    assert not torch.isin(out.tokens, torch.tensor([PAD, BOS, EOS])).any()


@pytest.mark.parametrize("kw", [{}, {"ot_weight": 0.0}, {"scheme": "first_n"}, {"bottleneck": 6, "use_lightconv": False}])
def test_compute_loss_backward(kw):
    torch.manual_seed(0)
    model = OTSeq2Set(small_config(**kw))
    out = model.compute_loss(make_batch([9, 4, 1]))
    assert {"loss", "match", "ot"} <= set(out)
    if kw.get("ot_weight") == 0.0:
        assert float(out["ot"]) == 0.0
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    assert model.encoder.embedding.weight.grad is not None
    assert model.encoder.rnn.weight_hh_l0.grad.abs().sum() > 0


def test_runs_under_cpu_bf16_autocast():
    torch.manual_seed(0)
    model = OTSeq2Set(small_config())
    batch = make_batch([9, 4, 1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(batch.src, batch.src_mask)
    assert torch.isfinite(logits.float()).all()
    logits.float().sum().backward()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_autocast_loss():
    model = OTSeq2Set(small_config()).cuda()
    batch = make_batch([9, 4, 1])
    batch = SimpleNamespace(**{k: v.cuda() for k, v in vars(batch).items()})
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model.compute_loss(batch)
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    pred = model.eval().predict(batch)
    assert pred.scores.device.type == "cuda"


def test_models_does_not_import_xmtc_or_baselines():
    code = "import sys, models; bad = [m for m in sys.modules if m.split('.')[0] in ('xmtc', 'baselines')]; " \
           "sys.exit(1 if bad else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# -- speed choices: arguments of the config, passed down -----------------------------------------

SPEED_CHOICES = ("encoder_impl", "attention_impl", "output_impl")


@pytest.mark.parametrize("choices", [dict(encoder_impl="packed", attention_impl="reference", output_impl="per_step"),
                                     dict(encoder_impl="reversed", attention_impl="compiled", output_impl="batched")])
def test_speed_choices_reach_the_submodules_of_every_model(choices):
    from baselines import Seq2Seq, Seq2SeqConfig

    base = dict(vocab_size=VOCAB, n_labels=N_LABELS, embed_dim=16, label_embed_dim=8, hidden_size=16,
                lightconv_heads=4)
    for model in (OTSeq2Set(small_config(**choices)), Seq2Seq(Seq2SeqConfig(**base, **choices))):
        assert (model.encoder.impl, model.decoder.attention.impl, model.decoder.output_impl) == \
            tuple(choices[k] for k in SPEED_CHOICES)
    fresh = OTSeq2Set(small_config())  # nothing is set on a class: a new model has the defaults
    assert (fresh.encoder.impl, fresh.decoder.attention.impl, fresh.decoder.output_impl) == ("auto", "auto", "batched")


def test_checkpoint_without_the_speed_choices_loads_with_their_defaults():
    from dataclasses import asdict

    from xmtc.registry import model_from_checkpoint

    torch.manual_seed(0)
    old = OTSeq2Set(small_config())
    cfg = asdict(old.config)
    for k in SPEED_CHOICES:  # a model_config written before these fields existed
        del cfg[k]
    model = model_from_checkpoint({"model_type": "otseq2set", "model_config": cfg, "model": old.state_dict()})
    assert tuple(getattr(model.config, k) for k in SPEED_CHOICES) == ("auto", "auto", "batched")
    assert (model.encoder.impl, model.decoder.attention.impl, model.decoder.output_impl) == ("auto", "auto", "batched")
    batch = make_batch([9, 4, 1])
    torch.testing.assert_close(model.eval()(batch.src, batch.src_mask), old.eval()(batch.src, batch.src_mask),
                               rtol=0, atol=0)


@pytest.mark.parametrize("field", SPEED_CHOICES)
def test_unknown_speed_choice_is_a_clear_error(field):
    with pytest.raises(ValueError, match=field):
        small_config(**{field: "fastest"})
