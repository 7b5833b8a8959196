"""Runs that work from wherever they are used: relative corpus paths, runs made with --out, and
the run lock, which is filelock's (flock on POSIX, msvcrt on Windows), not fcntl's alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from studio.cli.main import main
from studio.core.training.checkpoint import load_checkpoint
from studio.core.training.run_dir import RunDir, hold_run_lock, release_run_lock

TINY = ["--set", "model.n_layers=1", "--set", "model.d_model=32", "--set", "model.n_heads=2", "--set", "model.context_length=16",
        "--set", "train.batch_size=4", "--set", "train.eval_interval=5", "--set", "train.eval_batches=2",
        "--set", "train.sample_tokens=0", "--set", "train.steps=5"]


def test_relative_corpus_path_is_stored_absolute_and_resume_works_elsewhere(
        tmp_path: Path, tiny_corpus: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(tiny_corpus, project / "corpus.txt")
    monkeypatch.chdir(project)
    assert main(["train", "demo-gpt", *TINY, "--set", 'data.paths=["corpus.txt"]', "--set", "run.name=portable", "--quiet"]) == 0
    run = RunDir.open("portable")
    assert run.load_config().data.paths == [str(project / "corpus.txt")]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["resume", "portable", "--set", "train.steps=8", "--quiet"]) == 0
    assert load_checkpoint(run.checkpoint("last")).step == 8


def test_runs_made_with_out_are_listed_and_resumable_by_name(tmp_path: Path, tiny_corpus: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "my-experiments"
    assert main(["train", "demo-gpt", *TINY, "--set", f'data.paths=["{tiny_corpus}"]', "--set", "run.name=outside",
                 "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["runs"]) == 0
    assert "outside" in capsys.readouterr().out
    assert main(["resume", "outside", "--set", "train.steps=7", "--quiet"]) == 0
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    assert load_checkpoint(run / "checkpoints" / "last").step == 7


def test_ambiguous_run_names_are_refused_with_the_candidates(tmp_path: Path, tiny_corpus: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("alpha-one", "alpha-two"):
        assert main(["train", "demo-gpt", *TINY, "--set", f'data.paths=["{tiny_corpus}"]', "--set", f"run.name={name}",
                     "--quiet"]) == 0
    capsys.readouterr()
    assert main(["generate", "alpha", "--max-tokens", "2"]) == 1
    err = capsys.readouterr().err
    assert "'alpha' matches 2 runs" in err and "alpha-one" in err and "alpha-two" in err


def test_the_run_lock_is_exclusive_and_shows_liveness(tmp_path: Path) -> None:
    from studio.core.errors import CheckpointError
    from studio.core.training.run_dir import _alive

    folder = tmp_path / "run"
    folder.mkdir()
    lock = hold_run_lock(folder)
    try:
        assert _alive(folder, {"host": None})
        with pytest.raises(CheckpointError, match="being trained by another process"):
            hold_run_lock(folder)
    finally:
        release_run_lock(lock)
    assert not _alive(folder, {"host": None})
