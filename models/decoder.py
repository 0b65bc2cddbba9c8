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
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from .attention import AttentionImpl, BahdanauAttention
from .specials import BOS, EOS, N_SPECIAL

#: the accepted values of :class:`Decoder`'s ``output_impl`` (``BackboneConfig.output_impl``)
OutputImpl = Literal["batched", "per_step"]


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


class FullOutput(nn.Linear):
    """``W_o z`` (Eq. 9): an ``nn.Linear`` whose features are its input."""

    def features(self, z: torch.Tensor) -> torch.Tensor:
        """The input of the ``V``-wide layer: ``z`` itself, ``(..., in_features)``."""
        return z

    @property
    def final(self) -> nn.Linear:
        """The ``V``-wide layer (``W_o``)."""
        return self


class Bottleneck(nn.Module):
    """``W_2 tanh(W_1 z)`` (Eq. 10): ``(V + z) b + b + V`` parameters instead of ``V z + V``."""

    def __init__(self, in_features: int, size: int, out_features: int):
        super().__init__()
        self.down = nn.Linear(in_features, size)
        self.up = nn.Linear(size, out_features)

    def features(self, z: torch.Tensor) -> torch.Tensor:
        """The input of the ``V``-wide layer: ``tanh(W_1 z)``, ``(..., b)``."""
        return torch.tanh(self.down(z))

    @property
    def final(self) -> nn.Linear:
        """The ``V``-wide layer (``W_2``)."""
        return self.up

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(self.features(z))


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

    One step function (:meth:`step`, Eq. 8-10) and two loops over it:

    * :meth:`decode_train`: teacher forcing (``inputs`` given) or student
      forcing (the argmax is fed back), no masks. Its fast path back-propagates
      the ``V``-wide layer of all steps at once (:class:`_StepLinear`);
      ``output_impl="per_step"`` runs the per-step reference instead.
    * :meth:`decode_greedy`: inference, the argmax fed back with forbidden ids,
      SGM's masking of emitted labels and stopping at ``EOS``.

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
        Dropout on the label embedding ``e(ŷ_{t-1})`` (the authors' only decoder site).
    output_dropout : bool
        Also dropout on the output layer's whole input ``z`` (this toolkit's
        earlier default; ``e(ŷ_{t-1})`` is then dropped twice).
    global_embedding_tau : float or None
        Enables SGM's global embedding with this temperature.
    output_impl : {"batched", "per_step"}
        How :meth:`decode_train` back-propagates the ``V``-wide layer: ``"batched"``, one
        product for all steps (:class:`_StepLinear`), or ``"per_step"``, the readable
        reference (:meth:`step` at every step, autograd through each). SGM's global
        embedding always takes the per-step path.
    attention_impl : {"auto", "reference", "compiled"}
        The attention's ``impl`` (:class:`models.attention.BahdanauAttention`).
    """

    def __init__(self, n_outputs: int, embed_dim: int, hidden_size: int, context_dim: int,
                 use_lightconv: bool = True, bottleneck: int | None = None, dropout: float = 0.2,
                 global_embedding_tau: float | None = None, output_dropout: bool = False,
                 output_impl: OutputImpl = "batched", attention_impl: AttentionImpl = "auto"):
        super().__init__()
        if output_impl not in get_args(OutputImpl):
            raise ValueError(f"Decoder output_impl must be one of {', '.join(get_args(OutputImpl))}; "
                             f"got {output_impl!r}")
        self.output_impl = output_impl
        self.n_outputs, self.use_lightconv = n_outputs, use_lightconv
        n_ctx = 2 if use_lightconv else 1
        self.embedding = nn.Embedding(n_outputs, embed_dim)
        self.attention = BahdanauAttention(hidden_size, context_dim, hidden_size, impl=attention_impl)
        self.rnn = nn.GRUCell(embed_dim + n_ctx * context_dim, hidden_size)
        self.out_features = hidden_size + n_ctx * context_dim + embed_dim  # z
        self.output = (FullOutput(self.out_features, n_outputs) if bottleneck is None
                       else Bottleneck(self.out_features, bottleneck, n_outputs))
        self.global_embedding = GlobalEmbedding(embed_dim, global_embedding_tau) if global_embedding_tau else None
        self.dropout = nn.Dropout(dropout)
        self.output_dropout = nn.Dropout(dropout) if output_dropout else nn.Identity()

    # -- one step ------------------------------------------------------------------
    def memory(self, h, mask, hh=None, hh_mask=None) -> Memory:
        """Pre-compute ``U h`` (and ``U ĥ``) once per batch."""
        a = self.attention
        if self.use_lightconv:
            hh = hh.contiguous()  # LightConv's output is a transposed view; one layout for every step's attention
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
        x, state = self.step_features(prev, state, memory, prev_logits)  # (B, in), (B, D)
        return self.output.final(x), state

    def step_features(self, prev, state, memory, prev_logits=None) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`step` up to the input of the ``V``-wide layer.

        Parameters: as :meth:`step` (``prev (B,)``, ``state (B, D)``, ``memory``,
        ``prev_logits (B, V)`` or None). Returns ``x_t (B, in)``, the features of
        the output layer (``in = z``, or ``b`` with the bottleneck), and ``s_t (B, D)``;
        ``self.output.final(x_t)`` are :meth:`step`'s logits (same ops in the same order).
        """
        e = self.embedding(prev)  # (B, E)
        if self.global_embedding is not None and prev_logits is not None:
            e = self.global_embedding(e, prev_logits, self.embedding.weight)
        e = self.dropout(e)
        q = self.attention.project_query(state)  # (B, A) = W s_{t-1}, shared by c_t and ĉ_t
        contexts = [self.attention(state, memory.h, memory.h_proj, memory.mask, q)[0]]  # c_t (B, Dh)
        if self.use_lightconv:
            contexts.append(self.attention(state, memory.hh, memory.hh_proj, memory.hh_mask, q)[0])  # ĉ_t
        state = self.rnn(torch.cat([e, *contexts], dim=-1), state)  # (B, D), Eq. 8
        z = self.output_dropout(torch.cat([state, *contexts, e], dim=-1))  # (B, z) = [s_t; c_t; ĉ_t; e(ŷ_{t-1})]
        return self.output.features(z), state  # (B, z) or (B, b)

    # -- training loop ---------------------------------------------------------------
    def decode_train(self, memory: Memory, state: torch.Tensor, n_steps: int,
                     inputs: torch.Tensor | None = None) -> DecodeOutput:
        """Training: ``n_steps`` steps from ``s_0 = state``, no masks.

        Parameters
        ----------
        memory : Memory
        state : Tensor (B, D), ``s_0``.
        n_steps : int
        inputs : LongTensor (B, n_steps) or None
            Teacher forcing: ``inputs[:, t]`` is fed at step ``t`` (starts with
            ``BOS``). ``None``: student forcing, the argmax of step ``t - 1`` is fed.

        Returns
        -------
        DecodeOutput (``alive`` all True).
        """
        # the fast path needs each step's logits only as values (argmax); SGM's global
        # embedding feeds them into the next step, so it takes the per-step path
        fast = self.output_impl == "batched" and self.global_embedding is None
        prev = torch.full((state.shape[0],), BOS, dtype=torch.long, device=state.device)  # (B,)
        logits, features, tokens = [], [], []
        for t in range(n_steps):
            if inputs is not None:
                prev = inputs[:, t]
            if fast:
                x, state = self.step_features(prev, state, memory)  # (B, in)
                with torch.no_grad():
                    step_logits = self.output.final(x)  # (B, V): the values of self.step's logits
                features.append(x)
            else:
                step_logits, state = self.step(prev, state, memory, logits[-1] if logits else None)
            logits.append(step_logits)
            prev = step_logits.detach().argmax(-1)  # (B,)
            tokens.append(prev)
        if fast:
            final = self.output.final
            stacked = _StepLinear.apply(torch.stack(features, 1), final.weight, final.bias, *logits)  # (B, T, V)
        else:
            stacked = torch.stack(logits, 1)  # (B, T, V)
        tokens = torch.stack(tokens, 1)  # (B, T)
        return DecodeOutput(stacked, tokens, torch.ones_like(tokens, dtype=torch.bool))

    # -- inference loop --------------------------------------------------------------
    def decode_greedy(self, memory: Memory, state: torch.Tensor, n_steps: int, *,
                      forbidden: torch.Tensor | None = None, forbid_repeats: bool = False,
                      stop_at_eos: bool = False) -> DecodeOutput:
        """Inference: the argmax fed back, up to ``n_steps`` steps from ``s_0 = state``.

        Parameters
        ----------
        memory : Memory
        state : Tensor (B, D)
        n_steps : int
        forbidden : BoolTensor (V,) or None
            Output ids never predicted (logits set to ``-inf``).
        forbid_repeats : bool
            Masked softmax: a label already emitted is ``-inf`` afterwards (SGM).
        stop_at_eos : bool
            Mark steps after ``EOS`` as dead and stop once every row emitted it.

        Returns
        -------
        DecodeOutput (logits masked where forbidden).
        """
        B, V = state.shape[0], self.n_outputs
        prev = torch.full((B,), BOS, dtype=torch.long, device=state.device)  # (B,)
        emitted = torch.zeros(B, V, dtype=torch.bool, device=state.device)  # (B, V)
        done = torch.zeros(B, dtype=torch.bool, device=state.device)  # (B,)
        logits, tokens, alive = [], [], []
        for t in range(n_steps):
            step_logits, state = self.step(prev, state, memory, logits[-1] if logits else None)  # (B, V)
            blocked = emitted if forbid_repeats else None
            if forbidden is not None:
                blocked = forbidden.expand(B, V) if blocked is None else blocked | forbidden
            if blocked is not None:
                step_logits = step_logits.masked_fill(blocked, float("-inf"))
            prev = step_logits.detach().argmax(-1)  # (B,)
            alive.append(~done)
            logits.append(step_logits)
            tokens.append(prev)
            if forbid_repeats:
                # only real labels are blocked: ∅ may repeat, EOS ends the sequence
                emitted = emitted | (F.one_hot(prev, V).bool() & (prev >= N_SPECIAL).unsqueeze(-1))
            if stop_at_eos:
                done = done | (prev == EOS)
                if bool(done.all()):
                    break
        return DecodeOutput(torch.stack(logits, 1), torch.stack(tokens, 1), torch.stack(alive, 1))

    def decode(self, memory: Memory, state: torch.Tensor, n_steps: int, *,
               inputs: torch.Tensor | None = None, forbidden: torch.Tensor | None = None,
               forbid_repeats: bool = False, stop_at_eos: bool = False) -> DecodeOutput:
        """:meth:`decode_greedy` when a mask or ``EOS`` stopping is asked for, else :meth:`decode_train`.

        Parameters: ``memory``, ``state (B, D)``, ``n_steps``; ``inputs (B, n_steps)`` (teacher
        forcing, training loop only); ``forbidden (V,)``, ``forbid_repeats``, ``stop_at_eos``
        (greedy loop). Returns the chosen loop's :class:`DecodeOutput`.
        """
        if forbidden is not None or forbid_repeats or stop_at_eos:
            if inputs is not None:
                raise ValueError("teacher forcing (inputs) cannot be combined with masks or EOS stopping")
            return self.decode_greedy(memory, state, n_steps, forbidden=forbidden,
                                      forbid_repeats=forbid_repeats, stop_at_eos=stop_at_eos)
        return self.decode_train(memory, state, n_steps, inputs=inputs)
