"""Model FLOPs utilisation: how much of this machine's matmul speed the training step uses.

MFU = (FLOPs one token of training costs) x tokens/s / (the machine's peak FLOP/s). The cost is
the usual estimate (Kaplan et al. 2020; the PaLM paper's appendix B): 6 per matmul parameter
(2 forward, 4 backward) plus, for a Transformer, 12·L·d·T for attention's scores and weighted
sum over a context of T. The peak is not a datasheet figure but measured: a square matmul probe
(fp32 on a CPU, bf16 on CUDA), run once per device, precision and thread count, and kept in the
user cache folder. That file is untrusted: anything but a positive finite number is ignored
and measured again.
"""

from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path

import torch
from torch import nn

from studio.core.architectures import ModelConfig, TransformerConfig
from studio.core.fileio import atomic_write_text
from studio.core.paths import cache_dir

CACHE_NAME = "peak_flops.json"
_MAX_PLAUSIBLE = 1e18  # no single device comes near an exaFLOP/s; a bigger figure is a corrupt cache
_measured: dict[str, float] = {}  # this process's probes, so tests and searches probe once


def matmul_parameters(model: nn.Module) -> int:
    """Parameters that take part in a matmul: all but embedding tables, which are looked up, not
    multiplied (a tied head's matrix is multiplied, so it counts once)."""
    multiplied = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    looked_up = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)} - multiplied
    seen: set[int] = set()
    total = 0
    for q in model.parameters():
        if id(q) in seen or id(q) in looked_up:
            continue
        seen.add(id(q))
        total += q.numel()
    return total


def attention_flops_per_token(config: ModelConfig) -> int:
    """12·L·d·T for a Transformer (scores and the weighted sum, forward and backward); 0 otherwise."""
    if not isinstance(config, TransformerConfig):
        return 0
    layers = int(getattr(config, "n_layers", 0) or 0)
    if not layers:  # the encoder-decoder counts its two stacks
        layers = int(getattr(config, "n_encoder_layers", 0) or 0) + int(getattr(config, "n_decoder_layers", 0) or 0)
    return 12 * layers * config.d_model * config.context_length


def training_flops_per_token(model: nn.Module, config: ModelConfig) -> int:
    return 6 * matmul_parameters(model) + attention_flops_per_token(config)


def mfu(flops_per_token: float, tokens_per_s: float, peak_flops: float | None) -> float | None:
    """The fraction (0..1, more if the peak was measured low) of the peak a run's speed uses."""
    if not peak_flops or peak_flops <= 0 or not math.isfinite(tokens_per_s):
        return None
    return flops_per_token * tokens_per_s / peak_flops


# ---- the peak ------------------------------------------------------------------------------


def probe_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def _key(device: torch.device, dtype: torch.dtype, threads: int) -> str:
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"{platform.processor() or platform.machine()} x{threads}"
    return f"{device.type}|{where}|{str(dtype).removeprefix('torch.')}|torch {torch.__version__}"


def measure_peak_flops(device: torch.device, dtype: torch.dtype, seconds: float = 0.15) -> float:
    """The best FLOP/s of square matmuls over about ``seconds``, at the current thread count."""
    n = 4096 if device.type == "cuda" else 512
    # Its own generator: drawing from the global one would change a run's dropout and batches.
    generator = torch.Generator(device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=generator)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=generator)

    def sync() -> None:  # CUDA runs asynchronously: time the work, not its launch
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    repeats = 10 if device.type == "cuda" else 2
    for _ in range(2):  # warm-up: kernels picked, caches and clocks up
        a @ b
    sync()
    best = 0.0
    deadline = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        for _ in range(repeats):
            a @ b
        sync()
        dt = time.perf_counter() - t0
        best = max(best, 2 * n**3 * repeats / max(dt, 1e-9))
        if time.perf_counter() >= deadline:
            return best


def _read_cache(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        k: float(v) for k, v in data.items()
        if isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
        and math.isfinite(v) and 0 < v < _MAX_PLAUSIBLE
    }


def peak_flops(device: torch.device, threads: int | None = None) -> float | None:
    """This machine's measured peak for ``device`` (cached); None where there is no probe (MPS)."""
    if device.type not in ("cpu", "cuda"):
        return None
    dtype = probe_dtype(device)
    key = _key(device, dtype, threads or torch.get_num_threads())
    if key in _measured:
        return _measured[key]
    path = cache_dir() / CACHE_NAME
    cached = _read_cache(path)
    if key in cached:
        _measured[key] = cached[key]
        return cached[key]
    value = measure_peak_flops(device, dtype)
    _measured[key] = value
    cached[key] = value
    try:
        atomic_write_text(path, json.dumps(cached, indent=1, sort_keys=True), durable=False)
    except OSError:
        pass  # a read-only cache folder costs a probe per process, nothing more
    return value
