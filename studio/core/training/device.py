"""Choosing the device, the precision and the CPU thread count deliberately."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from studio.core.config import RunSection
from studio.core.errors import ConfigError, ConfigIssue
from studio.core.i18n import _

# Kept in a module without torch, so the window can set up a training child without importing it.
from studio.core.training.cpu_threads import (
    QUIET_OPENMP,
    default_threads,
    load_average,
    quiet_openmp_environment,
    usable_cores,
)

__all__ = ["QUIET_OPENMP", "DeviceChoice", "choose_device", "default_threads", "load_average",
           "quiet_openmp_environment", "supported_devices", "supports_fast_bf16", "torch_threads", "usable_cores"]


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype, None for plain fp32
    threads: int

    def describe(self) -> str:
        name = str(self.device)
        if self.device.type == "cuda":
            name += f" ({torch.cuda.get_device_name(self.device)})"
        if self.dtype is not None:
            # Translators: {dtype} is a number format (bfloat16); autocast is PyTorch's mixed precision.
            name += _(", {dtype} autocast").format(dtype=str(self.dtype).removeprefix("torch."))
        return name

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)


def choose_device(run: RunSection, local_rank: int | None = None) -> DeviceChoice:
    spec = run.device
    if spec == "auto":
        if torch.cuda.is_available():
            spec = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            spec = "mps"
        else:
            spec = "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            # Translators: run.device is a setting's name; cpu and auto are its values, kept as is.
            message = _("run.device={device} but PyTorch sees no CUDA GPU; use cpu or auto").format(device=repr(run.device))
            raise ConfigError(ConfigIssue("run.device", message))
        if local_rank is not None and spec == "cuda":
            spec = f"cuda:{local_rank}"
        index = torch.device(spec).index or 0
        if index >= torch.cuda.device_count():
            message = _("{device} does not exist: this machine has {count} GPU(s)").format(device=spec, count=torch.cuda.device_count())
            raise ConfigError(ConfigIssue("run.device", message))
    if spec == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(ConfigIssue("run.device", _("run.device='mps' but Metal is not available here")))
    device = torch.device(spec)

    dtype: torch.dtype | None = None
    if run.precision == "bf16" or (run.precision == "auto" and supports_fast_bf16(device)):
        if run.precision == "bf16" and not supports_fast_bf16(device):
            # Measured here: bf16 matmul on a CPU without native support is ~100x slower than fp32.
            message = _("{device} has no native bf16 arithmetic; bf16 would be far slower. Use auto or fp32").format(device=device)
            raise ConfigError(ConfigIssue("run.precision", message))
        dtype = torch.bfloat16
    threads = run.threads or default_threads()
    return DeviceChoice(device, dtype, threads)


def supports_fast_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # AMX or AVX-512-BF16 make bf16 worthwhile on a CPU; without them it is a trap.
        capability = torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else ""
        return "AMX" in capability.upper()
    return False


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Set PyTorch's intra-op threads for the duration, then restore them."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def supported_devices() -> list[str]:
    """The device names this machine can train on (``run.device`` values): auto and cpu always,
    cuda and mps where PyTorch finds them."""
    devices = ["auto", "cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices
