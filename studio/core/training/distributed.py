"""Running the same ``Trainer.fit`` on several processes under ``torchrun``.

Rank 0 alone reports events and writes checkpoints. Every rank draws different batches. A stop
requested on any rank is all-reduced each step, so all ranks stop at the same step and none hangs
in a collective the others have left.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedEnv:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environ(cls) -> DistributedEnv:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world)

    def init(self, device: torch.device) -> None:
        if self.enabled and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")

    def close(self, together: bool) -> None:
        """Leave the process group. ``together`` (a run that ended normally, on every rank): wait
        at a barrier first, so that no rank exits while rank 0 still writes the final checkpoint.
        torchrun ends the whole job with SIGTERM as soon as one rank exits, so a rank that left
        early cut rank 0's save short. After a failure the others may never arrive, so a failing
        rank leaves at once and torchrun stops the rest."""
        if self.enabled and dist.is_initialized():
            if together:
                try:
                    self.barrier()
                except Exception:  # noqa: BLE001 - a peer that died meanwhile: torchrun ends the job anyway
                    pass
            dist.destroy_process_group()

    def barrier(self) -> None:
        if self.enabled:
            # NCCL needs to know this rank's GPU for a barrier (it would guess rank % GPUs).
            dist.barrier(device_ids=[self.local_rank]) if dist.get_backend() == "nccl" else dist.barrier()

    def any_true(self, flag: bool, device: torch.device) -> bool:
        """True on every rank if ``flag`` is true on any rank."""
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def gather_states(self, states: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
        """Every rank's random-number states, as ``rank<N>/<name>`` (all ranks must call this).
        States are byte tensors of a fixed size per generator, so a plain all-gather carries them."""
        out: dict[str, torch.Tensor] = {}
        for name in sorted(states):
            mine = states[name].to(device)
            parts = [torch.empty_like(mine) for _ in range(self.world_size)]
            dist.all_gather(parts, mine)
            for rank, part in enumerate(parts):
                out[f"rank{rank}/{name}"] = part.cpu()
        return out

    def own_states(self, saved: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """This rank's states out of a checkpoint's (rank 0's plain names where a single process saved)."""
        prefix = f"rank{self.rank}/"
        mine = {k.removeprefix(prefix): v for k, v in saved.items() if k.startswith(prefix)}
        return mine or {k: v for k, v in saved.items() if not k.startswith("rank")}

    def mean(self, value: float, device: torch.device) -> float:
        if not self.enabled:
            return value
        t = torch.tensor([value], device=device, dtype=torch.float64 if device.type != "mps" else torch.float32)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return float(t.item()) / self.world_size
