"""Attention GRU decoder with optional bottleneck output (paper Eq. 8-10).

One decoding step, with ``ĉ_t`` present only when LightConv is used:

.. math::

    c_t = \\mathrm{Attn}(s_{t-1}, \\{h_i\\}), \\quad
    \\hat c_t = \\mathrm{Attn}(s_{t-1}, \\{\\hat h_j\\}) \\\\
    s_t = \\mathrm{GRU}(s_{t-1}, [e(\\hat y_{t-1}); c_t; \\hat c_t]) \\\\
    p_t = \\mathrm{softmax}(W_o [s_t; c_t; \\hat c_t; e(\\hat y_{t-1})])
    \\quad\\text{or}\\quad
    \\mathrm{softmax}(W_2 \\tanh(W_1 [s_t; c_t; \\hat c_t; e(\\hat y_{t-1})]))

The previous symbol ``ŷ_{t-1}`` is

* *student forcing* (OTSeq2Set, training and inference): the argmax of
  ``p_{t-1}``;
* *teacher forcing* (Seq2Seq / MLC2Seq / SGM training): the gold symbol;
* *greedy* (the baselines at inference): the argmax, stopping at ``EOS``.

``ŷ_0 = BOS``. The SGM baseline (Yang et al., 2018) replaces ``e(ŷ_{t-1})`` by
its *global embedding* (:class:`GlobalEmbedding`), and may mask already emitted
labels at inference (masked softmax).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import BahdanauAttention
from .specials import BOS, EOS, N_SPECIAL


@dataclass
class Memory:
    """What the decoder attends to: encoder states and LightConv states."""

    h: torch.Tensor  # (B, S, Dh)
    h_proj: torch.Tensor  # (B, S, A)
    mask: torch.Tensor  # (B, S)
    hh: torch.Tensor | None = None  # (B, S', Dh), LightConv outputs
    hh_proj: torch.Tensor | None = None  # (B, S', A)
    hh_mask: torch.Tensor | None = None  # (B, S')


@dataclass
class DecodeOutput:
    """Result of a decoding loop.

    logits : Tensor (B, T, V), masked at forbidden ids when a mask was requested.
    tokens : LongTensor (B, T), the argmax of each step (what student forcing feeds next).
    alive : BoolTensor (B, T), False on steps after a sequence emitted ``EOS``.
    """

    logits: torch.Tensor
    tokens: torch.Tensor
    alive: torch.Tensor


class _StepLinear(torch.autograd.Function):
    r"""The output layer's logits of all ``T`` steps, computed step by step, back-propagated at once.

    Forward: stacks the per-step logits ``y_t = x_t W^\top + b`` that the loop
    already computed without gradient (for the argmax fed to the next step), so
    nothing is recomputed. Backward: one batched product for all steps,
    :math:`\partial W = \sum_t G_t^\top x_t`, :math:`\partial x_t = G_t W`,
    :math:`\partial b = \sum_t G_t 1`, instead of ``T`` small products that
    each add a ``(V, z)`` gradient into ``W`` (at large V the per-step
    accumulation of the full weight gradient dominates the output layer's
    backward). Equal to autograd through per-step ``F.linear`` up to float
    rounding (tested).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, *step_logits):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return torch.stack(step_logits, dim=1)  # (B, T, V)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors  # (B, T, in), (V, in)
        B, T, _ = x.shape
        g = grad.reshape(B * T, -1)  # (B T, V)
        grad_x = (g @ weight.to(g.dtype)).reshape(x.shape).to(x.dtype)  # (B, T, in)
        grad_w = (g.t() @ x.reshape(B * T, -1).to(g.dtype)).to(weight.dtype)  # (V, in)
        grad_b = g.sum(0).to(weight.dtype) if ctx.has_bias else None  # (V,)
        return (grad_x, grad_w, grad_b) + (None,) * T


class Bottleneck(nn.Module):
    """``W_2 tanh(W_1 z)`` (Eq. 10): ``(V + z) b + b + V`` parameters instead of ``V z + V``."""

    def __init__(self, in_features: int, size: int, out_features: int):
        super().__init__()
        self.down = nn.Linear(in_features, size)
        self.up = nn.Linear(size, out_features)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(torch.tanh(self.down(z)))


class GlobalEmbedding(nn.Module):
    """SGM's global embedding (Yang et al., 2018, Eq. 11-13).

    .. math::

        \\bar e = \\sum_i \\mathrm{softmax}(o_{t-1} / \\tau)_i \\, e_i, \\quad
        H = \\sigma(W_1 e + W_2 \\bar e), \\quad
        g(y_{t-1}) = (1 - H) \\odot e + H \\odot \\bar e

    with ``e = e(y_{t-1})`` the embedding of the previous symbol and ``o_{t-1}``
    the previous step's logits; ``τ = 0.1`` sharpens the distribution.
    """

    def __init__(self, embed_dim: int, tau: float = 0.1):
        super().__init__()
        self.tau = tau
        self.W1 = nn.Linear(embed_dim, embed_dim, bias=False)
        self.W2 = nn.Linear(embed_dim, embed_dim)

    def forward(self, e: torch.Tensor, prev_logits: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """``e (B, E)``, ``prev_logits (B, V)``, ``table (V, E)`` -> ``(B, E)``."""
        probs = torch.softmax(prev_logits.float() / self.tau, dim=-1)  # (B, V)
        e_bar = probs.to(table.dtype) @ table  # (B, E)
        gate = torch.sigmoid(self.W1(e) + self.W2(e_bar))
        return (1 - gate) * e + gate * e_bar


class Decoder(nn.Module):
    """GRU decoder with masked Bahdanau attention over ``{h}`` and ``{ĥ}``.

    Parameters
    ----------
    n_outputs : int
        Output vocabulary ``V`` (specials + labels).
    embed_dim : int
        Label embedding width ``E``.
    hidden_size : int
        Decoder state width ``D``.
    context_dim : int
        Width of ``h_i`` (``2 *`` encoder hidden).
    use_lightconv : bool
        Whether a second context ``ĉ_t`` over LightConv states is used.
    bottleneck : int or None
        Bottleneck size ``b`` (Eq. 10); ``None`` for a full output layer (Eq. 9).
    dropout : float
        Dropout on the label embeddings and on the output layer's input.
    global_embedding_tau : float or None
        Enables SGM's global embedding with this temperature.
    """

    #: Training fast path of :meth:`decode` (:class:`_StepLinear`); False = the per-step reference.
    batched_output: bool = True

    def __init__(self, n_outputs: int, embed_dim: int, hidden_size: int, context_dim: int,
                 use_lightconv: bool = True, bottleneck: int | None = None, dropout: float = 0.2,
                 global_embedding_tau: float | None = None):
        super().__init__()
        self.n_outputs, self.use_lightconv = n_outputs, use_lightconv
        n_ctx = 2 if use_lightconv else 1
        self.embedding = nn.Embedding(n_outputs, embed_dim)
        self.attention = BahdanauAttention(hidden_size, context_dim, hidden_size)
        self.rnn = nn.GRUCell(embed_dim + n_ctx * context_dim, hidden_size)
        self.out_features = hidden_size + n_ctx * context_dim + embed_dim  # z
        if bottleneck is None:
            self.output = nn.Linear(self.out_features, n_outputs)
        else:
            self.output = Bottleneck(self.out_features, bottleneck, n_outputs)
        self.global_embedding = GlobalEmbedding(embed_dim, global_embedding_tau) if global_embedding_tau else None
        self.dropout = nn.Dropout(dropout)

    # -- one step ------------------------------------------------------------------
    def memory(self, h, mask, hh=None, hh_mask=None) -> Memory:
        """Pre-compute ``U h`` (and ``U ĥ``) once per batch."""
        a = self.attention
        if self.use_lightconv:
            return Memory(h, a.project_keys(h), mask, hh, a.project_keys(hh), hh_mask)
        return Memory(h, a.project_keys(h), mask)

    def step(self, prev: torch.Tensor, state: torch.Tensor, memory: Memory,
             prev_logits: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step (Eq. 8-10).

        Parameters
        ----------
        prev : LongTensor (B,), the previous symbol ``ŷ_{t-1}``.
        state : Tensor (B, D), ``s_{t-1}``.
        memory : Memory
        prev_logits : Tensor (B, V) or None, the previous logits (global embedding only).

        Returns
        -------
        logits : Tensor (B, V)
        state : Tensor (B, D), ``s_t``.
        """
        x, state = self._step_features(prev, state, memory, prev_logits)  # (B, in), (B, D)
        return self._final_linear()(x), state

    def _final_linear(self) -> nn.Linear:
        """The ``V``-wide layer: ``W_o`` (Eq. 9) or the bottleneck's ``W_2`` (Eq. 10)."""
        return self.output if isinstance(self.output, nn.Linear) else self.output.up

    def _step_features(self, prev, state, memory, prev_logits=None):
        """:meth:`step` up to the input of the ``V``-wide layer: ``(x_t (B, in), s_t (B, D))``.

        ``self._final_linear()(x_t)`` equals :meth:`step`'s logits (same ops in the same order).
        """
        e = self.embedding(prev)  # (B, E)
        if self.global_embedding is not None and prev_logits is not None:
            e = self.global_embedding(e, prev_logits, self.embedding.weight)
        e = self.dropout(e)
        q = self.attention.project_query(state)  # (B, A) = W s_{t-1}, shared by c_t and ĉ_t
        contexts = [self.attention(state, memory.h, memory.h_proj, memory.mask, q)[0]]  # c_t (B, Dh)
        if self.use_lightconv:
            contexts.append(self.attention(state, memory.hh, memory.hh_proj, memory.hh_mask, q)[0])  # ĉ_t
        rnn_in = torch.cat([e, *contexts], dim=-1)  # (B, E + n_ctx Dh)
        state = self.rnn(rnn_in, state)  # (B, D)
        z = self.dropout(torch.cat([state, *contexts, e], dim=-1))  # (B, z) = [s_t; c_t; ĉ_t; e(ŷ_{t-1})]
        x = z if isinstance(self.output, nn.Linear) else torch.tanh(self.output.down(z))  # (B, z) or (B, b)
        return x, state

    # -- decoding loop ---------------------------------------------------------------
    def decode(self, memory: Memory, state: torch.Tensor, n_steps: int, *,
               inputs: torch.Tensor | None = None, forbidden: torch.Tensor | None = None,
               forbid_repeats: bool = False, stop_at_eos: bool = False) -> DecodeOutput:
        """Run ``n_steps`` steps from ``s_0 = state`` and ``ŷ_0 = BOS``.

        Parameters
        ----------
        memory : Memory
        state : Tensor (B, D)
        n_steps : int
        inputs : LongTensor (B, n_steps) or None
            Teacher forcing: ``inputs[:, t]`` is fed at step ``t`` (starts with
            ``BOS``). ``None``: student forcing / greedy, the argmax is fed.
        forbidden : BoolTensor (V,) or None
            Output ids never predicted (logits set to ``-inf``); inference only.
        forbid_repeats : bool
            Masked softmax: an id already emitted is ``-inf`` afterwards (SGM).
        stop_at_eos : bool
            Mark steps after ``EOS`` as dead and stop once every row emitted it.

        Returns
        -------
        DecodeOutput
        """
        B, V = state.shape[0], self.n_outputs
        device = state.device
        prev = torch.full((B,), BOS, dtype=torch.long, device=device)
        emitted = torch.zeros(B, V, dtype=torch.bool, device=device)
        done = torch.zeros(B, dtype=torch.bool, device=device)
        prev_logits = None
        logits_all, tokens_all, alive_all, features = [], [], [], []
        # Fast path in training: the V-wide layer's gradient in one product over all steps
        # (_StepLinear); the per-step path (self.step) is the readable reference.
        batched_output = (self.batched_output and torch.is_grad_enabled() and self.global_embedding is None
                          and forbidden is None and not forbid_repeats)
        final = self._final_linear()
        for t in range(n_steps):
            if inputs is not None:
                prev = inputs[:, t]
            if batched_output:
                x, state = self._step_features(prev, state, memory)  # (B, in)
                with torch.no_grad():
                    logits = final(x)  # (B, V), the values of self.step's logits
                features.append(x)
            else:
                logits, state = self.step(prev, state, memory, prev_logits)  # (B, V)
            block = emitted if forbid_repeats else None
            if forbidden is not None:
                block = forbidden.expand(B, V) if block is None else block | forbidden
            if block is not None:
                logits = logits.masked_fill(block, float("-inf"))
            token = logits.detach().argmax(-1)  # (B,)
            alive_all.append(~done)
            logits_all.append(logits)
            tokens_all.append(token)
            if forbid_repeats:
                # only real labels are blocked: ∅ may repeat, EOS ends the sequence
                emitted = emitted | (F.one_hot(token, V).bool() & (token >= N_SPECIAL).unsqueeze(-1))
            if stop_at_eos:
                done = done | (token == EOS)
            prev, prev_logits = token, logits
            if stop_at_eos and bool(done.all()):
                break
        if batched_output:
            stacked = _StepLinear.apply(torch.stack(features, 1), final.weight, final.bias, *logits_all)  # (B, T, V)
        else:
            stacked = torch.stack(logits_all, 1)  # (B, T, V)
        return DecodeOutput(stacked, torch.stack(tokens_all, 1), torch.stack(alive_all, 1))
