from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.cli.main import main
from studio.core.runs.run_dir import RunDir
from studio.core.training.checkpoint import load_checkpoint

TINY = ["--set", "model.n_layers=1", "--set", "model.d_model=32", "--set", "model.n_heads=2", "--set", "model.context_length=32",
        "--set", "train.batch_size=8", "--set", "train.eval_interval=10", "--set", "train.eval_batches=2",
        "--set", "train.sample_tokens=16"]


def only_run(out: Path) -> Path:
    runs = [p for p in out.iterdir() if (p / "config.toml").exists()]
    assert len(runs) == 1
    return runs[0]


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

    assert main(["eval", str(run)]) == 0
    report = capsys.readouterr().out
    assert "valid: loss" in report and "perplexity" in report


def test_run_found_by_name(tmp_path: Path, tiny_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "demo-lstm", "--set", "train.steps=3", "--set", "model.context_length=16",
                 "--set", f'data.paths=["{tiny_corpus}"]', "--set", "run.name=named-run", "--quiet"]) == 0
    assert main(["generate", "named-run", "--max-tokens", "5", "--temperature", "0"]) == 0
    assert main(["runs"]) == 0
    assert "named-run" in capsys.readouterr().out


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


def test_ctrl_c_stops_cleanly_and_saves(tmp_path: Path, tiny_corpus: Path) -> None:
    """The real entry point in a child process: SIGINT mid-run gives exit 130 and a resumable checkpoint."""
    out = tmp_path / "runs"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "studio", "train", "demo-gpt", *TINY, "--set", "train.steps=100000",
         "--set", f'data.paths=["{tiny_corpus}"]', "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        runs = list(out.glob("*/metrics.jsonl")) if out.exists() else []
        if runs and '"event": "step"' in runs[0].read_text():
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("training never started")
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "stopping after this step" in output and "stopped at step" in output
    ckpt = load_checkpoint(only_run(out) / "checkpoints" / "last")
    assert ckpt.resumable and ckpt.step >= 1


def test_torchrun_two_ranks_on_cpu(tmp_path: Path, tiny_corpus: Path) -> None:
    """The same loop under torchrun: DDP over gloo, rank 0 alone writes the run folder."""
    torchrun = Path(sys.executable).parent / "torchrun"
    out = tmp_path / "runs"
    result = subprocess.run(
        [str(torchrun), "--nproc_per_node=2", "-m", "studio", "train", "demo-gpt", *TINY, "--set", "train.steps=12",
         "--set", f'data.paths=["{tiny_corpus}"]', "--out", str(out), "--quiet"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    run = only_run(out)
    log = (run / "log.txt").read_text()
    assert "x2 ranks" in log and "finished at step 12" in log
    assert load_checkpoint(run / "checkpoints" / "last").step == 12


def test_worker_protocol_pause_resume_and_stop_on_eof(tmp_path: Path, tiny_corpus: Path) -> None:
    """The window's training process: JSON events out, commands in; losing the supervisor stops and saves."""
    import json

    from studio.core.config import RunConfig
    from studio.core.resources import find_config

    config = RunConfig.load(find_config("demo-gpt"), [*[a for a in TINY if a != "--set"], "train.steps=100000", f'data.paths=["{tiny_corpus}"]'])
    path = tmp_path / "run.toml"
    config.save(path)
    proc = subprocess.Popen([sys.executable, "-m", "studio", "worker", "--config", str(path), "--out", str(tmp_path / "runs")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    kinds = []
    for line in proc.stdout:
        event = json.loads(line)
        kinds.append(event["event"])
        if event["event"] == "step" and event["step"] == 3:
            proc.stdin.write("pause\n")
            proc.stdin.flush()
        if event["event"] == "paused":
            proc.stdin.write("resume\n")
            proc.stdin.flush()
        if event["event"] == "step" and event["step"] == 6:
            proc.stdin.close()  # the supervisor went away
        if event["event"] == "result":
            result = event
    assert proc.wait(timeout=60) == 0
    assert "paused" in kinds and "resumed" in kinds and kinds[-2] == "finished"
    assert result["status"] == "stopped" and result["step"] >= 6
    assert load_checkpoint(Path(result["run_dir"]) / "checkpoints" / "last").resumable
