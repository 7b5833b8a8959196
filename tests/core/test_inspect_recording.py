"""What training records for the Inspect page: per-layer statistics and snapshots for the scrubber."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from studio.core.callbacks import FunctionCallback
from studio.core.events import CheckpointSaved, Event, LayerStatsLogged
from studio.core.training.checkpoint import load_checkpoint
from studio.core.training.run_dir import RunDir
from studio.core.training.trainer import Trainer
from tests.core.test_models import tiny_config


def test_layer_statistics_are_each_layers_gradient_and_update(tiny_corpus: Path, tmp_path: Path) -> None:
    """Every 5 steps one record per layer group, input first; the numbers are those of the step:
    recomputed here from the weights before and after it, for the last recorded step."""
    events: list[Event] = []
    config = tiny_config("gpt", tiny_corpus, "train.steps=10", "train.layer_stats_interval=5", "train.snapshots=0",
                         "train.sample_tokens=0", "optimizer.name=sgd", "optimizer.weight_decay=0", "train.grad_clip=0")
    trainer = Trainer(config, out=tmp_path)
    before: dict[str, torch.Tensor] = {}

    def watch(event: Event) -> None:
        events.append(event)
        # The step before the last record: keep the weights it leaves, to check the last record's update.
        if getattr(event, "kind", "") == "step" and event.step == 9:  # type: ignore[attr-defined]
            before.update({n: q.detach().clone() for n, q in trainer.model.named_parameters()})  # type: ignore[union-attr]

    result = trainer.fit([FunctionCallback(watch)])
    assert result.status == "finished"
    stats = [e for e in events if isinstance(e, LayerStatsLogged)]
    assert [e.step for e in stats] == [5, 10]
    n_layers = config.model.n_layers  # type: ignore[attr-defined]
    assert stats[0].layers == ("embeddings", *(str(i) for i in range(1, n_layers + 1)), "output")
    assert all(g > 0 for g in stats[-1].grad_norms) and all(0 < r < 1 for r in stats[-1].update_ratios)
    # The transformer blocks' update, recomputed: |w10 - w9| / |w9| over block 1's weights.
    model = trainer.model
    assert model is not None
    names = [n for n, _q in model.named_parameters() if n.startswith("blocks.0.")]
    change = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(dict(model.named_parameters())[n].detach() - before[n]) for n in names]))
    size = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(before[n]) for n in names]))
    assert stats[-1].update_ratios[1] == pytest.approx(float(change / size), rel=1e-4)
    # recorded in the run's metrics, for the page to read later
    on_disk = [e for e in RunDir(result.run_dir).read_events() if isinstance(e, LayerStatsLogged)]
    assert on_disk == stats


def test_snapshots_are_kept_spread_over_the_run(tiny_corpus: Path, tmp_path: Path) -> None:
    """An evaluation every 5 steps, 40 steps, 4 snapshots kept: the first, the latest and two
    between them, each a loadable weights-only checkpoint; a resume never takes one."""
    events: list[Event] = []
    config = tiny_config("lstm", tiny_corpus, "train.steps=40", "train.eval_interval=5", "train.snapshots=4",
                         "train.sample_tokens=0", "train.layer_stats_interval=0")
    result = Trainer(config, out=tmp_path).fit([FunctionCallback(events.append)])
    saved = [e.step for e in events if isinstance(e, CheckpointSaved) and e.label == "snapshot"]
    assert saved == list(range(5, 41, 5))  # announced at every evaluation, for a live Inspect page
    steps = [s for s, _p in RunDir(result.run_dir).snapshot_steps()]
    assert len(steps) == 4 and steps[0] == 5 and steps[-1] == 40
    gaps = [b - a for a, b in zip(steps, steps[1:], strict=False)]
    assert max(gaps) <= 15, steps  # spread, not the four latest
    ckpt = load_checkpoint(RunDir(result.run_dir).snapshots / f"step-{steps[1]:08d}")
    assert ckpt.step == steps[1] and not ckpt.resumable
    assert not [e for e in events if isinstance(e, LayerStatsLogged)]  # turned off
