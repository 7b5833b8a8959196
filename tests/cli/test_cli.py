"""The ``studio`` command. Subcommands run in-process through ``main()`` where they can (fast,
and what they print is checked exactly); what needs a real process (signals, the window's worker
protocol, torchrun) runs as a child, and every read from a child has a timeout."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from studio.cli.main import main
from studio.core.training.checkpoint import load_checkpoint

TINY = ["--set", "model.n_layers=1", "--set", "model.d_model=32", "--set", "model.n_heads=2", "--set", "model.context_length=32",
        "--set", "train.batch_size=8", "--set", "train.eval_interval=10", "--set", "train.eval_batches=2",
        "--set", "train.sample_tokens=16"]
POSIX = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals, and /proc to see a process's state and children")


def only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if (p / "config.toml").exists()]
    assert len(runs) == 1
    return runs[0]


def overrides(args: list[str]) -> list[str]:
    """``--set a=1 --set b=2`` as ``["a=1", "b=2"]``."""
    return [a for a in args if a != "--set"]


class Lines:
    """A child's output, read on a thread so that every read can time out: a child that hangs
    fails the test with what it said last, instead of hanging the suite."""

    def __init__(self, stream: IO[str]):
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def next(self, timeout: float = 120) -> str | None:
        """The next line, or None at the end of the output."""
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output for {timeout:.0f} s; last lines: {self.seen[-5:]}") from None
        if line is not None:
            self.seen.append(line)
        return line

    def rest(self, timeout: float = 120) -> str:
        while self.next(timeout) is not None:
            pass
        return "".join(self.seen)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    """Poll ``condition`` (a file appearing, a process freezing) until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def process_state(pid: int) -> str:
    """R, S, T (stopped), Z ... from /proc; '' once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return ""


def has_a_step(out: Path) -> bool:
    runs = list(out.glob("*/metrics.jsonl")) if out.exists() else []
    return bool(runs) and '"event": "step"' in runs[0].read_text()


# ---- in-process: every subcommand -----------------------------------------------------------


def test_train_resume_generate_eval(tmp_path: Path, tiny_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "runs"
    code = main(["train", "demo-gpt", *TINY, "--set", "train.steps=20", "--set", f'data.paths=["{tiny_corpus}"]', "--out", str(out)])
    assert code == 0
    run = only_run(out)
    captured = capsys.readouterr()
    assert f"run folder: {run}" in captured.out
    assert "finished at step 20" in captured.err
    assert load_checkpoint(run / "checkpoints" / "last").step == 20

    assert main(["resume", str(run), "--set", "train.steps=30"]) == 0
    assert load_checkpoint(run / "checkpoints" / "last").step == 30
    assert "resuming at step 20" in capsys.readouterr().err

    assert main(["generate", str(run), "--prompt", "One morning", "--max-tokens", "40", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("One morning") and len(text) > len("One morning")
    assert main(["generate", str(run), "--prompt", "One morning", "--max-tokens", "40", "--seed", "1"]) == 0
    assert capsys.readouterr().out == text  # a seed gives the same text

    assert main(["eval", str(run)]) == 0
    report = capsys.readouterr().out
    assert "valid: loss" in report and "perplexity" in report


def test_runs_found_by_name_and_an_ambiguous_name_refused(tmp_path: Path, tiny_corpus: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("twin-a", "twin-b"):
        assert main(["train", "demo-lstm", "--set", "train.steps=3", "--set", "model.context_length=16",
                     "--set", f'data.paths=["{tiny_corpus}"]', "--set", f"run.name={name}", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["generate", "twin-a", "--max-tokens", "5", "--temperature", "0"]) == 0
    assert "twin-a" in capsys.readouterr().err  # the label names the run it found
    for command in (["generate", "twin", "--max-tokens", "5"], ["resume", "twin"], ["eval", "twin"]):
        assert main(command) == 1, command
        err = capsys.readouterr().err
        assert "'twin' matches 2 runs" in err and "twin-a" in err and "twin-b" in err and "give more of the name" in err
        assert "Traceback" not in err
    assert main(["generate", "no-such-run"]) == 1
    assert "no run found at 'no-such-run'" in capsys.readouterr().err
    assert main(["runs"]) == 0
    listing = capsys.readouterr().out
    assert "twin-a" in listing and "twin-b" in listing


def test_invalid_config_is_exit_2_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "demo-gpt", "--set", "model.d_model=130", "--out", str(tmp_path)]) == 2
    assert "model.d_model=130 is not divisible by model.n_heads=4" in capsys.readouterr().err
    assert main(["train", "no-such-preset"]) == 2
    assert "neither a config file nor a preset" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # no half-made run folder


def test_bad_data_is_exit_1_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "reviews.csv"
    bad.write_text("id,review\n1,good\n")
    code = main(["train", "demo-gpt", "--set", f'data.paths=["{bad}"]', "--set", "data.column=text", "--out", str(tmp_path / "r"), "--quiet"])
    assert code == 1
    assert "reviews.csv, line 1: no column 'text'" in capsys.readouterr().err
    # A run whose data cannot be read never started: it leaves no run folder in the library.
    assert not [p for p in (tmp_path / "r").iterdir() if not p.name.startswith(".")]


def test_inspect_and_listings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "zh.txt"
    corpus.write_bytes(("天下大势，分久必合，合久必分。\n" * 20).encode("gb18030"))
    assert main(["inspect", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert "GB18030 (GBK-compatible)" in out and "tokens per line/row" in out
    assert main(["presets"]) == 0
    assert "demo-gpt" in capsys.readouterr().out
    assert main(["datasets"]) == 0
    assert "tinyshakespeare" in capsys.readouterr().out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror(tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A dataset mirror on 127.0.0.1 serving the copy of Tiny Shakespeare in ../shared/data."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "tinyshakespeare").symlink_to(shared_data / "lm" / "tinyshakespeare")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv("STUDIO_DATASET_MIRROR", url)
    try:
        yield url
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_datasets_download(mirror: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets"]) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("tinyshakespeare ")][0].split()[1] == "not"
    assert main(["datasets", "download", "tinyshakespeare"]) == 0
    captured = capsys.readouterr()
    assert "download input.txt: 100.0%" in captured.err
    assert "tinyshakespeare: ready in" in captured.out and "(1 files)" in captured.out
    assert main(["datasets"]) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("tinyshakespeare ")][0].split()[1] == "downloaded"
    assert main(["datasets", "download"]) == 2
    assert "name the dataset to download" in capsys.readouterr().err
    assert main(["datasets", "download", "no-such-set"]) != 0
    assert "no-such-set" in capsys.readouterr().err


def test_generate_fills_masks_for_an_encoder(tmp_path: Path, tiny_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "demo-bert", *TINY, "--set", "train.steps=5", "--set", f'data.paths=["{tiny_corpus}"]',
                 "--out", str(tmp_path), "--quiet"]) == 0
    run = only_run(tmp_path)
    capsys.readouterr()
    assert main(["generate", str(run), "--prompt", "The <mask>at sat by the <mask>iver"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["<mask> 1", "<mask> 2"]  # one line per mask
    for line in lines:
        options = line.split(": ", 1)[1].split(", ")
        assert len(options) == 5  # the five likeliest fillers
        shares = [float(o.rsplit(" ", 1)[1].rstrip("%")) for o in options]
        assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 100.05


def _task_files(tmp_path: Path, dataset: str) -> list[str]:
    from studio.core.tasks.demo import write_demo_task

    files = write_demo_task(dataset, tmp_path / dataset, sizes={"train": 48, "valid": 6, "test": 6})
    return ["--set", 'task.dataset=""', "--set", f'task.paths=["{files["train"]}"]', "--set", f'task.valid_paths=["{files["valid"]}"]',
            "--set", f'task.test_paths=["{files["test"]}"]', "--set", "task.eval_examples=6"]


def test_finetune_then_eval_generate_and_export_a_classifier(tmp_path: Path, tiny_corpus: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The fine-tuning commands end to end: ``finetune`` a LoRA classifier from a trained run,
    ``eval`` it (the task metric, the same as the run's results), ``generate`` (labels with their
    probabilities), and ``export --merge-lora`` (the same answers from the merged weights)."""
    assert main(["train", "demo-gpt", *TINY, "--set", "train.steps=6", "--set", "model.context_length=64",
                 "--set", f'data.paths=["{tiny_corpus}"]', "--out", str(tmp_path / "base"), "--quiet"]) == 0
    base = only_run(tmp_path / "base")
    assert main(["finetune", "finetune-demo-sentiment", "--set", f'finetune.base="{base}"', *_task_files(tmp_path, "demo-sentiment"),
                 "--set", "train.steps=8", "--set", "train.eval_interval=4", "--set", "train.batch_size=8",
                 "--out", str(tmp_path / "ft"), "--quiet"]) == 0
    run = only_run(tmp_path / "ft")
    results = json.loads((run / "results.json").read_text())
    capsys.readouterr()

    assert main(["eval", str(run)]) == 0
    report = {line.split(":")[0]: line for line in capsys.readouterr().out.splitlines() if ": " in line}
    assert f"accuracy {results['test']['accuracy']:.2f}  f1 {results['test']['f1']:.2f}" in report["test"]
    assert f"accuracy {results['valid']['accuracy']:.2f}" in report["valid"] and "(6 examples" in report["valid"]
    assert main(["eval", str(run), "--split", "test"]) == 0
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()[1:]] == ["test"]

    prompt = "The film was wonderful and the acting was brilliant."
    assert main(["generate", str(run), "--prompt", prompt]) == 0
    answers = capsys.readouterr().out.splitlines()
    assert sorted(line.split(":")[0] for line in answers) == ["negative", "positive"]
    assert sum(float(line.split(": ")[1].rstrip("%")) for line in answers) == pytest.approx(100.0, abs=0.15)

    assert main(["export", str(run), "--out", str(tmp_path / "exported"), "--merge-lora"]) == 0
    assert f"exported to {tmp_path / 'exported'}" in capsys.readouterr().out
    from studio.core.inference.loading import load_model
    from studio.core.tasks.lora import LoRALinear

    merged = load_model(tmp_path / "exported" / "model")
    assert merged.config.finetune.method == "full" and not any(isinstance(m, LoRALinear) for m in merged.model.modules())
    assert main(["generate", str(tmp_path / "exported" / "model"), "--prompt", prompt]) == 0
    assert capsys.readouterr().out.splitlines() == answers  # to the shown precision, the same model
    assert (tmp_path / "exported" / "metrics.csv").read_text().startswith("step,")


def test_search_prints_the_leaderboard_and_promotes_the_best(tmp_path: Path, tiny_corpus: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from studio.core.config import RunConfig
    from studio.core.paths import runs_dir
    from studio.core.resources import find_config
    from studio.core.training.run_dir import RunDir

    base = tmp_path / "base.toml"
    RunConfig.load(find_config("demo-gpt"), [*overrides(TINY), f'data.paths=["{tiny_corpus}"]', "train.sample_tokens=0"]).save(base)
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[search]\nname = "cli"\nbase = "{base}"\nstrategy = "grid"\nset = ["train.steps=6", "train.eval_interval=3"]\n'
                    '[params]\n"train.lr" = [1e-3, 1e-2]\n', encoding="utf-8")
    assert main(["search", str(spec), "--promote", "4", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "trial 1/2: train.lr=0.001" in out and "trial 2/2: train.lr=0.01" in out
    assert out.count("  -> finished valid_loss ") == 2
    assert "leaderboard (valid_loss, lower is better), saved in" in out
    ranked = [line for line in out.splitlines() if line.lstrip().startswith(("1. trial", "2. trial"))]
    assert len(ranked) == 2
    values = [float(line.split(":")[1].split()[0]) for line in ranked]
    assert values == sorted(values)
    best = ranked[0].split("trial ")[1].split(":")[0]
    assert f"promoting trial {best} to a full run of 4 steps" in out
    promoted = [p for p in runs_dir().iterdir() if p.name.endswith("cli-best")]
    assert len(promoted) == 1
    info = RunDir(promoted[0]).read_info()
    assert info["status"] == "finished" and info["step"] == 4
    best_lr = float(ranked[0].split("train.lr=")[1].split()[0].rstrip(","))
    assert RunDir(promoted[0]).load_config().train.lr == pytest.approx(best_lr)  # the best trial's settings
    assert main(["search", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml does not exist" in capsys.readouterr().err


def test_search_report_resume_and_a_damaged_study(tmp_path: Path, tiny_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from studio.core.config import RunConfig
    from studio.core.resources import find_config

    base = tmp_path / "base.toml"
    RunConfig.load(find_config("demo-gpt"), [*overrides(TINY), f'data.paths=["{tiny_corpus}"]', "train.sample_tokens=0"]).save(base)
    spec = tmp_path / "spec.toml"
    spec.write_text(f'[search]\nname = "rep"\nbase = "{base}"\nstrategy = "grid"\ntrial_steps = 6\nset = ["train.eval_interval=3"]\n'
                    '[params]\n"train.lr" = [1e-3, 1e-2]\n"model.n_layers" = [1, 2]\n', encoding="utf-8")
    assert main(["search", str(spec), "--quiet"]) == 0
    out = capsys.readouterr().out
    folder = Path(out.split("saved in ")[1].split(":\n")[0])
    assert (folder / "study.db").is_file()

    assert main(["search", str(spec), "--report"]) == 0
    report = capsys.readouterr().out.splitlines()
    assert report[0].startswith(f"search {folder.name}: 4 trials in ")
    assert report[1] == "  4 finished, 0 pruned, 0 failed, 0 stopped"
    assert report[2].startswith("best: trial ") and "valid_loss" in report[2] and "(lower is better)" in report[2]
    assert report[3].lstrip().startswith(("train.lr", "model.n_layers"))
    header = report.index("importance (fANOVA, over 4 finished trials):")
    shares = [float(line.split()[1].rstrip("%")) for line in report[header + 1: header + 3]]
    assert sum(shares) == pytest.approx(100, abs=0.2)  # the two parameters' shares of the variance
    assert any(line.startswith("curves: the best trial, ") for line in report)
    assert main(["search", "--report", str(folder)]) == 0 and capsys.readouterr().out.splitlines() == report

    assert main(["search", str(spec), "--resume"]) == 0  # the newest search of this spec: finished, nothing more runs
    out = capsys.readouterr().out
    assert "trial " not in out.split("leaderboard")[0] and out.count(". trial ") == 4
    from studio.core.events import TrialStarted
    from studio.core.runs.worker_protocol import WorkerClient, WorkerJob

    seen: list[object] = []  # the window's way: a worker process resumes the folder
    result = WorkerClient(WorkerJob(search_folder=folder)).run(seen.append)
    assert result.status == "finished" and Path(result.run_dir) == folder and not any(isinstance(e, TrialStarted) for e in seen)

    # A damaged study: one paragraph naming the file, exit status 1, never a traceback.
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    good = (broken / "study.db").read_bytes()
    for damage in (b"garbage" * 300, good[: len(good) // 2]):
        (broken / "study.db").write_bytes(damage)
        for argv in (["search", "--report", str(broken)], ["search", "--resume", str(broken)], ["search", str(broken), "--resume"]):
            assert main(argv) == 1
            err = capsys.readouterr().err
            assert f"{broken / 'study.db'} cannot be read as a search study" in err and "Traceback" not in err
    assert main(["search", str(broken)]) == 2
    assert "is a search folder: add --resume" in capsys.readouterr().err


def test_mismatched_checkpoints_are_refused_with_the_reason(tmp_path: Path, tiny_corpus: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Weights from another run in a run's checkpoint (another width, another architecture) are
    refused, naming the file and the mismatch, by every command that reads them; nothing crashes."""
    from studio.core.training.checkpoint_commit import COMMIT_FILE, file_sizes
    from studio.core.training.trainer import Trainer
    from tests.core.test_models import tiny_config

    def trained(arch: str, *extra: str) -> Path:
        config = tiny_config(arch, tiny_corpus, "train.steps=2", "train.sample_tokens=0", *extra)
        return Trainer(config, out=tmp_path / f"{arch}{len(extra)}").fit().run_dir

    target = trained("gpt")
    last = target / "checkpoints" / "last"
    original = (last / "model.safetensors").read_bytes()
    for donor, message in ((trained("gpt", "model.d_model=64"), "cannot be read as weights for this model"),
                           (trained("lstm"), "does not fit a GPT")):
        (last / "model.safetensors").write_bytes((donor / "checkpoints" / "last" / "model.safetensors").read_bytes())
        commit = json.loads((last / COMMIT_FILE).read_text())
        commit["files"] = file_sizes(last)  # a consistent commit record: the reader must look inside
        (last / COMMIT_FILE).write_text(json.dumps(commit))
        for command in (["generate", str(target), "--checkpoint", "last", "--max-tokens", "3"],
                        ["resume", str(target), "--set", "train.steps=4", "--quiet"]):
            assert main(command) == 1, command
            err = capsys.readouterr().err
            assert message in err and "model.safetensors" in err and "Traceback" not in err, err
    (last / "model.safetensors").write_bytes(original)
    commit = json.loads((last / COMMIT_FILE).read_text())
    commit["files"] = file_sizes(last)
    (last / COMMIT_FILE).write_text(json.dumps(commit))
    assert main(["generate", str(target), "--checkpoint", "last", "--max-tokens", "3"]) == 0


# ---- child processes: signals and the worker protocol -----------------------------------------


def train_in_child(out: Path, corpus: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "studio", "train", "demo-gpt", *TINY, "--set", "train.steps=100000",
         "--set", f'data.paths=["{corpus}"]', "--out", str(out), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )


@POSIX
def test_ctrl_c_stops_cleanly_and_saves(tmp_path: Path, tiny_corpus: Path) -> None:
    """The real entry point in a child process: SIGINT mid-run gives exit 130 and a resumable checkpoint."""
    out = tmp_path / "runs"
    proc = train_in_child(out, tiny_corpus)
    assert proc.stdout is not None
    lines = Lines(proc.stdout)
    try:
        wait_until(lambda: has_a_step(out), "the first step")
        proc.send_signal(signal.SIGINT)
        output = lines.rest()
        assert proc.wait(timeout=60) == 130, output
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "stopping after this step" in output and "stopped at step" in output
    ckpt = load_checkpoint(only_run(out) / "checkpoints" / "last")
    assert ckpt.resumable and ckpt.step >= 1


@LINUX
def test_a_second_ctrl_c_aborts_without_saving(tmp_path: Path, tiny_corpus: Path) -> None:
    """The first Ctrl-C asks for a save; a second one, while that save is being written, aborts it:
    exit 130, "interrupted", and no checkpoint committed. The child freezes itself in the middle of
    its save (the fault hook's ``stop``), so the second Ctrl-C lands there every time: signals
    sent close together would merge into one, and without the freeze the save might be done first."""
    from studio.core.training.checkpoint_commit import committed_checkpoint
    from studio.core.training.run_dir import RunDir

    out = tmp_path / "runs"
    # No evaluation or interval save, so the first save is the one the Ctrl-C asks for.
    proc = train_in_child(out, tiny_corpus, "--set", "train.eval_interval=100000", "--set", "train.checkpoint_interval=100000",
                          env={"STUDIO_FAULT": "checkpoint:files-written=stop"})
    assert proc.stdout is not None
    lines = Lines(proc.stdout)
    try:
        wait_until(lambda: has_a_step(out), "the first step")
        proc.send_signal(signal.SIGINT)
        wait_until(lambda: process_state(proc.pid) == "T", "the save to begin")
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGCONT)
        output = lines.rest()
        assert proc.wait(timeout=60) == 130, output
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Ctrl-C: stopping after this step and saving" in output and "studio: interrupted" in output
    assert "stopped at step" not in output and "Traceback" not in output
    run = only_run(out)
    assert committed_checkpoint(run / "checkpoints" / "last") is None  # the save was abandoned
    assert RunDir(run).read_info()["status"] == "interrupted"
    assert main(["resume", str(run), "--quiet"]) == 1  # nothing to resume from, and it says so


def test_worker_protocol_pause_resume_and_stop_on_eof(tmp_path: Path, tiny_corpus: Path) -> None:
    """The window's training process: JSON events out, commands in; losing the supervisor stops and saves."""
    from studio.core.config import RunConfig
    from studio.core.resources import find_config

    config = RunConfig.load(find_config("demo-gpt"), [*overrides(TINY), "train.steps=100000", f'data.paths=["{tiny_corpus}"]'])
    path = tmp_path / "run.toml"
    config.save(path)
    proc = subprocess.Popen([sys.executable, "-m", "studio", "worker", "--config", str(path), "--out", str(tmp_path / "runs")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    lines = Lines(proc.stdout)
    events: list[dict] = []
    closed_at: float | None = None
    try:
        while (line := lines.next()) is not None:
            event = json.loads(line)  # nothing but JSON on the protocol channel
            events.append(event)
            # Losing the supervisor must end the run within a step or two, not 100,000 steps later.
            assert closed_at is None or time.monotonic() - closed_at < 60, "the worker went on after its input closed"
            if event["event"] == "step" and event["step"] == 3:
                proc.stdin.write("pause\n")
                proc.stdin.flush()
            if event["event"] == "paused":
                proc.stdin.write("resume\n")
                proc.stdin.flush()
            if event["event"] == "step" and event["step"] == 6:
                proc.stdin.close()  # the supervisor went away
                closed_at = time.monotonic()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    kinds = [e["event"] for e in events]
    paused, resumed = kinds.index("paused"), kinds.index("resumed")
    assert paused < resumed and "step" not in kinds[paused:resumed]  # no step while paused
    assert kinds[-2:] == ["finished", "run_ended"]
    result = events[-1]
    assert result["status"] == "stopped" and result["step"] >= 6
    assert load_checkpoint(Path(result["run_dir"]) / "checkpoints" / "last").step == result["step"]


def test_worker_reports_a_failure_as_its_result(tmp_path: Path, tiny_corpus: Path) -> None:
    """A run the worker cannot even begin (here: a resume whose config.toml is damaged) still ends
    with one ``result`` line saying why, which the window shows, and exit status 1."""
    run = tmp_path / "20260101-000000-gpt"
    run.mkdir()
    (run / "config.toml").write_text("[model\narch = gpt\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "studio", "worker", "--resume", str(run)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    (line,) = done.stdout.splitlines()
    result = json.loads(line)
    assert result["event"] == "run_ended" and result["status"] == "failed" and result["step"] == 0
    assert "config.toml" in result["error"], result


# ---- torchrun -------------------------------------------------------------------------------

STEPS = 16


def torchrun(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.Popen[str]:
    """Two CPU ranks over gloo. ``--standalone`` lets the rendezvous take a free port from the OS,
    so runs on the same machine (other tests, other checkouts) never meet on a fixed one."""
    exe = Path(sys.executable).parent / "torchrun"
    return subprocess.Popen([str(exe), "--standalone", "--nproc_per_node=2", "-m", "studio", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "OMP_NUM_THREADS": "1", **env})


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str]:
    assert proc.stdout is not None
    try:
        output = Lines(proc.stdout).rest(timeout)
        return proc.wait(timeout=60), output
    finally:
        if proc.poll() is None:
            proc.kill()


def ranks_of(parent: int) -> dict[int, int]:
    """torchrun's worker processes, by rank (from their environment)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                env = dict(item.split("=", 1) for item in (stat.parent / "environ").read_text().split("\0") if "=" in item)
                if "RANK" in env:
                    found[int(env["RANK"])] = int(stat.parent.name)
    return found


@pytest.fixture(scope="module")
def torchrun_runs(tmp_path_factory: pytest.TempPathFactory, tiny_corpus: Path) -> dict[str, object]:
    """Three torchrun runs shared by the tests below: one straight through; one stopped by a
    SIGTERM to rank 1 alone; and that one resumed under torchrun to the end."""
    root = tmp_path_factory.mktemp("torchrun")
    env = {"STUDIO_DATA_DIR": str(root / "data"), "STUDIO_CACHE_DIR": str(root / "cache")}
    args = ["train", "demo-gpt", *TINY, "--set", f"train.steps={STEPS}", "--set", "train.checkpoint_interval=5",
            "--set", "model.dropout=0.1", "--set", f'data.paths=["{tiny_corpus}"]', "--quiet"]
    code, output = finish(torchrun(*args, "--out", str(root / "straight"), env=env))
    assert code == 0, output
    straight = only_run(root / "straight")

    # Both ranks freeze themselves right after step 6; rank 1 alone is asked to stop, then both go
    # on. Rank 0 (the only rank that writes) freezes once more in its final save, after the files
    # are written: meanwhile rank 1 must wait for it, because torchrun ends the whole job with
    # SIGTERM once any rank exits.
    fault = "train:step@6=stop,checkpoint:files-written@2=stop"
    proc = torchrun(*args, "--out", str(root / "stopped"), env={**env, "STUDIO_FAULT": fault})
    try:
        wait_until(lambda: len(ranks := ranks_of(proc.pid)) == 2 and all(process_state(p) == "T" for p in ranks.values()),
                   "both ranks to reach step 6")
        ranks = ranks_of(proc.pid)
        os.kill(ranks[1], signal.SIGTERM)
        os.kill(ranks[1], signal.SIGCONT)
        os.kill(ranks[0], signal.SIGCONT)
        wait_until(lambda: process_state(ranks[0]) == "T", "rank 0 to reach its final save")
        time.sleep(1.5)  # ample time for rank 1 to have exited, had it not waited
        rank1_waited = process_state(ranks[1]) not in ("Z", "") and ranks_of(proc.pid).get(1) == ranks[1]
        os.kill(ranks[0], signal.SIGCONT)
    except BaseException:
        for pid in ranks_of(proc.pid).values():  # frozen ranks would never end by themselves
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.kill()
        raise
    stopped_code, stopped_output = finish(proc)
    stopped = only_run(root / "stopped")
    from studio.core.training.run_dir import RunDir

    # How the stop left the run, before the resume below carries on in the same folder.
    when_stopped = {"code": stopped_code, "output": stopped_output, "rank1_waited": rank1_waited, "info": RunDir(stopped).read_info(),
                    "checkpoint": load_checkpoint(stopped / "checkpoints" / "last"), "steps": [e.step for e in step_events(stopped)]}
    code, resumed_output = finish(torchrun("resume", str(stopped), "--quiet", env=env))
    return {"straight": straight, "stopped": stopped, "when_stopped": when_stopped, "resumed_code": code,
            "resumed_output": resumed_output}


def step_events(run: Path) -> list:
    from studio.core.events import StepLogged
    from studio.core.training.run_dir import RunDir

    return [e for e in RunDir(run).read_events() if isinstance(e, StepLogged)]


@LINUX
def test_torchrun_two_ranks_on_cpu(torchrun_runs: dict[str, object]) -> None:
    """The same loop under torchrun: DDP over gloo, rank 0 alone writes the run folder."""
    run = torchrun_runs["straight"]
    assert isinstance(run, Path)
    log = (run / "log.txt").read_text()
    assert "x2 ranks" in log and f"finished at step {STEPS}" in log
    assert load_checkpoint(run / "checkpoints" / "last").step == STEPS
    steps = step_events(run)
    assert [e.step for e in steps] == list(range(1, STEPS + 1))  # one record per step: rank 0's
    assert [e.tokens_seen for e in steps] == [e.step * 8 * 32 * 2 for e in steps]  # both ranks' batches count


@LINUX
def test_a_stop_on_any_rank_stops_all(torchrun_runs: dict[str, object]) -> None:
    """SIGTERM to rank 1 alone: rank 0, which writes the run, stops at the same step and saves."""
    stop = torchrun_runs["when_stopped"]
    assert isinstance(stop, dict)
    output = stop["output"]
    assert "SIGTERM: stopping after this step and saving" in output  # said by rank 1 alone
    # Both ranks end as a stopped run does (130), which torchrun then reports with its own
    # traceback, naming whichever rank it noticed first; everything before that is Studio's.
    marker = re.search(r"failed \(exitcode: 130\) local_rank: [01]", output)
    assert marker is not None, output
    studio_part, torchrun_report = output[: marker.start()], output[marker.start():]
    assert "Traceback" not in studio_part and "ChildFailedError" in torchrun_report
    # Rank 1's handler runs once the OS delivers the signal to one of its threads, which on a
    # loaded machine can be a step after it was sent; what matters is that rank 0, never
    # signalled, stopped at the very step rank 1 did, and saved it.
    assert stop["rank1_waited"], "rank 1 exited while rank 0 was still saving"
    step = stop["info"]["step"]
    assert stop["info"]["status"] == "stopped" and 6 <= step <= 8, stop["info"]
    assert stop["checkpoint"].step == step and stop["checkpoint"].resumable
    assert stop["steps"] == list(range(1, step + 1))  # rank 0 took no step after the stop


@LINUX
def test_torchrun_resume_is_exact(torchrun_runs: dict[str, object]) -> None:
    """Stopped at step 6 and resumed under torchrun: every step's loss (the mean over both ranks)
    is that of the run that never stopped."""
    assert torchrun_runs["resumed_code"] == 0, torchrun_runs["resumed_output"]
    straight, resumed = torchrun_runs["straight"], torchrun_runs["stopped"]
    assert isinstance(straight, Path) and isinstance(resumed, Path)
    expected = {e.step: e.loss for e in step_events(straight)}
    got = {e.step: e.loss for e in step_events(resumed)}
    assert sorted(got) == list(range(1, STEPS + 1))
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_help_and_usage_errors_speak_chinese(tmp_path: Path) -> None:
    """argparse's own words (usage, options, required arguments) follow the language too."""
    env = {**os.environ, "STUDIO_LANG": "zh_CN"}
    out = subprocess.run([sys.executable, "-m", "studio.cli.main", "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("用法：") and "选项" in out.stdout, out.stdout
    out = subprocess.run([sys.executable, "-m", "studio.cli.main", "train"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2 and "缺少必需的参数" in out.stderr, out.stderr
