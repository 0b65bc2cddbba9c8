"""Bipartite matching of gold labels to decoding steps (OTSeq2Set Section 2.3.1, Eq. 11-12).

The decoder emits N distributions :math:`p_1, \\dots, p_N`; a document has
:math:`n \\le N` gold labels. The targets of the N steps are the gold labels
re-ordered by the permutation of lowest total cost (Eq. 11)

.. math::

    \\hat\\rho = \\arg\\min_{\\rho \\in \\mathcal{O}_N} \\sum_{i=1}^{N}
    \\mathcal{C}(y_{\\rho(i)}, p_i), \\qquad
    \\mathcal{C}(y_j, p_i) = -\\mathbb{1}_{\\{y_j \\ne \\varnothing\\}}\\, p_i(y_j)
    \\quad \\text{(Eq. 12)},

solved exactly by the Hungarian method. Steps left without a real label are
trained towards the empty label :math:`\\varnothing`. Two schemes (Fig. 1):

* ``"all"``: the n real labels may be matched to any of the N steps;
* ``"first_n"``: the n real labels are matched among the first n steps, and
  steps n+1..N get :math:`\\varnothing`.

:func:`assign_targets` is the batched version used in training (one device
gather, one host transfer, scipy on per-example views). It is the composition
of :func:`launch_assignment` (device gather and the asynchronous copy to the
host) and :func:`finish_assignment` (wait, host solve, targets back), which
the set loss calls separately to queue the OT term's device work in between;
:func:`assign_targets_reference` is the per-example loop of the authors' code,
kept beside it for tests and the benchmark.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

__all__ = ["SCHEMES", "assign_targets", "assign_targets_reference", "launch_assignment", "finish_assignment"]

SCHEMES = ("all", "first_n")


def _check_inputs(probs, targets, target_mask, scheme) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if probs.dim() != 3:
        raise ValueError(f"probs must have shape (B, N, V), got {tuple(probs.shape)}")
    B = probs.shape[0]
    if targets.dim() != 2 or targets.shape[0] != B:
        raise ValueError(f"targets must have shape (B, n_max) with B={B}, got {tuple(targets.shape)}")
    if tuple(target_mask.shape) != tuple(targets.shape):
        raise ValueError(
            f"target_mask must have the shape of targets {tuple(targets.shape)}, got {tuple(target_mask.shape)}"
        )


def _solve_one(cost: np.ndarray, scheme: str) -> tuple[np.ndarray, np.ndarray]:
    """Optimal (step, label column) pairs for one example; ``cost`` is (N, n)."""
    n = cost.shape[1]
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if scheme == "first_n":
        cost = cost[:n]  # (n, n): only the first n steps take real labels
    return linear_sum_assignment(cost)


@torch.no_grad()
def assign_targets(
    probs: torch.Tensor,
    targets: torch.Tensor,
    target_mask: torch.Tensor,
    scheme: str = "all",
    *,
    empty_id: int = 0,
) -> torch.Tensor:
    r"""Targets of the N decoding steps: gold labels re-ordered by optimal matching.

    Minimises :math:`\sum_i \mathcal{C}(y_{\rho(i)}, p_i)` with
    :math:`\mathcal{C}(y_j, p_i) = -p_i(y_j)` for real labels (Eq. 11-12); the
    matching total is a sum of the given scores, so pass probabilities for the
    paper's objective (a monotone transform such as the log changes the
    optimum of a sum).

    Parameters
    ----------
    probs : Tensor, shape (B, N, V)
        Per-step label probabilities (or other scores, higher = better match).
        Only the ``(B, N, n_max)`` scores of the gold labels are gathered on the
        device and copied to the host, never the whole tensor.
    targets : LongTensor, shape (B, n_max)
        Gold labels as output ids; entries where ``target_mask`` is False are
        ignored (they must still be valid indices into V, e.g. 0).
    target_mask : BoolTensor, shape (B, n_max)
        True on real labels. Each row may hold at most N real labels.
    scheme : {"all", "first_n"}
        ``"all"``: real labels matched among all N steps; ``"first_n"``: among
        the first n steps of the row (n = its number of real labels).
    empty_id : int
        The output id of the empty label :math:`\varnothing`, target of every
        unmatched step.

    Returns
    -------
    LongTensor, shape (B, N), on the device of ``probs``
        The target output id of each step; ``empty_id`` where unmatched. A row
        without real labels is all ``empty_id``.

    Raises
    ------
    ValueError
        For an unknown scheme, inconsistent shapes, or a row of
        ``target_mask`` with more than N real labels.
    """
    return finish_assignment(launch_assignment(probs, targets, target_mask, scheme, empty_id=empty_id))


class PendingAssignment:
    """A matching whose device work is launched and whose host solve is still to do.

    Made by :func:`launch_assignment`, completed by :func:`finish_assignment`.
    Between the two, the gold-label scores travel to the host (asynchronously
    on CUDA, into pinned memory) while the caller queues more device work.
    """

    def __init__(self, *, host, ready, out, index, N, scheme, device):
        self.host = host  # (B, N + 1, n_max) float32 host tensor: scores, then the mask row; None if trivial
        self.ready = ready  # CUDA event recorded after the copy, or None
        self.out, self.index, self.N, self.scheme, self.device = out, index, N, scheme, device


@torch.no_grad()
def launch_assignment(
    probs: torch.Tensor,
    targets: torch.Tensor,
    target_mask: torch.Tensor,
    scheme: str = "all",
    *,
    empty_id: int = 0,
) -> PendingAssignment:
    """First half of :func:`assign_targets`: gather the gold-label scores and start their copy.

    Same arguments as :func:`assign_targets`. Queues on the device the gather
    of the ``(B, N, n_max)`` scores of the gold labels and their copy to the
    host (with the mask as one more row: one transfer). On CUDA the copy is
    non-blocking into pinned memory and nothing waits for it here, so the
    caller can queue more device work (the OT term) before
    :func:`finish_assignment` waits for the copy, solves on the host and
    sends the targets back.
    """
    _check_inputs(probs, targets, target_mask, scheme)
    B, N, _ = probs.shape
    n_max = targets.shape[1]
    device = probs.device
    out = torch.full((B, N), empty_id, dtype=torch.long, device=device)
    if B == 0 or N == 0 or n_max == 0:
        if target_mask.sum() > 0 and N == 0:
            raise ValueError(f"target_mask has real labels but probs has N=0 steps, shape {tuple(probs.shape)}")
        return PendingAssignment(host=None, ready=None, out=out, index=None, N=N, scheme=scheme, device=device)

    mask = target_mask.to(device=device, dtype=torch.bool)
    index = targets.to(device=device, dtype=torch.long).masked_fill(~mask, 0)  # (B, n_max)
    scores = probs.gather(2, index.unsqueeze(1).expand(B, N, n_max))  # (B, N, n_max)
    # one host transfer: the gold-label scores and, as one more row, the mask
    packed = torch.cat([scores.float(), mask.unsqueeze(1).float()], dim=1)  # (B, N + 1, n_max)
    ready = None
    if device.type == "cuda":
        host = torch.empty(packed.shape, dtype=packed.dtype, pin_memory=True)
        host.copy_(packed, non_blocking=True)
        ready = torch.cuda.Event()
        ready.record()
    else:
        host = packed.cpu()
    return PendingAssignment(host=host, ready=ready, out=out, index=index, N=N, scheme=scheme, device=device)


@torch.no_grad()
def finish_assignment(pending: PendingAssignment) -> torch.Tensor:
    """Second half of :func:`assign_targets`: wait for the scores, solve on the host, return ``(B, N)`` targets.

    The only host synchronisation of the matching is here (waiting for the
    copy started by :func:`launch_assignment`).
    """
    if pending.host is None:
        return pending.out
    if pending.ready is not None:
        pending.ready.synchronize()
    N, scheme, device = pending.N, pending.scheme, pending.device
    packed = pending.host.numpy()
    B = packed.shape[0]
    cost_all, mask_np = -packed[:, :N, :], packed[:, N, :] > 0.5  # (B, N, n_max), (B, n_max)

    counts = mask_np.sum(axis=1)  # (B,)
    if (counts > N).any():
        row = int(np.argmax(counts > N))
        raise ValueError(
            f"target_mask row {row} has {int(counts[row])} real labels, more than the N={N} "
            f"decoding steps of probs (B={B}, N={N})"
        )

    column = np.full((B, N), -1, dtype=np.int64)  # gold column assigned to each step
    for i in range(B):
        real = np.flatnonzero(mask_np[i])  # columns of the real labels
        steps, cols = _solve_one(cost_all[i][:, real], scheme)  # views, no copies of probs
        column[i, steps] = real[cols]
    column = torch.from_numpy(column)  # (B, N)
    if device.type == "cuda":
        column = column.pin_memory().to(device, non_blocking=True)
    else:
        column = column.to(device)
    matched = column >= 0
    gathered = pending.index.gather(1, column.clamp(min=0))  # (B, N)
    return torch.where(matched, gathered, pending.out)


@torch.no_grad()
def assign_targets_reference(
    probs: torch.Tensor,
    targets: torch.Tensor,
    target_mask: torch.Tensor,
    scheme: str = "all",
    *,
    empty_id: int = 0,
) -> torch.Tensor:
    """Per-example reference of :func:`assign_targets` (the authors' loop).

    Slices each example on the device, copies its ``(N, n)`` score matrix to
    the host and solves it with scipy, one example at a time. Same arguments
    and result as :func:`assign_targets`.
    """
    _check_inputs(probs, targets, target_mask, scheme)
    B, N, _ = probs.shape
    out = torch.full((B, N), empty_id, dtype=torch.long)
    for i in range(B):
        labels = targets[i][target_mask[i].bool()]  # (n,)
        n = labels.numel()
        if n > N:
            raise ValueError(f"target_mask row {i} has {n} real labels, more than N={N}")
        if n == 0:
            continue
        score = probs[i][:, labels] if scheme == "all" else probs[i][:n, labels]  # (N or n, n)
        steps, cols = linear_sum_assignment(score.float().cpu().numpy(), maximize=True)
        out[i, torch.as_tensor(steps)] = labels.cpu()[torch.as_tensor(cols)]
    return out.to(probs.device)
