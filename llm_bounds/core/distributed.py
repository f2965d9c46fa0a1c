"""Data parallelism through ``torch.distributed`` (launched by ``torchrun``); a no-op in one process.

Training: every rank builds the same frozen model and the same P, draws the same *global* batch
and takes its own equal slice of rows; the gradient of z (d numbers) is averaged with one
all-reduce, so every rank takes the identical optimizer step and a run on k ranks matches one
rank at the same global batch. Evaluation: the sampled units are split into contiguous shards,
one per rank, and the per-unit results are gathered back in sample order. Only rank 0 writes files.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from llm_bounds.core.errors import require


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True on rank 0 (and in a single process): the only rank that writes files or prints tables."""
    return rank() == 0


def init_from_env(device: str = "auto") -> int:
    """Join the process group that ``torchrun`` describes in the environment; returns the world size.

    Uses gloo on the CPU and nccl on GPUs (one GPU per local rank). Without ``WORLD_SIZE`` > 1 in
    the environment nothing happens.
    """
    n = int(os.environ.get("WORLD_SIZE", "1"))
    if n <= 1 or dist.is_initialized():
        return world_size()
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return world_size()


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def local_rows(batch: torch.Tensor) -> torch.Tensor:
    """This rank's equal, contiguous share of the rows of a global batch."""
    n = world_size()
    if n == 1:
        return batch
    require(batch.shape[0] % n == 0, f"the global batch of {batch.shape[0]} rows does not split over {n} ranks; "
                                     f"use a --batch-size divisible by {n}")
    k = batch.shape[0] // n
    return batch[rank() * k:(rank() + 1) * k]


def average_gradient(param: torch.nn.Parameter) -> None:
    """Replace ``param.grad`` by its mean over ranks (one all-reduce of d numbers)."""
    if world_size() > 1 and param.grad is not None:
        dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)
        param.grad /= world_size()


def mean_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over ranks (itself in one process)."""
    if world_size() == 1:
        return x
    x = x.clone()
    dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x / world_size()


def shard_bounds(count: int) -> tuple[int, int]:
    """[start, end) of this rank's contiguous shard of ``count`` items (shards differ by at most one)."""
    n, r = world_size(), rank()
    return (count * r) // n, (count * (r + 1)) // n


def gather_objects(obj) -> list:
    """Every rank's ``obj``, in rank order (a list with just ``obj`` in one process)."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out

