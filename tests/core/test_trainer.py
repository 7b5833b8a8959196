from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from pathlib import Path

import pytest

from studio.core.callbacks import FunctionCallback
from studio.core.control import RunControl
from studio.core.events import (
    CheckpointSaved,
    DataReady,
    EvalLogged,
    Event,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    StepLogged,
)
from studio.core.runs.run_dir import RunDir
from studio.core.training.checkpoint import load_checkpoint
from studio.core.training.trainer import Trainer, run_events_of
from tests.core.test_models import tiny_config


class Collect:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def of(self, cls: type) -> list:
        return [e for e in self.events if isinstance(e, cls)]


def stop_at(step: int, control: RunControl) -> FunctionCallback:
    return FunctionCallback(lambda e: control.request_stop() if isinstance(e, StepLogged) and e.step == step else None)


@pytest.mark.parametrize("arch", ["gpt", "lstm", "bert"])
def test_resume_is_exact(arch: str, tiny_corpus: Path, tmp_path: Path) -> None:
    """N steps, stop, resume to 2N: the same losses as 2N steps straight."""
    extra = ["train.steps=24", "train.eval_interval=8", "model.dropout=0.1", "train.grad_accum_steps=2"]
    straight = Collect()
    Trainer(tiny_config(arch, tiny_corpus, *extra), out=tmp_path / "a").fit([straight])

    first = Collect()
    control = RunControl()
    result = Trainer(tiny_config(arch, tiny_corpus, *extra), out=tmp_path / "b").fit([first, stop_at(12, control)], control)
    assert result.status == "stopped" and result.step == 12
    second = Collect()
    resumed = Trainer.resume(result.run_dir).fit([second])
    assert resumed.status == "finished" and resumed.step == 24
    assert second.of(RunStarted)[0].resumed and second.of(RunStarted)[0].start_step == 12

    expected = [e.loss for e in straight.of(StepLogged)]
    got = [e.loss for e in first.of(StepLogged)] + [e.loss for e in second.of(StepLogged)]
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert [e.loss for e in second.of(EvalLogged)] == pytest.approx([e.loss for e in straight.of(EvalLogged)][-2:], rel=1e-5)
    assert [e.lr for e in second.of(StepLogged)] == pytest.approx([e.lr for e in straight.of(StepLogged)][12:])


def test_stop_is_honoured_within_one_step_and_saves(tiny_corpus: Path, tmp_path: Path) -> None:
    control = RunControl()
    events = Collect()
    result = Trainer(tiny_config("gpt", tiny_corpus, "train.steps=500"), out=tmp_path).fit([events, stop_at(7, control)], control)
    assert result.status == "stopped" and result.step == 7
    assert events.of(StepLogged)[-1].step == 7
    finished = events.of(RunFinished)[0]
    assert finished.status == "stopped"
    ckpt = load_checkpoint(result.run_dir / "checkpoints" / "last")
    assert ckpt.step == 7 and ckpt.resumable
    assert RunDir(result.run_dir).read_info()["status"] == "stopped"


def test_pause_blocks_steps_until_resumed(tiny_corpus: Path, tmp_path: Path) -> None:
    control = RunControl()
    events = Collect()
    steps_while_paused: list[int] = []

    def on_event(e: Event) -> None:
        if isinstance(e, StepLogged) and e.step == 3:
            control.request_pause()

            def later() -> None:
                time.sleep(0.4)
                steps_while_paused.append(len(events.of(StepLogged)))
                control.request_resume()

            threading.Thread(target=later).start()

    result = Trainer(tiny_config("lstm", tiny_corpus, "train.steps=6"), out=tmp_path).fit([events, FunctionCallback(on_event)], control)
    assert result.status == "finished"
    assert steps_while_paused == [3]  # nothing ran while paused
    kinds = [type(e) for e in events.events]
    assert kinds.index(RunPaused) < kinds.index(RunResumed)
    assert events.of(RunPaused)[0].step == 3


def test_stop_while_paused(tiny_corpus: Path, tmp_path: Path) -> None:
    control = RunControl()

    def on_event(e: Event) -> None:
        if isinstance(e, StepLogged) and e.step == 2:
            control.request_pause()
            threading.Timer(0.2, control.request_stop).start()

    result = Trainer(tiny_config("gru", tiny_corpus, "train.steps=50"), out=tmp_path).fit([FunctionCallback(on_event)], control)
    assert result.status == "stopped" and result.step == 2


def test_early_stopping(tiny_corpus: Path, tmp_path: Path) -> None:
    # A learning rate of zero never improves after the first evaluation.
    config = tiny_config("gpt", tiny_corpus, "train.lr=0", "train.steps=100", "train.eval_interval=5", "train.early_stopping_patience=2")
    events = Collect()
    result = Trainer(config, out=tmp_path).fit([events])
    assert result.status == "early_stopped"
    assert result.step == 15  # evaluations at 5 (best), 10, 15
    assert "no improvement for 2 evaluations" in events.of(RunFinished)[0].reason


def test_divergence_fails_truthfully(tiny_corpus: Path, tmp_path: Path) -> None:
    config = tiny_config("gpt", tiny_corpus, "train.lr=10", "train.grad_clip=0", "optimizer.name=sgd", "optimizer.momentum=0.99", "train.steps=200", "schedule.warmup_steps=0")
    events = Collect()
    result = Trainer(config, out=tmp_path).fit([events])
    assert result.status == "failed"
    failed = events.of(RunFailed)[0]
    assert "training diverged" in failed.error and "train.lr" in failed.error
    assert not events.of(RunFinished)
    assert RunDir(result.run_dir).read_info()["status"] == "failed"


def test_bad_corpus_fails_with_the_file_name(tmp_path: Path) -> None:
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": oops}\n')
    config = tiny_config("gpt", bad)
    events = Collect()
    result = Trainer(config, out=tmp_path / "runs").fit([events])
    assert result.status == "failed"
    assert "broken.jsonl, line 2: not valid JSON" in result.error


def test_events_are_frozen_plain_records_and_logged(tiny_corpus: Path, tmp_path: Path) -> None:
    events = Collect()
    result = Trainer(tiny_config("gpt", tiny_corpus, "train.steps=10", "train.eval_interval=5"), out=tmp_path).fit([events])
    kinds = [e.kind for e in events.events if e.kind not in ("data_progress", "log")]
    assert kinds[0] == "data_ready" and kinds[1] == "run_started" and kinds[-1] == "finished"
    step = events.of(StepLogged)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.loss = 0.0  # type: ignore[misc]
    for e in events.events:
        for value in dataclasses.asdict(e).values():
            assert isinstance(value, int | float | str | bool | tuple)
    assert step.tokens_per_s > 0 and math.isfinite(step.grad_norm) and step.lr > 0
    assert events.of(DataReady)[0].encodings == ("UTF-8",)
    assert {e.label for e in events.of(CheckpointSaved)} == {"best", "last"}
    eval_event = events.of(EvalLogged)[0]
    assert eval_event.sample  # a text sample at each evaluation
    assert eval_event.perplexity == pytest.approx(math.exp(eval_event.loss))

    run = RunDir(result.run_dir)
    lines = [json.loads(x) for x in run.metrics_path.read_text().splitlines()]
    assert [x["event"] for x in lines].count("step") == 10
    assert [type(e) for e in run_events_of(run)] == [type(e) for e in events.events if e.kind != "data_progress"]
    assert "finished at step 10" in run.log_path.read_text()
    samples = [json.loads(x) for x in (run.path / "samples.jsonl").read_text().splitlines()]
    assert [s["step"] for s in samples] == [5, 10] and all(s["sample"] for s in samples)
    info = run.read_info()
    assert info["status"] == "finished" and info["step"] == 10 and info["best_valid_loss"] > 0


def test_dead_process_shows_as_interrupted(tmp_path: Path) -> None:
    from studio.core.config import RunConfig

    run = RunDir.create(RunConfig(), out=tmp_path)
    run.write_info(status="running", pid=999_999_999, host=__import__("socket").gethostname())
    assert run.read_info()["status"] == "interrupted"


def test_epochs_set_the_step_count(tiny_corpus: Path, tmp_path: Path) -> None:
    events = Collect()
    Trainer(tiny_config("lstm", tiny_corpus, "train.epochs=0.05", "train.eval_interval=1000"), out=tmp_path).fit([events])
    started = events.of(RunStarted)[0]
    train_tokens = events.of(DataReady)[0].train_tokens
    assert started.total_steps == math.ceil(0.05 * train_tokens / (16 * 32))


def test_resume_refuses_changed_model(tiny_corpus: Path, tmp_path: Path) -> None:
    control = RunControl()
    result = Trainer(tiny_config("gpt", tiny_corpus, "train.steps=50"), out=tmp_path).fit([stop_at(2, control)], control)
    resumed = Trainer.resume(result.run_dir, ["model.n_layers=3"]).fit()
    assert resumed.status == "failed" and "model.n_layers: 2 -> 3" in resumed.error
