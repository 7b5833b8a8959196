from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.core.callbacks import FunctionCallback
from studio.core.events import Event, LogMessage
from studio.core.runs.worker_protocol import child_environment
from studio.core.training.batches import WindowSampler
from studio.core.training.cpu_threads import default_threads, quiet_openmp_environment
from studio.core.training.trainer import Trainer
from tests.core.test_models import tiny_config


def test_windows_are_one_fancy_index_with_the_same_draws() -> None:
    """The sampler reads all windows at once, and they are exactly the windows the old loop of
    slices read from the same random starts (so checkpoints of older runs resume the same)."""
    tokens = np.arange(5000, dtype=np.uint16) % 97
    sampler = WindowSampler(tokens, 33, 12, seed=7)
    generator = torch.Generator().manual_seed(7)
    for _ in range(3):
        got = sampler.sample()
        starts = torch.randint(len(tokens) - 33 + 1, (12,), generator=generator)
        expected = np.stack([tokens[s : s + 33].astype(np.int64) for s in starts.tolist()])
        assert got.dtype == torch.int64 and np.array_equal(got.numpy(), expected)


def test_a_failing_torch_compile_falls_back_to_eager(tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(torch.nn.Module):
        def forward(self, *args: object) -> torch.Tensor:
            raise RuntimeError("backend compiler failed: no C compiler found\nmore detail")

    monkeypatch.setattr(torch, "compile", lambda module, **kwargs: Broken())
    logs: list[Event] = []
    config = tiny_config("gpt", tiny_corpus, "run.compile=true", "train.steps=4", "train.eval_interval=4", "train.sample_tokens=0")
    result = Trainer(config, out=tmp_path).fit([FunctionCallback(lambda e: logs.append(e) if isinstance(e, LogMessage) else None)])
    assert result.status == "finished" and result.step == 4
    warnings = [e.text for e in logs if e.level == "warning" and "torch.compile failed" in e.text]
    assert warnings == ["torch.compile failed (backend compiler failed: no C compiler found); training without it. "
                        "Set run.compile = false to skip the attempt"]


def test_training_children_get_a_quiet_openmp_but_keep_a_persons_choice() -> None:
    env = child_environment({"PATH": "/bin"})
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["KMP_BLOCKTIME"] == "0" and env["PATH"] == "/bin"
    assert child_environment({"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"
    assert quiet_openmp_environment({"OMP_WAIT_POLICY": "x", "KMP_BLOCKTIME": "5"}) == {}
    assert quiet_openmp_environment({"GOMP_SPINCOUNT": "20000"}) == {}  # PASSIVE would void it


@pytest.mark.parametrize(("cores", "load", "threads"), [(2, 0.1, 2), (2, 1.0, 1), (2, 3.5, 1), (8, 2.6, 5), (1, 0.0, 1)])
def test_threads_are_the_cores_the_load_leaves(cores: int, load: float, threads: int) -> None:
    """Other processes as busy as the load says: the load decides."""
    assert default_threads(cores, load, elsewhere=load) == threads


def test_a_load_that_is_this_processes_own_work_does_not_take_threads_away() -> None:
    """The load average still counts a run this process just finished; what others use now decides."""
    assert default_threads(2, 2.0, elsewhere=0.1) == 2
    assert default_threads(8, 6.0, elsewhere=2.4) == 6
    assert default_threads(2, 0.2, elsewhere=1.0) == 2  # a quiet load is taken at its word, without sampling


def test_busy_elsewhere_counts_other_processes_and_not_this_one() -> None:
    import threading

    from studio.core.training.cpu_threads import busy_elsewhere

    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()  # this process keeps one core busy
    try:
        mine = busy_elsewhere(0.5)
    finally:
        stop.set()
        spinner.join()
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        theirs = busy_elsewhere(0.5)
    finally:
        child.kill()
        child.wait()
    assert mine is not None and theirs is not None
    assert mine < 0.5 < theirs, (mine, theirs)
