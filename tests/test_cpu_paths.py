"""The CPU fast paths (attention, encoder, batched output layer) equal the readable references.

Every model's logits and parameter gradients are compared in float64 with all
fast paths on against all of them off (packed encoder, ``tanh`` attention with
autograd's ``bmm``, per-step output layer): two models built with different
choices (``BackboneConfig.encoder_impl``, ``attention_impl``, ``output_impl``) on
the same weights.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from baselines import SGM, MLC2Seq, Seq2Seq, Seq2SeqConfig, SGMConfig
from baselines.seq2seq import sequence_targets
from models import BahdanauAttention, OTSeq2Set, OTSeq2SetConfig
from models.attention import _Context

FAST = dict(encoder_impl="reversed", attention_impl="auto", output_impl="batched")  # on a CPU
REFERENCE = dict(encoder_impl="packed", attention_impl="reference", output_impl="per_step")


def _attention(impl="auto", dtype=torch.float64):
    torch.manual_seed(0)  # the same weights for every impl
    return BahdanauAttention(6, 10, 8, impl=impl).to(dtype)


def test_context_backward_equals_bmm_autograd():
    g = torch.Generator().manual_seed(0)
    w = torch.softmax(torch.randn(3, 1, 7, generator=g, dtype=torch.float64), -1).requires_grad_()
    k = torch.randn(3, 7, 5, generator=g, dtype=torch.float64, requires_grad=True)
    up = torch.randn(3, 1, 5, generator=g, dtype=torch.float64)
    (_Context.apply(w, k) * up).sum().backward()
    fast = (w.grad.clone(), k.grad.clone())
    w.grad = k.grad = None
    (torch.bmm(w, k) * up).sum().backward()
    torch.testing.assert_close(fast[0], w.grad, rtol=0, atol=1e-14)
    torch.testing.assert_close(fast[1], k.grad, rtol=0, atol=1e-14)


def test_sigmoid_scores_give_the_same_weights_and_gradients():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(4, 6, generator=g, dtype=torch.float64, requires_grad=True)
    keys = torch.randn(4, 9, 10, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.arange(9)[None] < torch.tensor([[9], [4], [1], [6]])
    up = torch.randn(4, 10, generator=g, dtype=torch.float64)
    out = {}
    for ref in (True, False):
        att = _attention("reference" if ref else "auto")
        q.grad = keys.grad = None
        ctx, w = att(q, keys, att.project_keys(keys), mask)
        ((ctx * up).sum() + (w ** 2).sum()).backward()
        out[ref] = (ctx.detach(), w.detach(), q.grad.clone(), keys.grad.clone(),
                    [p.grad.clone() for p in att.parameters()])
    for a, b in zip(out[True][:4], out[False][:4]):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-13)
    for a, b in zip(out[True][4], out[False][4]):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-13)
    assert (out[False][1][~mask] == 0).all()


COMMON = dict(vocab_size=30, n_labels=12, embed_dim=8, label_embed_dim=6, hidden_size=10,
              lightconv_kernels=(3, 5), lightconv_heads=2, dropout=0.3)


def _model(name, **kw):
    torch.manual_seed(0)  # the same weights whatever the speed choices in ``kw``
    c = dict(COMMON, **kw)
    if name == "otseq2set":
        return OTSeq2Set(OTSeq2SetConfig(**c, n_steps=5)).double()
    if name == "sgm":
        return SGM(SGMConfig(**c, global_embedding=True)).double()
    return {"seq2seq": Seq2Seq, "mlc2seq": MLC2Seq}[name](Seq2SeqConfig(**c)).double()


def _logits_and_grads(model, batch, seed=3):
    src, src_mask, targets, target_mask = batch
    # nn.GRU draws its between-layer dropout masks internally, so the two encoder paths
    # cannot share them; every other dropout site draws the same masks on both paths
    model.encoder.rnn.dropout = 0.0
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # same dropout masks on both paths
    logits = model(src, src_mask) if isinstance(model, OTSeq2Set) else model(src, src_mask, targets, target_mask)
    w = torch.linspace(-1, 1, logits.numel(), dtype=logits.dtype).reshape(logits.shape)
    ((logits * w).sum() + logits.logsumexp(-1).sum()).backward()
    return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", ["otseq2set", "seq2seq", "mlc2seq", "sgm"])
@pytest.mark.parametrize("extra", [{}, {"bottleneck": 4}, {"dropout_sites": "all", "lightconv_style": "heads"}])
def test_every_model_fast_paths_equal_reference_paths(name, extra):
    g = torch.Generator().manual_seed(5)
    B, S = 3, 11
    src_mask = torch.arange(S)[None] < torch.tensor([[11], [7], [1]])
    src = torch.randint(2, 30, (B, S), generator=g).masked_fill(~src_mask, 0)
    labels = torch.randint(0, 12, (B, 3), generator=g)
    label_mask = torch.tensor([[True, True, True], [True, False, False], [True, True, False]])
    _, targets, target_mask = sequence_targets(labels, label_mask)
    fast, ref = _model(name, **extra, **FAST).train(), _model(name, **extra, **REFERENCE).train()
    ref.load_state_dict(fast.state_dict())
    l_fast, g_fast = _logits_and_grads(fast, (src, src_mask, targets, target_mask))
    l_ref, g_ref = _logits_and_grads(ref, (src, src_mask, targets, target_mask))
    torch.testing.assert_close(l_fast, l_ref, rtol=1e-10, atol=1e-12)
    assert g_fast.keys() == g_ref.keys()
    for n in g_ref:
        torch.testing.assert_close(g_fast[n], g_ref[n], rtol=1e-9, atol=1e-11, msg=n)


# --------------------------------------------------------------------------- compiled attention (opt-in)
def _attend_both(att, q, keys, mask, up):
    """Context, weights and every gradient of one attention call."""
    att.zero_grad()
    q.grad = keys.grad = None
    ctx, w = att(q, keys, att.project_keys(keys), mask)
    ((ctx * up).sum() + (w ** 2).sum()).backward()
    return [ctx.detach(), w.detach(), q.grad.clone(), keys.grad.clone(), *(p.grad.clone() for p in att.parameters())]


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_compiled_attention_equals_the_reference(dtype, tol, compiler_works):
    reference, compiled = _attention("reference", dtype), _attention("compiled", dtype)
    g = torch.Generator().manual_seed(1)
    up = torch.randn(4, 10, generator=g, dtype=dtype)
    q = torch.randn(4, 6, generator=g, dtype=dtype, requires_grad=True)
    for S, lengths in ((9, [9, 4, 1, 6]), (5, [2, 5, 5, 1])):  # two lengths: one dynamic-shape compilation
        keys = torch.randn(4, S, 10, generator=g, dtype=dtype, requires_grad=True)
        mask = torch.arange(S)[None] < torch.tensor(lengths)[:, None]
        ref = _attend_both(reference, q, keys, mask, up)
        comp = _attend_both(compiled, q, keys, mask, up)
        for a, b in zip(ref, comp):
            torch.testing.assert_close(b, a, rtol=tol, atol=tol)
        assert (comp[1][~mask] == 0).all()
        with torch.no_grad():  # inference (greedy decoding) takes the compiled path too
            got = compiled(q, keys, compiled.project_keys(keys), mask)[0]
            torch.testing.assert_close(got, ref[0], rtol=tol, atol=tol)


def test_compiled_attention_falls_back_to_eager_with_a_warning(monkeypatch):
    from torch._inductor.exc import CppCompileError

    from models import attention

    calls = []

    def broken(*args):  # what inductor raises when it cannot build its kernels
        calls.append(1)
        raise CppCompileError(["g++"], "no C++ compiler")

    monkeypatch.setattr(torch, "compile", lambda fn, **options: broken)
    monkeypatch.setattr(attention, "_COMPILED", {})  # a fresh compiled attend, made by the broken torch.compile
    q = torch.randn(2, 6, dtype=torch.float64)
    keys = torch.randn(2, 5, 10, dtype=torch.float64)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    eager_att = _attention("auto")
    eager = eager_att(q, keys, eager_att.project_keys(keys), mask)
    att = _attention("compiled")
    with pytest.warns(UserWarning, match="compiled attention unavailable.*g\\+\\+"):
        fallback = att(q, keys, att.project_keys(keys), mask)
    assert attention._compiled_attend().failed  # not tried again:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        again = att(q, keys, att.project_keys(keys), mask)
    assert calls == [1]
    for out in (fallback, again):  # the eager fast path, exactly
        torch.testing.assert_close(out[0], eager[0], rtol=0, atol=0)
        torch.testing.assert_close(out[1], eager[1], rtol=0, atol=0)


def test_compiled_attention_raises_what_is_not_a_compiler_failure():
    att = _attention("compiled")
    keys = torch.randn(2, 5, 10, dtype=torch.float64)
    bad_mask = torch.ones(2, 4, dtype=torch.bool)  # 4 positions for 5 keys
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="compiled attention unavailable")
        with pytest.raises(Exception, match="size") as raised:
            att(torch.randn(2, 6, dtype=torch.float64), keys, att.project_keys(keys), bad_mask)
    assert "compiled attention unavailable" not in str(raised.value)
    from models import attention

    assert not attention._compiled_attend().failed  # compiling stays on


def test_unknown_attention_impl_is_a_clear_error():
    with pytest.raises(ValueError, match="attention impl"):
        BahdanauAttention(6, 10, 8, impl="fast")
    with pytest.raises(ValueError, match="attention_impl"):
        OTSeq2SetConfig(**COMMON, attention_impl="fast")


@pytest.fixture
def compiler_works():
    """Fail (not pass through the eager fallback) if the compiled path silently stopped being compiled."""
    from models import attention

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="compiled attention unavailable")
        yield
    assert not attention._compiled_attend().failed


def test_otseq2set_with_compiled_attention_equals_the_reference(compiler_works):
    g = torch.Generator().manual_seed(5)
    B, S = 3, 11
    src_mask = torch.arange(S)[None] < torch.tensor([[11], [7], [1]])
    src = torch.randint(2, 30, (B, S), generator=g).masked_fill(~src_mask, 0)
    models = {compiled: _model("otseq2set", attention_impl="compiled" if compiled else "reference").train()
              for compiled in (False, True)}
    models[True].load_state_dict(models[False].state_dict())
    out = {}
    for compiled, model in models.items():
        model.encoder.rnn.dropout = 0.0
        model.zero_grad(set_to_none=True)
        torch.manual_seed(3)
        logits = model(src, src_mask)
        ((logits * torch.linspace(-1, 1, logits.numel(), dtype=logits.dtype).reshape(logits.shape)).sum()).backward()
        out[compiled] = (logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()})
    torch.testing.assert_close(out[True][0], out[False][0], rtol=1e-10, atol=1e-12)
    for n, grad in out[False][1].items():
        torch.testing.assert_close(out[True][1][n], grad, rtol=1e-9, atol=1e-11, msg=n)


@pytest.mark.parametrize("model", ["otseq2set", "sgm"])
def test_train_compile_selects_the_compiled_attention(model):
    from xmtc.config import cli
    from xmtc.data import loading
    from xmtc import registry
    for argv, expected in ((["--compile"], True), ([], False)):
        cfg = cli.config_from_args(cli.train_parser(model, "test").parse_args(["--data", "synthetic", "--fast", *argv]),
                                   model)
        assert cfg.train.compile is expected
        data = loading.load_data(cfg.data, seed=0)
        net = registry.build_model(cfg, data)
        assert net.config.attention_impl == ("compiled" if expected else "auto")
        flags = [m.impl == "compiled" for m in net.modules() if isinstance(m, BahdanauAttention)]
        assert flags and all(f is expected for f in flags)


def test_compiled_attention_compiles_once_for_training_and_once_for_inference(compiler_works):
    """New batch shapes reuse the graphs (dynamic shapes), so a run stays far below torch's recompile limit."""
    from torch._dynamo.utils import counters

    torch.manual_seed(0)
    model = OTSeq2Set(OTSeq2SetConfig(**COMMON, n_steps=5, attention_impl="compiled"))  # float32, as training runs
    before = counters["stats"]["unique_graphs"]
    for B, S in ((3, 11), (4, 17), (2, 14), (5, 12)):  # LightConv memory of 5-11 positions
        src = torch.randint(2, 30, (B, S))
        mask = torch.arange(S)[None] < torch.tensor([S] + [S - 2] * (B - 1))[:, None]
        model.train()
        model(src, mask).sum().backward()
        model.eval()
        with torch.no_grad():
            model(src, mask)
    assert counters["stats"]["unique_graphs"] - before <= 2
