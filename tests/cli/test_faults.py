"""Fault injection against the real CLI, run as a child process: kills at random steps and in the
middle of a save, SIGTERM, a full disk, a read-only output folder, and resumes that must fail
without touching anything.

Faults are real where this machine allows (signals, a small tmpfs, a read-only mount) and injected
at the exact call otherwise (``STUDIO_FAULT``, see ``studio/core/faults.py``). Losses are compared
exactly: a run killed and resumed must log the same loss at every step as one that never stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.core.training.checkpoint import load_checkpoint
from studio.core.training.run_dir import RunDir
from tests.cli.test_cli import Lines

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and mounts")

STEPS = 40
TINY = ["--set", "model.n_layers=1", "--set", "model.d_model=32", "--set", "model.n_heads=2", "--set", "model.context_length=32",
        "--set", "train.batch_size=8", "--set", "train.eval_interval=10", "--set", "train.eval_batches=2",
        "--set", "train.checkpoint_interval=5", "--set", "train.sample_tokens=8", "--set", "run.threads=1",
        "--set", f"train.steps={STEPS}", "--set", "model.dropout=0.1"]


def studio(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def train_args(corpus: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "demo-gpt", *TINY, "--set", f'data.paths=["{corpus}"]', "--out", str(out), "--quiet", *extra]


def the_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if (p / "config.toml").exists()]
    assert len(runs) == 1, runs
    return runs[0]


def step_losses(run: Path) -> dict[int, float]:
    from studio.core.events import StepLogged

    return {e.step: e.loss for e in RunDir(run).read_events() if isinstance(e, StepLogged)}


def folder_hash(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def no_traceback(text: str) -> None:
    assert "Traceback (most recent call last)" not in text, text


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, tiny_corpus: Path) -> dict[int, float]:
    """The losses of the run that is never interrupted."""
    out = tmp_path_factory.mktemp("straight")
    env = {"STUDIO_DATA_DIR": str(out / "data"), "STUDIO_CACHE_DIR": str(out / "cache")}
    done = studio(*train_args(tiny_corpus, out / "runs"), env=env)
    assert done.returncode == 0, done.stderr
    losses = step_losses(the_run(out / "runs"))
    assert sorted(losses) == list(range(1, STEPS + 1))
    return losses


def resume_to_end(run: Path) -> None:
    done = studio("resume", str(run), "--quiet")
    assert done.returncode == 0, done.stderr
    no_traceback(done.stderr)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sigkill_at_a_random_step_then_resume_is_exact(seed: int, tmp_path: Path, tiny_corpus: Path,
                                                       reference: dict[int, float]) -> None:
    step = random.Random(seed).randint(3, STEPS - 2)
    killed = studio(*train_args(tiny_corpus, tmp_path), env={"STUDIO_FAULT": f"train:step@{step}"})
    assert killed.returncode == -signal.SIGKILL
    run = the_run(tmp_path)
    assert RunDir(run).read_info()["status"] == "interrupted"
    resume_to_end(run)
    assert step_losses(run) == reference  # every step, exactly; the lost steps logged once


@pytest.mark.parametrize("point", ["checkpoint:files-written", "checkpoint:committed", "checkpoint:between-renames"])
def test_sigkill_during_a_save_then_resume_is_exact(point: str, tmp_path: Path, tiny_corpus: Path,
                                                    reference: dict[int, float]) -> None:
    # The third save of `last` (step 15); between the renames only `.last-old` is left on disk.
    killed = studio(*train_args(tiny_corpus, tmp_path), env={"STUDIO_FAULT": f"{point}@4"})
    assert killed.returncode == -signal.SIGKILL
    run = the_run(tmp_path)
    checkpoints = run / "checkpoints"
    if point == "checkpoint:between-renames":
        assert not (checkpoints / "last").exists() and (checkpoints / ".last-old").exists()
    assert [p.name for p in checkpoints.iterdir() if p.name.startswith(".")], "a crash leftover is there to recover"
    resume_to_end(run)
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best", "last"]  # leftovers recovered or removed
    assert step_losses(run) == reference


def test_sigterm_saves_and_stops_like_ctrl_c(tmp_path: Path, tiny_corpus: Path, reference: dict[int, float]) -> None:
    slow = ["--set", "train.steps=100000", "--set", "train.checkpoint_interval=1000"]
    proc = subprocess.Popen([sys.executable, "-m", "studio", *train_args(tiny_corpus, tmp_path, *slow)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            runs = [p for p in tmp_path.iterdir() if (p / "metrics.jsonl").exists()]
            if runs and any(e.get("event") == "step" and e["step"] >= 23
                            for e in map(json.loads, (runs[0] / "metrics.jsonl").read_text().splitlines()[-3:])):
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "SIGTERM: stopping after this step and saving" in err
    no_traceback(err)
    run = the_run(tmp_path)
    info = RunDir(run).read_info()
    assert info["status"] == "stopped"
    assert load_checkpoint(run / "checkpoints" / "last").step == info["step"] >= 23  # nothing lost


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[bool]:
    """A tmpfs of ``size`` at ``path`` when this process may mount one (root in a sandbox); else
    nothing (the caller injects ENOSPC instead)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_full_disk_mid_run_stops_with_a_message_and_keeps_the_checkpoint(tmp_path: Path, tiny_corpus: Path) -> None:
    out = tmp_path / "disk"
    with small_disk(out, "20m") as real:
        if real:
            # Fill the disk once training is under way, as another program would.
            proc = subprocess.Popen([sys.executable, "-m", "studio", *train_args(tiny_corpus, out, "--set", "train.steps=100000")],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not list(out.glob("*/checkpoints/last")):
                time.sleep(0.1)
            with contextlib.suppress(OSError), (out / "filler").open("wb") as f:
                while True:
                    f.write(b"\0" * (1 << 20))
            _, err = proc.communicate(timeout=120)
            code = proc.returncode
        else:
            done = studio(*train_args(tiny_corpus, out), env={"STUDIO_FAULT": "metrics:write@60=enospc"})
            code, err = done.returncode, done.stderr
        assert code == 1, err
        assert "the disk is full" in err and ("training stopped" in err or "checkpoint" in err)
        no_traceback(err)
        run = the_run(out)
        ckpt = load_checkpoint(run / "checkpoints" / "last")  # whole and loadable
        assert ckpt.resumable and ckpt.step > 0
        assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
        assert not list(run.glob("*.tmp")) and not list(run.glob(".*.tmp"))
        for line in (run / "metrics.jsonl").read_text().splitlines()[:-1]:
            json.loads(line)  # every line but perhaps a cut last one is whole


@contextlib.contextmanager
def read_only_folder(path: Path) -> Iterator[str]:
    path.mkdir(parents=True)
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield "chmod"
        finally:
            path.chmod(0o755)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], capture_output=True).returncode == 0:
        try:
            yield "read-only mount"
        finally:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0:
        try:
            yield "immutable"
        finally:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        return
    pytest.skip("cannot make a read-only folder here (root, no mount, no chattr)")


def test_read_only_output_folder_is_refused_before_any_work(tmp_path: Path, tiny_corpus: Path) -> None:
    with read_only_folder(tmp_path / "ro") as how:
        done = studio(*train_args(tiny_corpus, tmp_path / "ro"))
        assert done.returncode == 1, (how, done.stderr)
        assert "read-only" in done.stderr or "no permission" in done.stderr, (how, done.stderr)
        assert "preparing data" not in done.stderr  # refused before the data work
        no_traceback(done.stderr)
        assert not list((tmp_path / "ro").iterdir())


def test_export_onto_existing_folder_or_read_only_place_is_one_paragraph(tmp_path: Path, tiny_corpus: Path) -> None:
    assert studio(*train_args(tiny_corpus, tmp_path / "runs", "--set", "train.steps=5")).returncode == 0
    run = the_run(tmp_path / "runs")
    (tmp_path / "taken").mkdir()
    done = studio("export", str(run), "--out", str(tmp_path / "taken"))
    assert done.returncode == 1 and "already exists" in done.stderr and "--force" in done.stderr
    no_traceback(done.stderr)
    zipped = studio("export", str(run), "--out", str(tmp_path / "my.model"), "--zip")
    assert zipped.returncode == 0 and (tmp_path / "my.model.zip").is_file()
    again = studio("export", str(run), "--out", str(tmp_path / "my.model"), "--zip")
    assert again.returncode == 1 and "already exists" in again.stderr
    assert studio("export", str(run), "--out", str(tmp_path / "my.model"), "--zip", "--force").returncode == 0
    with read_only_folder(tmp_path / "ro"):
        done = studio("export", str(run), "--out", str(tmp_path / "ro" / "m"))
        assert done.returncode == 1, done.stderr
        no_traceback(done.stderr)


def test_failed_resumes_leave_the_checkpoint_and_config_byte_identical(tmp_path: Path, tiny_corpus: Path) -> None:
    assert studio(*train_args(tiny_corpus, tmp_path, "--set", "train.steps=10")).returncode == 0
    run = the_run(tmp_path)
    last = run / "checkpoints" / "last"
    before, config_before = folder_hash(last), (run / "config.toml").read_bytes()

    changed = studio("resume", str(run), "--set", "optimizer.name=sgd", "--set", "train.steps=20")
    assert changed.returncode == 1 and "optimizer.name: 'adamw' -> 'sgd'" in changed.stderr
    no_traceback(changed.stderr)
    assert folder_hash(last) == before and (run / "config.toml").read_bytes() == config_before

    # A damaged optimizer file of the same size passes the commit record but not the reader.
    state = last / "training_state.safetensors"
    good = state.read_bytes()
    state.write_bytes(good[:8] + b"\xff" * 64 + good[72:])
    damaged = studio("resume", str(run), "--set", "train.steps=20")
    assert damaged.returncode == 1 and "training_state.safetensors" in damaged.stderr, damaged.stderr
    no_traceback(damaged.stderr)
    state.write_bytes(good)
    assert folder_hash(last) == before and (run / "config.toml").read_bytes() == config_before
    assert RunDir(run).read_info()["status"] == "finished"  # as it was before the failed attempts
    assert RunDir(run).read_info()["step"] == 10

    # A second resume while the first holds the lock is refused and writes nothing.
    proc = subprocess.Popen([sys.executable, "-m", "studio", "resume", str(run), "--set", "train.steps=100000", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and RunDir(run).read_info().get("status") != "running":
            time.sleep(0.1)
        config_running = (run / "config.toml").read_bytes()
        refused = studio("resume", str(run), "--set", "train.steps=700")
        assert refused.returncode == 1 and "being trained by another process" in refused.stderr
        assert (run / "config.toml").read_bytes() == config_running  # no train.steps=700 written
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)


def test_a_killed_window_leaves_its_run_stopped_and_saved(tmp_path: Path, tiny_corpus: Path) -> None:
    """The window's training child notices that the window is gone (its pipes close), saves and
    ends as "stopped" rather than failing with a BrokenPipeError."""
    config = tmp_path / "run.toml"
    from studio.core.config import RunConfig
    from studio.core.resources import find_config

    overrides = [a for a in TINY if a != "--set"] + [f'data.paths=["{tiny_corpus}"]', "train.steps=100000"]
    RunConfig.load(find_config("demo-gpt"), overrides).save(config)
    parent = (
        "import subprocess, sys, json\n"
        f"p = subprocess.Popen([sys.executable, '-m', 'studio', 'worker', '--config', {str(config)!r}, '--out', {str(tmp_path / 'runs')!r}],"
        " stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)\n"
        "print(p.pid, flush=True)\n"
        "for line in p.stdout:\n"
        "    if json.loads(line).get('event') == 'step' and json.loads(line)['step'] >= 12:\n"
        "        print('training', flush=True)\n"
        "        break\n"
        "import time; time.sleep(600)\n"
    )
    window = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    assert window.stdout is not None
    lines = Lines(window.stdout)  # every read times out: a hung child fails the test, not the suite
    first = lines.next()
    assert first is not None, "the window script ended before starting its child"
    child = int(first)
    try:
        assert (lines.next() or "").strip() == "training"
        window.kill()  # the window dies without a word to its child
        window.wait(timeout=30)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child, os.WNOHANG)
            time.sleep(0.2)
        else:
            pytest.fail("the training child outlived its window")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    run = the_run(tmp_path / "runs")
    info = RunDir(run).read_info()
    assert info["status"] == "stopped", info
    assert load_checkpoint(run / "checkpoints" / "last").step == info["step"] >= 12
