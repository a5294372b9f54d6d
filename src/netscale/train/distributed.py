"""Data-parallel set-up under ``torchrun`` (WORLD_SIZE > 1): the process group and the few
collectives the trainer uses. With one process every call is a no-op."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistEnv:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owned: bool = False  # this module created the process group (and destroys it)

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_dist(device: torch.device, distributed: bool | None) -> tuple[DistEnv, torch.device]:
    """The process group of this run (gloo on CPU, NCCL on GPU) and this rank's device;
    ``distributed=None`` follows WORLD_SIZE."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if distributed is False or (distributed is None and world <= 1):
        return DistEnv(), device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    owned = False
    if not dist.is_initialized():
        if world <= 1:
            return DistEnv(), device
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        owned = True
    return DistEnv(dist.get_rank(), dist.get_world_size(), local, owned), device


def teardown_dist(env: DistEnv) -> None:
    """Destroys the process group if :func:`setup_dist` created it."""
    if env.owned:
        dist.destroy_process_group()


def all_reduce(t: torch.Tensor, env: DistEnv) -> torch.Tensor:
    if env.active:
        dist.all_reduce(t)
    return t


def sync_buffers(model: nn.Module, env: DistEnv) -> None:
    """Rank 0's buffers (BN statistics) everywhere, so all ranks evaluate the saved model."""
    if env.active:
        for b in model.buffers():
            dist.broadcast(b, 0)


def barrier(env: DistEnv) -> None:
    if env.active:
        dist.barrier()


def broadcast_text(text: str, env: DistEnv) -> str:
    """Rank 0's ``text`` on every rank."""
    if not env.active:
        return text
    box: list[str] = [text]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_strided(flags: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """The whole set's per-item flags from every rank's strided shard (rank r holds items
    r, r + world, ...; the shards differ in length by at most one), in set order."""
    if not env.active:
        return flags
    n = torch.tensor([flags.numel()], dtype=torch.int64)
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(env.world)]
    dist.all_gather(sizes, n)
    longest = int(max(int(x) for x in sizes))
    padded = torch.zeros(longest, dtype=torch.uint8)
    padded[:flags.numel()] = flags.to(torch.uint8)
    parts = [torch.zeros(longest, dtype=torch.uint8) for _ in range(env.world)]
    dist.all_gather(parts, padded)
    total = int(sum(int(x) for x in sizes))
    out = torch.zeros(total, dtype=torch.bool)
    for r, (part, size) in enumerate(zip(parts, sizes)):
        out[r::env.world] = part[:int(size)].bool()
    return out
