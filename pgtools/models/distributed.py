"""Data-parallel training under torchrun: process-group setup, gradient and statistics averaging.

Every rank holds the whole networks and computes on its strided shard (samples r, r + W, ...) of
each global minibatch; gradients are averaged with one all-reduce per optimizer step (the
StyleGAN2-ADA approach rather than ``DistributedDataParallel``, whose hooks do not see the
gradient penalty's ``autograd.grad``). Only rank 0 writes files and reports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import Tensor

from pgtools.errors import PgtoolsError
from pgtools.models.config import check_device


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise PgtoolsError(f"environment variable {name}={value!r} is not an integer") from None


@dataclass(frozen=True)
class World:
    """This process's place among the training processes, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """True on the rank that writes files and reports (rank 0)."""
        return self.rank == 0

    def shard(self, tensor: Tensor) -> Tensor:
        """This rank's samples r, r + W, r + 2W, ... of a global batch (dim 0)."""
        return tensor[self.rank::self.world_size]

    def mean_(self, tensors: list[Tensor]) -> None:
        """Replace every tensor by its average over the ranks, in place (one all-reduce)."""
        if self.world_size == 1 or not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat)
        flat /= self.world_size
        for tensor, part in zip(tensors, flat.split([t.numel() for t in tensors])):
            tensor.copy_(part.view_as(tensor))

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """The average of each named value over the ranks (every rank must pass the same names)."""
        if self.world_size == 1 or not values:
            return dict(values)
        names = sorted(values)
        tensor = torch.tensor([float(values[n]) for n in names], dtype=torch.float64, device=self.device)
        self.mean_([tensor])
        return dict(zip(names, tensor.tolist()))


def select_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` (CUDA when available), ``cpu`` or ``cuda``; the local rank picks the GPU."""
    check_device(name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if local_rank >= torch.cuda.device_count():
        raise PgtoolsError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPUs are visible")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def setup(device: str = "auto") -> World:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, ...), pick the device and join
    the process group (nccl on CUDA, gloo on CPU) when there is more than one process."""
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank if world_size > 1 else 0)
    local_world_size = _env_int("LOCAL_WORLD_SIZE", world_size)
    if world_size < 1 or not 0 <= rank < world_size:
        raise PgtoolsError(f"RANK {rank} is outside 0..WORLD_SIZE-1 (WORLD_SIZE {world_size})")
    selected = select_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if not os.environ.get(name):
                raise PgtoolsError(f"WORLD_SIZE is {world_size} but {name} is not set; launch with torchrun")
        backend = "nccl" if selected.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=rank, world_size=world_size)
    return World(rank, world_size, local_rank, local_world_size, selected)


def shutdown() -> None:
    """Leave the process group, if one was joined."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
