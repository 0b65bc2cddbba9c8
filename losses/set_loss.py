"""The OTSeq2Set training loss (Section 2.3, Eq. 13-17).

.. math::

    \\mathcal{L} = \\mathcal{L}_{match}(\\hat y, p) + \\lambda\\, \\mathcal{L}_{OT}(p, y)
    \\qquad \\text{(Eq. 17, } \\lambda = 8)

* **Matching loss (Eq. 13).** The gold labels are re-ordered by the optimal
  bipartite matching (Eq. 11-12, :mod:`losses.matching`); step i is trained
  towards its assigned target :math:`\\hat y_i` by negative log-likelihood,
  with weight 1 for a real label and :math:`\\lambda_\\varnothing = 0.2` for the
  empty label:

  .. math::

      \\mathcal{L}_{match} = \\frac{\\sum_{b,i} w_{bi}\\,(-\\log p_{bi}(\\hat y_{bi}))}
                                {\\sum_{b,i} w_{bi}}, \\qquad
      w_{bi} = \\begin{cases} 1 & \\hat y_{bi} \\ne \\varnothing \\\\
                             \\lambda_\\varnothing & \\hat y_{bi} = \\varnothing \\end{cases}

  **Normalisation choice:** the weighted mean over all B x N steps of the
  batch, i.e. exactly ``F.nll_loss(..., weight=w, reduction="mean")`` as in the
  authors' code, so that :math:`\\lambda = 8` keeps the balance against the OT
  term that the published results were tuned with. The NLL is
  :math:`\\operatorname{logsumexp}(z_i) - z_i(\\hat y_i)`, i.e. ``-log_softmax``
  (never ``log(softmax)``), fused with the softmax in one autograd op
  (:class:`_SoftmaxMatchNLL`) because the (B, N, V) passes dominate the cost.

* **Semantic OT loss (Eq. 14-16).** With label embeddings
  :math:`E \\in \\mathbb{R}^{V \\times d}` (detached in this term, as in the
  authors' code), step i's expected embedding :math:`E^\\top p_i` is compared to
  each real gold label's embedding :math:`E^\\top 1_{y_j}` by cosine distance

  .. math::

      C_{ij} = 1 - \\frac{(E^\\top p_i)^\\top E^\\top 1_{y_j}}
                        {\\max(\\lVert E^\\top p_i\\rVert \\lVert E^\\top 1_{y_j}\\rVert, \\epsilon)},

  the plan :math:`\\Gamma` comes from IPOT (:mod:`losses.ipot`) with uniform
  marginals :math:`1/N` over the steps and :math:`1/n` over the real labels
  (padded label columns get weight 0, hence no mass) and is a constant (no
  gradient through it). Per example :math:`\\mathcal{L}_{OT} = \\langle C, \\Gamma\\rangle`;
  the batch value is the mean over all B examples, as in the authors' code (a
  document without labels contributes 0).

Everything is computed in float32 (float64 inputs stay float64), also when
the logits come from bf16/fp16 autocast; autocast is switched off inside.
:func:`set_loss_reference` is the per-example version (slicing, scipy, numpy
IPOT loop, as the authors' code) kept beside it for tests and the benchmark.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from .ipot import ipot, ipot_fused, ipot_reference  # noqa: F401 (ipot, ipot_fused: via _ipot_solver)
from .matching import SCHEMES, assign_targets_reference, finish_assignment, launch_assignment

__all__ = ["set_loss", "set_loss_reference", "cosine_distance"]

_EPS = 1e-8

#: Module-level names :func:`set_loss` calls for its two per-example steps, looked
#: up at call time, so that ``benchmarks/train_step.py`` can time them by wrapping.
TIMED_SECTIONS = {"matching": ("launch_assignment", "finish_assignment"), "ipot": ("ipot", "ipot_fused")}
IPOT_IMPLS = ("auto", "eager", "fused")


def _ipot_solver(impl: str, device: torch.device):
    """``(function, is_fused)`` of IPOT for ``impl`` (see :func:`set_loss`), looked up at call time."""
    if impl not in IPOT_IMPLS:
        raise ValueError(f"ipot_impl must be one of {IPOT_IMPLS}, got {impl!r}")
    fused = impl == "fused" or (impl == "auto" and device.type == "cuda")
    return (globals()["ipot_fused"], True) if fused else (globals()["ipot"], False)


def cosine_distance(x: torch.Tensor, y: torch.Tensor, eps: float = _EPS) -> torch.Tensor:
    r"""Pairwise cosine distance :math:`1 - x_i^\top y_j / \max(\lVert x_i\rVert \lVert y_j\rVert, \epsilon)` (Eq. 16).

    Parameters
    ----------
    x : Tensor, shape (B, m, d)
    y : Tensor, shape (B, n, d)
    eps : float
        Guard against zero vectors (a zero vector is at distance 1 from all).

    Returns
    -------
    Tensor, shape (B, m, n)
    """
    dots = torch.bmm(x, y.transpose(1, 2))  # (B, m, n)
    norms = x.norm(dim=2).unsqueeze(2) * y.norm(dim=2).unsqueeze(1)  # (B, m, n)
    return 1.0 - dots / norms.clamp(min=eps)


class _SoftmaxMatchNLL(torch.autograd.Function):
    r"""``probs = softmax(z)``, the matched targets ``y = assign(probs)``, ``nll = -log softmax(z)_y``
    and the expected embeddings :math:`E^\top p` with their IPOT plan.

    One fused op so that the (B, N, V) tensor is traversed as few times as
    possible (it dominates the loss's cost at large V): the forward computes
    ``softmax`` and ``logsumexp`` once; the backward combines all outputs'
    gradients in one expression,

    .. math::

        \frac{\partial \mathcal{L}}{\partial z} = p \odot \big(g - \langle p, g\rangle + \bar g_{nll}\big)
        - \bar g_{nll}\, 1_y, \qquad g = \frac{\partial \mathcal{L}}{\partial p} + \frac{\partial \mathcal{L}}{\partial (E^\top p)} E^\top,

    with :math:`\bar g_{nll} = \partial \mathcal{L} / \partial\, nll`.

    The order of the forward overlaps host and device: the matching's
    gold-label scores are gathered and their copy to the host started
    (:func:`losses.matching.launch_assignment`), then the OT term's device work
    is queued (expected embeddings, cosine cost, IPOT plan), and only then does
    the host wait for the scores and solve the assignment
    (:func:`losses.matching.finish_assignment`) while the device runs IPOT.
    Checked against plain autograd (``log_softmax`` + ``gather``, ``probs @ E``)
    in the tests through :func:`set_loss_reference`.
    """

    @staticmethod
    def forward(ctx, logits, emb, match, transport):
        lse = torch.logsumexp(logits, dim=-1, keepdim=True)  # (B, N, 1)
        probs = torch.softmax(logits, dim=-1)  # (B, N, V)
        pending = match[0](probs)  # device gather + asynchronous copy of the gold scores
        expected = plan = None
        if emb is not None:
            expected = probs @ emb  # (B, N, E)
            plan = transport(expected)  # (B, N, n_max), queued before the host solve
        target = match[1](pending)  # (B, N): wait for the copy, Hungarian on the host
        nll = (lse - logits.gather(2, target.unsqueeze(2))).squeeze(2)  # (B, N) = -log_softmax at y
        ctx.save_for_backward(probs, target, emb)
        ctx.mark_non_differentiable(*([target] if plan is None else [target, plan]))
        return probs, nll, target, expected, plan

    @staticmethod
    def backward(ctx, grad_probs, grad_nll, _grad_target, grad_expected, _grad_plan):
        probs, target, emb = ctx.saved_tensors
        if grad_expected is not None:
            g_emb = grad_expected @ emb.t()  # (B, N, V) = dL/d(E^T p) E^T
            grad_probs = g_emb if grad_probs is None else grad_probs + g_emb
        g_nll = grad_nll.unsqueeze(2)  # (B, N, 1)
        if grad_probs is None:
            grad = probs * g_nll  # (B, N, V)
        else:
            inner = torch.linalg.vecdot(grad_probs, probs, dim=2).unsqueeze(2)  # (B, N, 1) = <p, g>
            grad = (grad_probs + (g_nll - inner)).mul_(probs)  # (B, N, V), two passes over V
        grad.scatter_add_(2, target.unsqueeze(2), -g_nll)
        return grad, None, None, None


def _compute_dtype(logits: torch.Tensor) -> torch.dtype:
    return torch.float64 if logits.dtype == torch.float64 else torch.float32


def _check(logits, targets, target_mask, label_embeddings, scheme, ot_weight, reduction) -> None:
    if logits.dim() != 3:
        raise ValueError(f"logits must have shape (B, N, V), got {tuple(logits.shape)}")
    B, N, V = logits.shape
    if targets.dim() != 2 or targets.shape[0] != B:
        raise ValueError(f"targets must have shape (B, n_max) with B={B}, got {tuple(targets.shape)}")
    if tuple(target_mask.shape) != tuple(targets.shape):
        raise ValueError(
            f"target_mask must have the shape of targets {tuple(targets.shape)}, got {tuple(target_mask.shape)}"
        )
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if ot_weight != 0:
        if label_embeddings is None:
            raise ValueError("label_embeddings of shape (V, E) are required when ot_weight != 0")
        if label_embeddings.dim() != 2 or label_embeddings.shape[0] != V:
            raise ValueError(
                f"label_embeddings must have shape (V={V}, E), got {tuple(label_embeddings.shape)}"
            )


def _reduce(match_num, match_den, ot, ot_weight, reduction) -> dict[str, torch.Tensor]:
    """Per-example (B,) pieces -> the dict of named terms."""
    if reduction == "none":
        match = match_num / match_den.clamp(min=_EPS)  # (B,)
        return {"loss": match + ot_weight * ot, "match": match, "ot": ot, "match_weight": match_den}
    match = match_num.sum() / match_den.sum().clamp(min=_EPS)
    ot = ot.mean() if ot.numel() else ot.sum()
    return {"loss": match + ot_weight * ot, "match": match, "ot": ot}


def set_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    target_mask: torch.Tensor,
    label_embeddings: torch.Tensor | None = None,
    *,
    scheme: str = "all",
    empty_id: int = 0,
    empty_weight: float = 0.2,
    ot_weight: float = 8.0,
    ipot_beta: float = 1.0,
    ipot_iter: int = 50,
    ipot_inner_iter: int = 1,
    reduction: str = "mean",
    ipot_impl: str = "auto",
) -> dict[str, torch.Tensor]:
    r"""OTSeq2Set loss :math:`\mathcal{L}_{match} + \lambda \mathcal{L}_{OT}` (Eq. 13-17), batched.

    Parameters
    ----------
    logits : Tensor, shape (B, N, V)
        Decoder scores of the N steps over the output vocabulary (any float
        dtype; computed in float32).
    targets : LongTensor, shape (B, n_max)
        Gold labels as output ids; padded entries (``target_mask`` False) are
        ignored but must be valid indices, e.g. 0.
    target_mask : BoolTensor, shape (B, n_max)
        True on real labels; at most N per row.
    label_embeddings : Tensor, shape (V, E), optional
        Embedding of every output id; required when ``ot_weight != 0``.
        Detached in the OT term.
    scheme : {"all", "first_n"}
        Assignment scheme of the bipartite matching (:func:`losses.matching.assign_targets`).
    empty_id : int
        Output id of the empty label :math:`\varnothing`.
    empty_weight : float
        :math:`\lambda_\varnothing`, weight of the steps trained towards :math:`\varnothing` (Eq. 13).
    ot_weight : float
        :math:`\lambda` of Eq. 17; 0 skips the OT term (``"ot"`` is then 0).
    ipot_beta, ipot_iter, ipot_inner_iter : float, int, int
        IPOT's :math:`\beta`, outer and inner iterations.
    reduction : {"mean", "none"}
        ``"mean"``: 0-d terms as described in the module docstring.
        ``"none"``: per-example (B,) terms — ``"match"`` is the example's
        weighted mean NLL, ``"ot"`` its :math:`\langle C, \Gamma\rangle`,
        ``"loss"`` = match + ot_weight * ot, and ``"match_weight"`` the example's
        :math:`\sum_i w_{bi}`, so that the batch match term is the
        ``match_weight``-weighted mean of the per-example ones and the batch OT
        term their plain mean.
    ipot_impl : {"auto", "eager", "fused"}
        IPOT implementation: ``"eager"`` :func:`losses.ipot.ipot`; ``"fused"``
        :func:`losses.ipot.ipot_fused` (compiled loop, one CUDA graph on GPUs,
        eager fallback where compiling fails); ``"auto"``: fused on CUDA,
        eager elsewhere. Same plan up to float rounding.

    Returns
    -------
    dict of str to Tensor
        ``{"loss", "match", "ot"}`` (plus ``"match_weight"`` for ``reduction="none"``).
    """
    _check(logits, targets, target_mask, label_embeddings, scheme, ot_weight, reduction)
    B, N, V = logits.shape
    dtype = _compute_dtype(logits)
    with torch.autocast(device_type=logits.device.type, enabled=False):
        mask = target_mask.to(device=logits.device, dtype=torch.bool)  # (B, n_max)
        index = targets.to(device=logits.device, dtype=torch.long).masked_fill(~mask, 0)  # (B, n_max)
        # Eq. 11-13: softmax, match (no grad), weighted NLL of the re-ordered targets;
        # Eq. 14-16's expected embeddings and IPOT plan are computed inside the same op,
        # queued on the device before the host solve of the matching
        match = (
            functools.partial(launch_assignment, targets=index, target_mask=mask, scheme=scheme, empty_id=empty_id),
            finish_assignment,
        )
        emb = gold = col_weight = row_weight = None
        if ot_weight != 0:
            emb = label_embeddings.detach().to(device=logits.device, dtype=dtype)  # (V, E)
            gold = emb[index]  # (B, n_max, E)
            n = mask.sum(dim=1, keepdim=True).to(dtype)  # (B, 1)
            col_weight = mask.to(dtype) / n.clamp(min=1.0)  # (B, n_max), 1/n on real labels
            row_weight = torch.full((B, N), 1.0 / max(N, 1), dtype=dtype, device=logits.device)  # (B, N)
        solver, fused = _ipot_solver(ipot_impl, logits.device)
        extra = {"pad_to": N} if fused else {}  # one compiled shape for every n_max

        def transport(expected):  # (B, N, E) -> constant plan (B, N, n_max), no gradient
            cost = cosine_distance(expected, gold)  # (B, N, n_max)
            return solver(cost, row_weight, col_weight, beta=ipot_beta, n_iter=ipot_iter,
                          inner_iter=ipot_inner_iter, **extra)

        probs, nll, assigned, expected, plan = _SoftmaxMatchNLL.apply(logits.to(dtype), emb, match, transport)
        weight = torch.where(
            assigned == empty_id,
            torch.full_like(nll, empty_weight),
            torch.ones_like(nll),
        )  # (B, N)
        match_num = (weight * nll).sum(dim=1)  # (B,)
        match_den = weight.sum(dim=1)  # (B,)

        # Eq. 14-16: semantic OT between expected and gold label embeddings
        if ot_weight != 0:
            cost = cosine_distance(expected, gold)  # (B, N, n_max), the same values the plan was solved for
            ot = (cost * plan).sum(dim=(1, 2))  # (B,)
        else:
            ot = torch.zeros(B, dtype=dtype, device=logits.device)
        return _reduce(match_num, match_den, ot, ot_weight, reduction)


def set_loss_reference(
    logits: torch.Tensor,
    targets: torch.Tensor,
    target_mask: torch.Tensor,
    label_embeddings: torch.Tensor | None = None,
    *,
    scheme: str = "all",
    empty_id: int = 0,
    empty_weight: float = 0.2,
    ot_weight: float = 8.0,
    ipot_beta: float = 1.0,
    ipot_iter: int = 50,
    ipot_inner_iter: int = 1,
    reduction: str = "mean",
) -> dict[str, torch.Tensor]:
    """Per-example reference of :func:`set_loss`, structured as the authors' code.

    Plain autograd throughout. The softmax, the NLL (``log_softmax`` +
    ``gather``, the authors' batched ``nll_loss``) and the expected embeddings
    are batched, as the authors do; the matching is a per-example scipy loop (:func:`losses.matching.assign_targets_reference`)
    and the OT term a per-example loop: slice the example's real labels, build
    its ``(N, n)`` cosine cost, copy it to the host, run the numpy IPOT
    (:func:`losses.ipot.ipot_reference`), copy the plan back. Same arguments
    and result as :func:`set_loss` (up to float rounding).
    """
    _check(logits, targets, target_mask, label_embeddings, scheme, ot_weight, reduction)
    B, N, V = logits.shape
    dtype = _compute_dtype(logits)
    log_probs = F.log_softmax(logits.to(dtype), dim=-1)  # (B, N, V)
    probs = log_probs.exp()  # (B, N, V)
    index = targets.masked_fill(~target_mask.bool(), 0)
    assigned = assign_targets_reference(probs.detach(), index, target_mask, scheme, empty_id=empty_id)
    nll = -log_probs.gather(2, assigned.unsqueeze(2)).squeeze(2)  # (B, N), batched as the authors' nll_loss
    weight = torch.where(assigned == empty_id, torch.full_like(nll, empty_weight), torch.ones_like(nll))  # (B, N)
    match_num, match_den = (weight * nll).sum(1), weight.sum(1)  # (B,), (B,)
    ots = []
    if ot_weight != 0:
        emb = label_embeddings.detach().to(dtype)  # (V, E)
        expected = probs @ emb  # (B, N, E)
    for i in range(B):
        labels = targets[i][target_mask[i].bool()]  # (n,)
        if ot_weight == 0 or labels.numel() == 0:
            ots.append(torch.zeros((), dtype=dtype))
            continue
        cost = cosine_distance(expected[i : i + 1], emb[labels].unsqueeze(0))[0]  # (N, n)
        plan = ipot_reference(
            cost.detach().cpu().numpy(), beta=ipot_beta, n_iter=ipot_iter, inner_iter=ipot_inner_iter
        )  # (N, n)
        ots.append((cost * torch.as_tensor(plan, dtype=dtype)).sum())
    return _reduce(match_num, match_den, torch.stack(ots), ot_weight, reduction)
