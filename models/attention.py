"""Additive (Bahdanau) attention with a padding mask (paper Eq. 4-6).

.. math::

    e_{ti} = v^\\top \\tanh(W s_{t-1} + U h_i), \\quad
    \\alpha_{ti} = \\frac{\\exp(e_{ti})}{\\sum_{k\\,\\mathrm{real}} \\exp(e_{tk})}, \\quad
    c_t = \\sum_i \\alpha_{ti} h_i

Padded positions get zero weight (the authors' notebook attends to padding;
we do not). OTSeq2Set computes ``ĉ_t`` over the LightConv outputs with the
*same* module (Eq. 7: "uses the same parameters as c").

Fast path on a CPU (same weights ``α`` up to float rounding, tested)
---------------------------------------------------------------------
The decoder attends at every one of its ``N`` steps over all ``S`` positions,
so two ``(B, S, ·)`` operations per step dominate its cost on a CPU:

* ``tanh`` over ``(B, S, A)``: ``tanh(a) = 2σ(2a) − 1`` and a softmax ignores
  a constant added to a row, so ``e'_ti = 2 vᵀσ(2 (W s + U h_i))`` gives the
  same ``α`` as ``e_ti`` (it differs by ``−vᵀ1``). torch's CPU ``sigmoid`` is
  ~8x faster than its ``tanh`` (measured: 0.43 vs 3.3 ms at 32 x 256 x 128,
  one thread). On CUDA both are memory-bound, so the readable ``tanh`` is kept.
On other devices (CUDA, MPS, ...) the readable path runs.

* the backward of ``c_t = Σ_i α_ti h_i``: autograd's ``bmm`` backward forms
  the key gradient ``α_tᵀ g_t`` as a batched ``(S, 1) x (1, Dk)`` product,
  which runs ~2.5x slower on a CPU than the same outer product written as a
  broadcast multiply (:class:`_Context`).

``impl="reference"`` (``BackboneConfig.attention_impl``) switches both off: the
readable Eq. 4 on every device (the tests build both and compare).

Compiled (CPU, opt-in: ``impl="compiled"``, ``--compile`` in the scripts)
-------------------------------------------------------------------------
Eager torch still runs the fast path as separate passes over ``(B, S, A)``
(add, scale, sigmoid, the product with ``v``) in the forward and again in the
backward. :func:`attend` writes scores, softmax and context as one function,
and ``torch.compile`` (inductor) fuses it into a few loops over memory, forward
and backward. Measured on one training step at the EURLEX57K shape
(``benchmarks/cpu_step.py --bounds``, quiet machine): OTSeq2Set 1.28 -> 1.15 s
(10% faster), MLC2Seq 0.72 -> 0.70 s.
It costs compilations of seconds each: shapes are dynamic, so every ``S`` and
``B`` share one graph, but torch compiles again per dtype, for training vs
``no_grad`` inference, and for a size of 1 (a batch or a memory of one
position), a handful per process. That pays off on long runs, not on tests
or demos: off by default. Where the compiler fails (no C++ compiler, an
unsupported platform) a warning says so and the eager fast path runs from
then on; any other error (a wrong shape) is raised as it is — the one policy
of ``losses/compiling.py``, shared with the compiled IPOT loop.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn


def attend(query_proj: torch.Tensor, keys: torch.Tensor, keys_proj: torch.Tensor, mask: torch.Tensor,
           v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The CPU fast path (sigmoid scores) as one function, what ``torch.compile`` fuses.

    ``query_proj (B, A)`` = ``W s``, ``keys (B, S, Dk)``, ``keys_proj (B, S, A)`` = ``U h``,
    ``mask (B, S)`` True on real positions, ``v (A,)`` -> context ``(B, Dk)``, weights ``(B, S)``.
    """
    a = query_proj.unsqueeze(1) + keys_proj  # (B, S, A) = W s + U h_i
    scores = 2 * (torch.sigmoid(2 * a) @ v)  # (B, S): e_ti + vᵀ1, same softmax
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)  # (B, S)
    return torch.bmm(weights.unsqueeze(1), keys).squeeze(1), weights  # (B, Dk), (B, S)


#: the accepted values of ``impl`` (``BackboneConfig.attention_impl``; see the module docstring)
AttentionImpl = Literal["auto", "reference", "compiled"]

_COMPILED: dict[str, object] = {}  # "attend" -> losses.compiling.Compiled(attend), shared by every attention


def _compiled_attend():
    """:func:`attend` through ``torch.compile``: compiled on its first call, ``None`` where the compiler fails."""
    if "attend" not in _COMPILED:
        from losses.compiling import Compiled  # imported when asked for: ``import models`` stays light

        _COMPILED["attend"] = Compiled(attend, "attention", dynamic=True)
    return _COMPILED["attend"]


class _Context(torch.autograd.Function):
    """``c = α h`` as ``bmm`` forward; backward ``∂α = g hᵀ``, ``∂h = α ⊗ g`` (a broadcast outer product).

    ``weights (B, 1, S)``, ``keys (B, S, Dk)`` -> ``(B, 1, Dk)``. Equal to
    autograd through ``torch.bmm`` up to float rounding (tested).
    """

    @staticmethod
    def forward(ctx, weights, keys):
        ctx.save_for_backward(weights, keys)
        return torch.bmm(weights, keys)

    @staticmethod
    def backward(ctx, grad):
        weights, keys = ctx.saved_tensors  # (B, 1, S), (B, S, Dk); grad (B, 1, Dk)
        # dtypes as autograd gives them: under CPU autocast the forward ran in bf16
        # (tests/test_models.py::test_runs_under_cpu_bf16_autocast)
        grad_weights = grad_keys = None
        if ctx.needs_input_grad[0]:
            grad_weights = torch.bmm(grad, keys.transpose(1, 2).to(grad.dtype)).to(weights.dtype)  # (B, 1, S)
        if ctx.needs_input_grad[1]:
            grad_keys = (weights.transpose(1, 2).to(grad.dtype) * grad).to(keys.dtype)  # (B, S, Dk)
        return grad_weights, grad_keys


class BahdanauAttention(nn.Module):
    """Masked additive attention.

    Parameters
    ----------
    query_dim : int
        Width of the decoder state ``s``.
    key_dim : int
        Width of the attended vectors ``h``.
    attn_dim : int
        Width of the scoring space.
    impl : {"auto", "reference", "compiled"}
        ``"auto"``: the CPU fast path on a CPU (sigmoid scores, :class:`_Context`), the
        readable Eq. 4 elsewhere; ``"reference"``: the readable Eq. 4 (``tanh``, autograd's
        ``bmm``) on every device; ``"compiled"``: as ``"auto"``, with the CPU path in
        float32/float64 outside autocast compiled (:func:`attend`). Same weights ``α``
        up to float rounding (see the module docstring).
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int, impl: AttentionImpl = "auto"):
        super().__init__()
        if impl not in get_args(AttentionImpl):
            raise ValueError(f"attention impl must be one of {', '.join(get_args(AttentionImpl))}; got {impl!r}")
        self.impl = impl
        self.W = nn.Linear(query_dim, attn_dim, bias=False)
        self.U = nn.Linear(key_dim, attn_dim)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """``U h`` for all positions, computed once per sequence: (B, S, A)."""
        return self.U(keys)

    def project_query(self, query: torch.Tensor) -> torch.Tensor:
        """``W s`` for the decoder state, (B, A); computed once when one state attends twice (``c_t``, ``ĉ_t``)."""
        return self.W(query)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, keys_proj: torch.Tensor,
                mask: torch.Tensor, query_proj: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend.

        Parameters
        ----------
        query : Tensor (B, Dq), the previous decoder state ``s_{t-1}``.
        keys : Tensor (B, S, Dk)
        keys_proj : Tensor (B, S, A), from :meth:`project_keys`.
        mask : BoolTensor (B, S), True on real positions (>= 1 per row).
        query_proj : Tensor (B, A), optional; :meth:`project_query` of ``query`` if already computed.

        Returns
        -------
        context : Tensor (B, Dk)
        weights : Tensor (B, S), zero on padding, rows sum to 1.
        """
        if query_proj is None:
            query_proj = self.project_query(query)  # (B, A)
        fast = self.impl != "reference" and keys_proj.device.type == "cpu"
        if (fast and self.impl == "compiled" and keys_proj.dtype in (torch.float32, torch.float64)
                and not torch.is_autocast_enabled("cpu")):
            out = _compiled_attend()(query_proj, keys, keys_proj, mask, self.v.weight[0])
            if out is not None:  # None: the compiler failed (warned once), the eager fast path below
                return out
        a = query_proj.unsqueeze(1) + keys_proj  # (B, S, A) = W s + U h_i
        if fast:
            scores = 2 * self.v(torch.sigmoid(2 * a)).squeeze(-1)  # (B, S): e_ti + vᵀ1, same softmax
        else:
            scores = self.v(torch.tanh(a)).squeeze(-1)  # (B, S): e_ti, Eq. 4
        if scores.dtype in (torch.float16, torch.bfloat16):
            scores = scores.float()  # the softmax in float32 under autocast
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)  # (B, S)
        # a (B, 1, S) left operand: measured fast in torch 2.13 on CPU (1.6 ms vs 25 ms for
        # multiply + sum at B=32, S=333, Dk=1024); the slow case is a (B, n, 1) right operand
        w = weights.unsqueeze(1).to(keys.dtype)  # (B, 1, S)
        context = (_Context.apply(w, keys) if fast else torch.bmm(w, keys)).squeeze(1)  # (B, Dk)
        return context, weights
