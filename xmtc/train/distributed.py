"""Distributed training under ``torchrun``: process group, rank context, sharded batches, gathering.

When ``torch.distributed`` is initialised, ``xmtc.train.engine.fit`` wraps the model
in ``DistributedDataParallel`` around :class:`LossModule`, each rank takes its
share of every global batch (:class:`ShardedBatchSampler`), evaluation gathers
every rank's predictions (:func:`gather`, each document once), the ranks agree
after every batch on whether to stop or checkpoint (:func:`agree`), and only
rank 0 writes files and reports progress (:attr:`DistContext.is_main`). Outside
torchrun everything here reduces to one process of rank 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class DistContext:
    """Rank and world size; ``world_size == 1`` outside torchrun."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def init_distributed() -> DistContext:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1).

    NCCL on CUDA, gloo on CPU; a CUDA process uses the GPU ``LOCAL_RANK``.
    Outside torchrun (or when already initialised) this only reports the context.
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    return distributed_context()


def distributed_context() -> DistContext:
    """Current rank / world size from ``torch.distributed`` (initialised by the caller)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size())
    return DistContext()


class ShardedBatchSampler(torch.utils.data.Sampler):
    """Rank ``rank``'s share of each global batch: positions ``rank, rank + world, ...``.

    All ranks iterate the same global batches (same seed and epoch), so the
    global batch of a K-process run is the batch of a 1-process run.

    A global batch with fewer documents than ranks leaves some ranks without a
    share. In evaluation such a rank just skips it (predictions are gathered
    at the end). In training (``drop_short=True``) every rank must take part
    in every step's gradient all-reduce, so such a batch is left out on every
    rank: at most ``world_size - 1`` documents of an epoch, in a batch the
    seeded order makes different each epoch.
    """

    def __init__(self, batch_sampler, rank: int = 0, world_size: int = 1, drop_short: bool = False):
        self.batch_sampler, self.rank, self.world_size = batch_sampler, rank, world_size
        self.drop_short = drop_short

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.batch_sampler, "set_epoch"):
            self.batch_sampler.set_epoch(epoch)

    def __iter__(self):
        for batch in self.batch_sampler:
            if self.drop_short and len(batch) < self.world_size:
                continue  # the same decision on every rank: the ranks stay in step
            part = list(batch)[self.rank :: self.world_size]
            if part:
                yield part

    def __len__(self) -> int:
        if self.drop_short:
            return sum(1 for batch in self.batch_sampler if len(batch) >= self.world_size)
        return len(self.batch_sampler)

    def base_batches(self, steps: int) -> int:
        """Global batches that this rank's first ``steps`` batches cover (short ones left out included).

        A mid-epoch checkpoint records this position in the global order, which is
        the same on every rank and for any number of ranks.
        """
        if steps <= 0:
            return 0
        taken = 0
        for i, batch in enumerate(self.batch_sampler, start=1):
            if not (self.drop_short and len(batch) < self.world_size) and list(batch)[self.rank :: self.world_size]:
                taken += 1
                if taken == steps:
                    return i
        raise ValueError(f"rank {self.rank} has fewer than {steps} batches")


def gather(obj, dist: DistContext) -> list:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` outside torchrun."""
    if not dist.active:
        return [obj]
    import torch.distributed as tdist

    gathered = [None] * dist.world_size
    tdist.all_gather_object(gathered, obj)
    return gathered


def agree(values: list[int], dist: DistContext, device=None) -> list[int]:
    """The element-wise maximum of ``values`` over the ranks (``values`` itself outside torchrun).

    After every training batch the ranks agree on whether to stop and whether a
    checkpoint is due (``xmtc.train.engine.fit``), so that all take the same decision at
    the same batch. ``device``: where the tensor goes (the GPU under NCCL).
    """
    if not dist.active:
        return [int(v) for v in values]
    import torch.distributed as tdist

    t = torch.tensor([int(v) for v in values], dtype=torch.int64, device=device)
    tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
    return [int(v) for v in t.tolist()]


def barrier(dist: DistContext) -> None:
    """Wait for every rank (no-op outside torchrun)."""
    if dist.active:
        import torch.distributed as tdist

        tdist.barrier()


class LossModule(nn.Module):
    """``forward(batch) = model.compute_loss(batch)``, so DDP sees the loss computation."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.module = model

    def forward(self, batch):
        return self.module.compute_loss(batch)


def unwrap(model: nn.Module) -> nn.Module:
    """The user model inside a DDP / loss wrapper."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    return model


__all__ = ["DistContext", "LossModule", "ShardedBatchSampler", "agree", "barrier", "distributed_context", "gather",
           "init_distributed", "unwrap"]
