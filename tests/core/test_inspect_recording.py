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


def test_snapshots_kept_are_spread_evenly_from_the_first_to_the_latest() -> None:
    from studio.core.training.trainer import saved_to_drop

    def kept(evaluations: int, keep: int) -> list[int]:
        saved = [(step, Path(f"step-{step}")) for step in range(1, evaluations + 1)]
        dropped = {s for s, _p in saved_to_drop(saved, keep)}
        return [s for s, _p in saved if s not in dropped]

    assert kept(50, 3) == [1, 25, 50]  # not the 1st, 3rd and 50th
    assert kept(20, 8) == [1, 4, 6, 9, 12, 15, 17, 20]  # the grid 1, 3.7, 6.4, ..., 20
    assert kept(5, 8) == [1, 2, 3, 4, 5] and kept(5, 1) == [5]


def test_a_resume_forgets_what_the_interrupted_attempt_recorded_after_its_checkpoint(tiny_corpus: Path, tmp_path: Path) -> None:
    """Killed after its checkpoint at step 10 but with snapshots and statistics up to step 15:
    the resume from 10 drops those, so the views show one history, not two."""
    import shutil

    config = tiny_config("gpt", tiny_corpus, "train.steps=20", "train.eval_interval=5", "train.checkpoint_interval=10",
                         "train.snapshots=8", "train.layer_stats_interval=5", "train.sample_tokens=0")
    result = Trainer(config, out=tmp_path).fit()
    run = RunDir(result.run_dir)
    # Make it look interrupted after step 15: the last checkpoint back at step 10, the rest of the records kept.
    events = run.metrics_path.read_text(encoding="utf-8").splitlines()
    import json

    cut = [line for line in events if json.loads(line).get("step", 0) <= 15 and json.loads(line).get("event") != "finished"]
    run.metrics_path.write_text("\n".join(cut) + "\n", encoding="utf-8")
    shutil.rmtree(run.snapshots / f"step-{20:08d}")
    (run.snapshots / ".step-00000016-abc").mkdir()  # a save cut short
    ten = Trainer(tiny_config("gpt", tiny_corpus, "train.steps=10", "train.eval_interval=5", "train.snapshots=8",
                              "train.layer_stats_interval=5", "train.sample_tokens=0"), out=tmp_path / "ten").fit()
    shutil.rmtree(run.checkpoint("last"))
    shutil.copytree(RunDir(ten.run_dir).checkpoint("last"), run.checkpoint("last"))
    run.write_info(status="interrupted", step=10)
    resumed = Trainer.resume(run.path).fit()
    assert resumed.status == "finished"
    assert [s for s, _p in run.snapshot_steps()] == [5, 10, 15, 20]  # 15 and 20 taken again by the resume
    assert not [f for f in run.snapshots.iterdir() if f.name.startswith(".")]
    stats = [e.step for e in run.read_events() if isinstance(e, LayerStatsLogged)]
    assert stats == [5, 10, 15, 20]  # the interrupted attempt's 15 is gone, the resume's is there once
