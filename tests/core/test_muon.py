"""Muon (studio/core/training/muon.py): float32 Newton-Schulz, which parameters it steps, and a
real training run that learns and resumes exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.core.events import StepLogged
from studio.core.models.registry import build_model
from studio.core.training.muon import MuonAdamW, orthogonalize
from studio.core.training.trainer import Trainer, _make_optimizer
from tests.core.test_models import tiny_config
from tests.core.test_trainer import Collect, assert_resume_is_exact


@pytest.mark.parametrize("shape", [(32, 32), (96, 32), (32, 96)])
def test_newton_schulz_brings_every_singular_value_near_one(shape: tuple[int, int]) -> None:
    torch.manual_seed(0)
    # A badly conditioned matrix: singular values spread over three orders of magnitude.
    u, _, v = torch.linalg.svd(torch.randn(*shape), full_matrices=False)
    spread = torch.logspace(0, -3, min(shape))
    g = (u * spread) @ v
    assert orthogonalize(g.to(torch.bfloat16)).dtype == torch.float32  # bf16 in, float32 iterations
    out = orthogonalize(g)
    assert out.shape == g.shape
    s = torch.linalg.svdvals(out)
    # The quintic iteration aims at roughly [0.7, 1.2], not exactly 1; the smallest input
    # singular values (1e-3 of the largest) are still on their way up after five steps.
    assert s.max() < 1.3
    assert (s > 0.6).float().mean() > 0.75
    # The same singular vectors: in the input's bases the output is diagonal.
    m = u.T @ out @ v.T
    assert (m - torch.diag(torch.diagonal(m))).norm() < 1e-3 * m.norm()


def test_muon_steps_hidden_matrices_and_leaves_embeddings_head_and_gains_to_adamw(tiny_corpus: Path) -> None:
    config = tiny_config("gpt", tiny_corpus, "model.tie_embeddings=false", 'model.positions="learned"')
    model = build_model(config.model, 50)
    optimizer = _make_optimizer(model, config.with_overrides(["optimizer.name=muon"]))
    assert isinstance(optimizer, MuonAdamW)
    hidden, decay, keep = optimizer.param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(".attn." in names[id(p)] or ".mlp." in names[id(p)] for p in hidden["params"])
    assert {names[id(p)] for p in decay["params"]} == {"tok_emb.weight", "pos_emb.weight", "head.weight"}
    assert all(p.dim() == 1 for p in keep["params"]) and keep["weight_decay"] == 0.0
    assert len(hidden["params"]) + len(decay["params"]) + len(keep["params"]) == len(list(model.parameters()))


def test_a_muon_run_learns_and_resumes_exactly(tiny_corpus: Path, tmp_path: Path) -> None:
    config = tiny_config("gpt", tiny_corpus, "optimizer.name=muon", "train.steps=30", "train.eval_interval=10",
                         "train.lr=3e-3", "optimizer.momentum=0.95")
    events = Collect()
    result = Trainer(config, out=tmp_path / "learn").fit([events])
    assert result.status == "finished", result.error
    losses = [e.loss for e in events.of(StepLogged)]
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses
    assert_resume_is_exact(tiny_config("gpt", tiny_corpus, "optimizer.name=muon", "train.steps=16",
                                       "train.eval_interval=8", "model.dropout=0.1"), tmp_path, 16)


def test_the_muon_half_matches_adamw_on_its_own_parameters() -> None:
    """With no hidden matrices, MuonAdamW is AdamW step for step (its hand-written AdamW half)."""
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(5, 3))
    b = torch.nn.Parameter(a.detach().clone())
    ours = MuonAdamW([{"params": [a], "weight_decay": 0.1, "muon": False}], lr=1e-2, betas=(0.9, 0.99))
    ref = torch.optim.AdamW([b], lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    for _ in range(5):
        for p, opt in ((a, ours), (b, ref)):
            opt.zero_grad()
            (p**3).sum().backward()
            opt.step()
    assert torch.allclose(a, b, atol=1e-6)
