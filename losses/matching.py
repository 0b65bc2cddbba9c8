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
gather, one host transfer, scipy on per-example views). It works in two
halves: the device gather of the gold-label scores with their asynchronous
copy to the host, then the host solve (:meth:`PendingAssignment.result`). With
``wait=False`` it returns after the first half, so that the caller can queue
more device work while the scores travel (the set loss queues the OT term's);
training calls it this way. :func:`assign_targets_reference` is the
per-example loop of the authors' code, kept beside it for tests and the
benchmark.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

__all__ = ["SCHEMES", "PendingAssignment", "assign_targets", "assign_targets_reference"]

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
    wait: bool = True,
) -> torch.Tensor | PendingAssignment:
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
    wait : bool
        True: solve and return the targets. False: return a
        :class:`PendingAssignment` as soon as the device gather and the copy
        of the scores to the host are queued (asynchronous on CUDA); its
        :meth:`~PendingAssignment.result` waits for the copy, solves on the
        host and returns the targets. ``assign_targets(..., wait=False).result()``
        equals ``assign_targets(...)``.

    Returns
    -------
    LongTensor, shape (B, N), on the device of ``probs``
        The target output id of each step; ``empty_id`` where unmatched. A row
        without real labels is all ``empty_id``. (A :class:`PendingAssignment`
        of it for ``wait=False``.)

    Raises
    ------
    ValueError
        For an unknown scheme, inconsistent shapes, or a row of
        ``target_mask`` with more than N real labels (the latter from
        :meth:`~PendingAssignment.result` when ``wait=False``).
    """
    _check_inputs(probs, targets, target_mask, scheme)
    B, N, _ = probs.shape
    n_max = targets.shape[1]
    device = probs.device
    out = torch.full((B, N), empty_id, dtype=torch.long, device=device)  # (B, N), empty_id where unmatched
    if B == 0 or N == 0 or n_max == 0:
        if target_mask.sum() > 0 and N == 0:
            raise ValueError(f"target_mask has real labels but probs has N=0 steps, shape {tuple(probs.shape)}")
        pending = PendingAssignment(host=None, ready=None, out=out, index=None, scheme=scheme)
        return pending.result() if wait else pending

    # device: gather the gold-label scores and start their copy to the host
    mask = target_mask.to(device=device, dtype=torch.bool)  # (B, n_max)
    index = targets.to(device=device, dtype=torch.long).masked_fill(~mask, 0)  # (B, n_max)
    scores = probs.gather(2, index.unsqueeze(1).expand(B, N, n_max))  # (B, N, n_max)
    # one host transfer: the gold-label scores and, as one more row, the mask
    packed = torch.cat([scores.float(), mask.unsqueeze(1).float()], dim=1)  # (B, N + 1, n_max)
    ready = None
    if device.type == "cuda":  # non-blocking into pinned memory; nothing waits for it here
        host = torch.empty(packed.shape, dtype=packed.dtype, pin_memory=True)
        host.copy_(packed, non_blocking=True)
        ready = torch.cuda.Event()
        ready.record()
    else:
        host = packed.cpu()
    pending = PendingAssignment(host=host, ready=ready, out=out, index=index, scheme=scheme)
    return pending.result() if wait else pending


class PendingAssignment:
    """A matching whose device work is queued and whose host solve is still to do.

    Returned by :func:`assign_targets` with ``wait=False``. Between the two,
    the gold-label scores travel to the host (asynchronously on CUDA, into
    pinned memory) while the caller queues more device work; :meth:`result`
    finishes the job.
    """

    def __init__(self, *, host, ready, out, index, scheme):
        self.host = host  # (B, N + 1, n_max) float32 host tensor: scores, then the mask row; None if trivial
        self.ready = ready  # CUDA event recorded after the copy, or None
        self.out = out  # (B, N) all empty_id, on the device
        self.index = index  # (B, n_max) gold output ids (0 on padding), on the device
        self.scheme = scheme

    @torch.no_grad()
    def result(self) -> torch.Tensor:
        """Wait for the scores, solve each example on the host (Eq. 11-12), return the ``(B, N)`` targets.

        The only host synchronisation of the matching is here (waiting for the
        copy started by :func:`assign_targets`).
        """
        if self.host is None:
            return self.out
        if self.ready is not None:
            self.ready.synchronize()
        B, N = self.out.shape
        packed = self.host.numpy()  # (B, N + 1, n_max)
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
            steps, cols = _solve_one(cost_all[i][:, real], self.scheme)  # views, no copies of probs
            column[i, steps] = real[cols]
        column = torch.from_numpy(column)  # (B, N)
        device = self.out.device
        if device.type == "cuda":
            column = column.pin_memory().to(device, non_blocking=True)
        else:
            column = column.to(device)
        matched = column >= 0
        gathered = self.index.gather(1, column.clamp(min=0))  # (B, N)
        return torch.where(matched, gathered, self.out)


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
