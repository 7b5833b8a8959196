"""Muon for the hidden weight matrices, AdamW for everything else, in one optimizer.

Muon (MomentUm Orthogonalized by Newton-Schulz) steps each hidden matrix by its momentum made
orthogonal: five Newton-Schulz iterations push every singular value of the update towards 1, so
no single direction dominates the step. Embeddings, the output head, biases and norm gains are
not hidden matrices (their rows are looked up or compared, not mixed), and take AdamW steps.

Why not ``torch.optim.Muon``: it always runs the Newton-Schulz iterations in bfloat16, which this
project's CPUs execute many times slower than float32 (no bf16 matrix units); here they run in
float32. And one optimizer for both kinds of parameters keeps the trainer's single learning-rate
schedule, gradient clipping and checkpoint format (the state is plain tensors and numbers).

The Muon step is scaled by 0.2 · √max(rows, cols), so its RMS matches a typical AdamW step and
the same ``train.lr`` suits both halves (the rule of Moonshot AI's "Muon is scalable for LLM
training", 2025).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

# The quintic iteration's coefficients (Keller Jordan's Muon): they bring singular values into
# roughly [0.7, 1.2] in five steps, which is close enough to orthogonal for a training step.
_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NEWTON_SCHULZ_STEPS = 5
_OUTPUT_LAYERS = ("head", "classifier", "span")


def orthogonalize(update: torch.Tensor, steps: int = NEWTON_SCHULZ_STEPS) -> torch.Tensor:
    """An approximately orthogonal matrix with the singular vectors of ``update``, in float32."""
    a, b, c = _NS_COEFFICIENTS
    x = update.float()
    tall = x.size(0) > x.size(1)
    if tall:  # iterate on the short side: X Xᵀ is then the smaller square
        x = x.T
    x = x / (x.norm() + 1e-7)  # singular values at most 1, where the iteration converges
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


def muon_parameter_groups(model: nn.Module, decay: list[nn.Parameter], keep: list[nn.Parameter],
                          weight_decay: float) -> list[dict]:
    """The optimizer's groups from the trainer's split (``decay``: matrices and embeddings,
    ``keep``: biases and norm gains): the hidden matrices among ``decay`` for Muon, the rest of it
    and ``keep`` for AdamW."""
    # The output layers by name: a language model's ``head``, a task's ``classifier`` or ``span``
    # on top of a base (studio/core/tasks/heads.py). They map to labels, not to hidden features.
    outer = {id(p) for name, m in model.named_modules()
             if isinstance(m, nn.Embedding) or name.rsplit(".", 1)[-1] in _OUTPUT_LAYERS for p in m.parameters()}
    hidden = [p for p in decay if p.dim() == 2 and id(p) not in outer]
    chosen = {id(p) for p in hidden}
    return [
        {"params": hidden, "weight_decay": weight_decay, "muon": True},
        {"params": [p for p in decay if id(p) not in chosen], "weight_decay": weight_decay, "muon": False},
        {"params": keep, "weight_decay": 0.0, "muon": False},
    ]


class MuonAdamW(torch.optim.Optimizer):
    """Groups with ``muon=True`` take Nesterov-momentum Muon steps, the others AdamW steps."""

    def __init__(self, groups: Iterable[dict], lr: float, momentum: float = 0.95,
                 betas: tuple[float, float] = (0.9, 0.99), eps: float = 1e-8) -> None:
        defaults = {"lr": lr, "momentum": momentum, "betas": betas, "eps": eps, "weight_decay": 0.0, "muon": False}
        super().__init__(list(groups), defaults)

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]  # the trainer never passes a closure
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if group["muon"]:
                    self._muon_step(p, lr, wd, group["momentum"])
                else:
                    self._adamw_step(p, lr, wd, group["betas"], group["eps"])

    def _muon_step(self, p: torch.Tensor, lr: float, wd: float, momentum: float) -> None:
        grad = p.grad
        assert grad is not None  # step() skips parameters without one
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
        buf = state["momentum_buffer"]
        buf.mul_(momentum).add_(grad)
        update = orthogonalize(grad.add(buf, alpha=momentum)).to(p.dtype)  # Nesterov
        p.mul_(1 - lr * wd)
        p.add_(update, alpha=-lr * 0.2 * math.sqrt(max(p.shape)))

    def _adamw_step(self, p: torch.Tensor, lr: float, wd: float, betas: tuple[float, float], eps: float) -> None:
        grad = p.grad
        assert grad is not None
        state = self.state[p]
        if "exp_avg" not in state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1
        beta1, beta2 = betas
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = state["step"]
        denom = (v / (1 - beta2**step)).sqrt_().add_(eps)
        p.mul_(1 - lr * wd)
        p.addcdiv_(m, denom, value=-lr / (1 - beta1**step))
