"""Checkpoints as committed units, and checkpoints from strangers.

The commit protocol is exercised at each point a save can be cut short; hostile checkpoints
(pickles under safetensors names, manifests that claim a huge model or vocabulary, a newer format)
must be refused with a message, before anything large is allocated and without unpickling.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from studio.cli.main import main
from studio.core.config import RunConfig
from studio.core.errors import CheckpointError
from studio.core.resources import find_config
from studio.core.training.checkpoint import load_checkpoint, save_checkpoint
from studio.core.training.checkpoint_commit import (
    COMMIT_FILE,
    commit_status,
    committed_checkpoint,
    file_sizes,
    recover_checkpoints,
)
from studio.core.training.trainer import Trainer

TINY = ["model.n_layers=1", "model.d_model=32", "model.n_heads=2", "model.context_length=16", "train.batch_size=4",
        "train.eval_interval=5", "train.eval_batches=2", "train.sample_tokens=0", "train.steps=5"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_corpus: Path) -> Path:
    out = tmp_path_factory.mktemp("runs")
    config = RunConfig.load(find_config("demo-gpt"), [*TINY, f'data.paths=["{tiny_corpus}"]'])
    result = Trainer(config, out=out).fit()
    assert result.status == "finished"
    return result.run_dir


@pytest.fixture
def run(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / trained.name
    shutil.copytree(trained, copy)
    return copy


def save_again(run: Path, step: int) -> None:
    ckpt = load_checkpoint(run / "checkpoints" / "last")
    model = ckpt.build_model()
    save_checkpoint(run / "checkpoints" / "last", model=model, config=ckpt.config, tokenizer=ckpt.tokenizer,
                    state={**ckpt.state, "step": step})


def test_a_save_is_committed_and_replaces_the_previous(run: Path) -> None:
    last = run / "checkpoints" / "last"
    assert commit_status(last) == (True, 5)
    save_again(run, 7)
    assert commit_status(last) == (True, 7)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best", "last"]
    commit = json.loads((last / COMMIT_FILE).read_text())
    assert commit["files"] == file_sizes(last) and "model.safetensors" in commit["files"]


def test_killed_between_the_renames_recovers_the_old_checkpoint(run: Path) -> None:
    checkpoints = run / "checkpoints"
    (checkpoints / "last").rename(checkpoints / ".last-old")  # what a kill between the renames leaves
    assert committed_checkpoint(checkpoints / "last") == checkpoints / ".last-old"  # readers find it
    assert load_checkpoint(checkpoints / "last").step == 5
    notes = recover_checkpoints(checkpoints)
    assert notes == ["recovered the last checkpoint of step 5 from an interrupted save"]
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best", "last"]


def test_a_committed_work_folder_newer_than_a_missing_last_is_recovered(run: Path) -> None:
    checkpoints = run / "checkpoints"
    save_again(run, 9)
    (checkpoints / "last").rename(checkpoints / ".last-abc123")  # committed, never renamed into place
    recover_checkpoints(checkpoints)
    assert commit_status(checkpoints / "last") == (True, 9)


def test_uncommitted_leftovers_are_removed_and_a_good_last_kept(run: Path) -> None:
    checkpoints = run / "checkpoints"
    work = checkpoints / ".last-xyz"
    shutil.copytree(checkpoints / "last", work)
    (work / COMMIT_FILE).unlink()  # killed before the commit marker: incomplete
    (work / "model.safetensors").write_bytes(b"cut")
    assert commit_status(work) == (False, 0)
    recover_checkpoints(checkpoints)
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best", "last"]
    assert load_checkpoint(checkpoints / "last").step == 5


def test_a_truncated_file_fails_the_commit_check(run: Path) -> None:
    last = run / "checkpoints" / "last"
    data = (last / "model.safetensors").read_bytes()
    (last / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="incomplete or damaged"):
        load_checkpoint(last)


class _Boom:
    """Unpickling this creates a file: proof that something unpickled it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Path.touch, (self.marker,))


def _recommit(folder: Path) -> None:
    """An adversary can rewrite the commit record too: the reader must not rely on it alone."""
    commit = json.loads((folder / COMMIT_FILE).read_text())
    commit["files"] = file_sizes(folder)
    (folder / COMMIT_FILE).write_text(json.dumps(commit))


@pytest.mark.parametrize("name", ["model.safetensors", "training_state.safetensors"])
def test_a_pickle_under_a_checkpoint_name_is_refused_and_never_unpickled(run: Path, tmp_path: Path, name: str) -> None:
    last = run / "checkpoints" / "last"
    marker = tmp_path / "unpickled"
    (last / name).write_bytes(pickle.dumps({"weights": _Boom(marker)}))
    torch.save({"x": _Boom(marker)}, str(tmp_path / "torch.pt"))  # the torch.save flavour, for the record
    _recommit(last)
    with pytest.raises(CheckpointError):
        ckpt = load_checkpoint(last)
        ckpt.build_model()
        ckpt.load_training_state(torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))]))
    if name == "model.safetensors":  # generate reads only the weights
        assert main(["generate", str(run), "--checkpoint", "last", "--max-tokens", "3"]) == 1
    assert main(["resume", str(run), "--set", "train.steps=6", "--quiet"]) == 1
    assert not marker.exists()


def test_a_manifest_claiming_a_huge_vocabulary_is_refused_before_allocating(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    last = run / "checkpoints" / "last"
    state = json.loads((last / "state.json").read_text())
    state["vocab_size"] = 200_000_000
    (last / "state.json").write_text(json.dumps(state))
    _recommit(last)
    assert main(["generate", str(run), "--checkpoint", "last", "--max-tokens", "3"]) == 1
    err = capsys.readouterr().err
    assert "claims a vocabulary of 200000000 entries" in err and "Traceback" not in err


def test_a_config_claiming_a_huge_model_is_refused_before_allocating(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    last = run / "checkpoints" / "last"
    config = (last / "config.toml").read_text().replace("d_model = 32", "d_model = 8192").replace("n_heads = 2", "n_heads = 64")
    (last / "config.toml").write_text(config)
    _recommit(last)
    with pytest.raises(CheckpointError, match="holds only"):
        load_checkpoint(last).build_model()
    assert main(["generate", str(run), "--checkpoint", "last", "--max-tokens", "3"]) == 1
    assert "holds only" in capsys.readouterr().err


def test_a_checkpoint_from_a_newer_studio_is_refused(run: Path) -> None:
    last = run / "checkpoints" / "last"
    state = json.loads((last / "state.json").read_text())
    state["format_version"] = 99
    (last / "state.json").write_text(json.dumps(state))
    _recommit(last)
    with pytest.raises(CheckpointError, match="newer Studio"):
        load_checkpoint(last)


def test_a_model_too_large_for_memory_is_refused_before_allocating(tiny_corpus: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "demo-gpt", "--set", "model.d_model=8192", "--set", "model.n_heads=64", "--set", "model.n_layers=48",
                 "--set", f'data.paths=["{tiny_corpus}"]', "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert "needs about" in err and "is available" in err and "Lower model width" in err
    assert not list(tmp_path.iterdir())  # refused before its run folder was made
