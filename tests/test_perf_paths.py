"""Fast paths of the training step against the readable references kept beside them.

* matching split into launch (device gather + copy, ``assign_targets(...,
  wait=False)``) and finish (host solve, ``PendingAssignment.result``): equal to
  the per-example reference;
* IPOT column padding (one compiled shape for every ``n_max``) and the compiled
  IPOT loop (``torch.compile``): equal to eager IPOT;
* the set loss with the OT term queued before the host solve of the matching
  and the NLL's own backward (``_MatchedNLL``): equal to the per-example
  reference, values and gradients (also covered by tests/test_set_loss.py);
* the decoder's batched output-layer backward (``_StepLinear``): equal to the
  per-step reference path, logits and every parameter's gradient.
"""

from __future__ import annotations

import importlib
import shutil
import warnings

import pytest
import torch

from baselines import Seq2Seq, Seq2SeqConfig, sequence_targets
from losses.ipot import _crop, _iterate, _prepare, _validate, ipot, ipot_fused
from losses.matching import assign_targets, assign_targets_reference
from losses.set_loss import set_loss, set_loss_reference
from models import OTSeq2Set, OTSeq2SetConfig

ipot_module = importlib.import_module("losses.ipot")  # the module (``losses.ipot`` is the function)


def _batch(B=5, N=6, V=20, n_max=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, N, V, generator=g, dtype=dtype) * 2
    counts = torch.randint(0, n_max + 1, (B,), generator=g)
    counts[0] = n_max
    targets = torch.stack([torch.randperm(V - 4, generator=g)[:n_max] + 4 for _ in range(B)])
    mask = torch.arange(n_max)[None] < counts[:, None]
    emb = torch.randn(V, 7, generator=g, dtype=dtype)
    return logits, targets, mask, emb


@pytest.mark.parametrize("scheme", ["all", "first_n"])
def test_assign_targets_launched_then_finished_equals_reference(scheme):
    logits, targets, mask, _ = _batch(B=8, N=7, n_max=5, seed=1)
    probs = logits.softmax(-1)
    got = assign_targets(probs, targets, mask, scheme, wait=False).result()
    want = assign_targets_reference(probs, targets, mask, scheme)
    assert torch.equal(got, want)


def test_ipot_invariant_to_zero_weight_padding_columns():
    g = torch.Generator().manual_seed(2)
    cost = torch.rand(4, 6, 3, generator=g, dtype=torch.float64) * 2
    b = torch.tensor([[1 / 3] * 3, [0.5, 0.5, 0.0], [1.0, 0, 0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    want = ipot(cost, None, b)
    C, mu, nu = _validate(cost, None, b, beta=1.0, n_iter=50, inner_iter=1)
    G, mu, nu, floor = _prepare(C, mu, nu, 1.0, pad_to=6)  # (4, 6, 6): three zero-weight columns more
    got = _crop(_iterate(G, mu, nu, 50, 1, floor), cost)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-15)


def test_ipot_fused_falls_back_to_eager(monkeypatch):
    def unavailable(fn, **options):  # what torch.compile raises on an unsupported Python or platform
        raise RuntimeError("torch.compile is not supported on this platform")

    monkeypatch.setattr(torch, "compile", unavailable)
    monkeypatch.setattr(ipot_module, "_LOOPS", {})  # a fresh compiled loop, made by the broken torch.compile
    cost = torch.rand(3, 5, 4, dtype=torch.float64)
    with pytest.warns(UserWarning, match="compiled IPOT loop unavailable.*not supported"):
        assert torch.equal(ipot_fused(cost, n_iter=7, pad_to=5), ipot(cost, n_iter=7))
    assert ipot_module._compiled_loop("cpu").failed
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: eager from now on, silently
        assert torch.equal(ipot_fused(cost, n_iter=7, pad_to=5), ipot(cost, n_iter=7))


def test_compile_fallback_catches_compiler_errors_only_and_per_function(monkeypatch):
    """losses/compiling.py: a compiler failure turns that one function eager; any other error is raised."""
    from torch._inductor.exc import InvalidCxxCompiler

    from losses.compiling import Compiled

    def double(x):
        return 2 * x

    def triple(x):
        return 3 * x

    def no_cxx(x):  # inductor's missing C++ compiler (a RuntimeError subclass; dynamo usually wraps it)
        raise InvalidCxxCompiler("g++")

    def wrong_shape(x):
        raise RuntimeError("The size of tensor a (4) must match the size of tensor b (5)")

    compiled = {double: no_cxx, triple: lambda x: 3 * x}  # double's compiler fails, triple's works
    monkeypatch.setattr(torch, "compile", lambda fn, **options: compiled[fn])
    fails, works = Compiled(double, "double"), Compiled(triple, "triple")
    x = torch.arange(3.0)
    with pytest.warns(UserWarning, match="compiled double unavailable.*InvalidCxxCompiler.*g\\+\\+"):
        assert fails(x) is None  # the caller runs its eager path
    assert fails.failed and fails(x) is None
    assert torch.equal(works(x), 3 * x) and not works.failed  # the other function keeps compiling
    compiled[triple] = wrong_shape
    other = Compiled(triple, "triple")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError, match="size of tensor"):
            other(x)
    assert not other.failed  # not a compiler failure: raised, compiling stays on


class _no_warning:
    """Silence warnings (the compile fallback warns once)."""


    def __enter__(self):
        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def _compile_works() -> str | None:
    """Reason to skip the compiled-path tests, or None."""
    if not hasattr(torch, "compile"):
        return "torch.compile is not available in this torch"
    if shutil.which("gcc") is None and shutil.which("cc") is None and shutil.which("clang") is None:
        return "torch.compile on CPU needs a C++ compiler (gcc/clang), none found"
    return None


@pytest.mark.skipif(_compile_works() is not None, reason=str(_compile_works()))
def test_ipot_compiled_loop_equals_eager():
    # a few iterations only: compiling the unrolled 50-iteration loop takes ~1 min on a CPU
    with _no_warning():
        g = torch.Generator().manual_seed(3)
        cost = torch.rand(4, 6, 3, generator=g, dtype=torch.float64) * 2
        b = torch.tensor([[1 / 3] * 3, [0.5, 0.5, 0.0], [1.0, 0, 0], [1 / 3] * 3], dtype=torch.float64)
        got = ipot_fused(cost, None, b, n_iter=3, pad_to=6)
    if ipot_module._compiled_loop("cpu").failed:
        pytest.skip("torch.compile failed on this machine; ipot_fused fell back to eager (tested above)")
    torch.testing.assert_close(got, ipot(cost, None, b, n_iter=3), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("impl", ["eager", "fused"])
@pytest.mark.parametrize("scheme", ["all", "first_n"])
def test_set_loss_overlapped_equals_reference(scheme, impl):
    if impl == "fused" and _compile_works() is not None:
        pytest.skip(str(_compile_works()))
    logits, targets, mask, emb = _batch(B=6, N=6, V=15, n_max=4, seed=4)
    lf = logits.clone().requires_grad_()
    lr = logits.clone().requires_grad_()
    with _no_warning():
        fast = set_loss(lf, targets, mask, emb, scheme=scheme, ipot_iter=3, ipot_impl=impl)
    ref = set_loss_reference(lr, targets, mask, emb, scheme=scheme, ipot_iter=3)
    for k in ("loss", "match", "ot"):
        torch.testing.assert_close(fast[k], ref[k], rtol=1e-9, atol=1e-12)
    fast["loss"].backward()
    ref["loss"].backward()
    torch.testing.assert_close(lf.grad, lr.grad, rtol=1e-8, atol=1e-12)


def test_set_loss_rejects_unknown_ipot_impl():
    logits, targets, mask, emb = _batch()
    with pytest.raises(ValueError, match="ipot_impl"):
        set_loss(logits, targets, mask, emb, ipot_impl="triton")


def _models(bottleneck, output_impl="batched"):
    """OTSeq2Set and Seq2Seq; the same weights for every ``output_impl``."""
    common = dict(vocab_size=30, n_labels=12, embed_dim=8, label_embed_dim=6, hidden_size=10,
                  lightconv_kernels=(3, 5), lightconv_heads=2, bottleneck=bottleneck, output_impl=output_impl)
    torch.manual_seed(0)
    ots = OTSeq2Set(OTSeq2SetConfig(**common, n_steps=5)).double()
    torch.manual_seed(0)
    seq = Seq2Seq(Seq2SeqConfig(**common)).double()
    return ots, seq


def _grads(model, loss_fn, seed: int):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # same dropout masks on both paths
    logits, loss = loss_fn(model)
    loss.backward()
    return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("bottleneck", [None, 4])
def test_decoder_batched_output_backward_equals_per_step(bottleneck):
    g = torch.Generator().manual_seed(5)
    B, S = 3, 11
    src = torch.randint(2, 30, (B, S), generator=g)
    src_mask = torch.arange(S)[None] < torch.tensor([[11], [7], [3]])
    labels = torch.randint(0, 12, (B, 3), generator=g)
    label_mask = torch.tensor([[True, True, True], [True, False, False], [True, True, False]])
    _, targets, target_mask = sequence_targets(labels, label_mask)
    emb_grad = torch.randn(5 * 16, generator=g, dtype=torch.float64)

    def ots_loss(m):
        logits = m(src, src_mask)  # (B, N, V), student forcing
        return logits, (logits.reshape(-1)[: emb_grad.numel()] * emb_grad).sum() + logits.logsumexp(-1).sum()

    def seq_loss(m):
        logits = m(src, src_mask, targets, target_mask)  # teacher forcing
        return logits, logits.log_softmax(-1).gather(2, targets.unsqueeze(2)).sum()

    for fast, ref, fn in zip(_models(bottleneck, "batched"), _models(bottleneck, "per_step"), (ots_loss, seq_loss)):
        ref.load_state_dict(fast.state_dict())
        l_fast, g_fast = _grads(fast.train(), fn, seed=7)
        l_ref, g_ref = _grads(ref.train(), fn, seed=7)
        assert torch.equal(l_fast, l_ref)  # forward values identical
        assert g_fast.keys() == g_ref.keys()
        for name in g_ref:
            torch.testing.assert_close(g_fast[name], g_ref[name], rtol=1e-10, atol=1e-12, msg=name)


def test_decoder_reference_path_used_without_grad_and_for_sgm():
    (ots, _), (ref, _) = _models(None, "batched"), _models(None, "per_step")
    ref.load_state_dict(ots.state_dict())
    src = torch.randint(2, 30, (2, 6))
    src_mask = torch.ones(2, 6, dtype=torch.bool)
    with torch.no_grad():
        a = ots.eval()(src, src_mask)
        b = ref.eval()(src, src_mask)
    assert torch.equal(a, b)
