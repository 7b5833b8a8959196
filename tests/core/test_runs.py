"""The run library: SQLite index over run folders, kill-safety, edits, migration; config diff;
hyperparameter search with pruning and cross-validation; export round trip; TensorBoard files."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.core.config import RunConfig
from studio.core.decoding.options import DecodingSettings
from studio.core.decoding.sampling import generate_text
from studio.core.inference.loading import load_model
from studio.core.paths import data_dir, runs_dir
from studio.core.runs.compare import config_diff, run_config_table
from studio.core.runs.index import SCHEMA_VERSION, RunIndex
from studio.core.runs.search import run_search
from studio.core.runs.trials import SearchSpec
from studio.core.training.trainer import Trainer
from tests.core.test_models import tiny_config


def tiny_run(corpus: Path, *extra: str) -> Path:
    return Trainer(tiny_config("gpt", corpus, "train.steps=6", "train.eval_interval=3", "train.sample_tokens=0", *extra)).fit().run_dir


def test_index_lists_sorts_filters_and_edits(tiny_corpus: Path) -> None:
    a = tiny_run(tiny_corpus, "run.name=alpha", "train.lr=1e-3")
    b = tiny_run(tiny_corpus, "run.name=beta")
    index = RunIndex()
    assert index.refresh() == 2
    rows = index.list(order_by="started")
    assert [r.name for r in rows] == ["beta", "alpha"]  # newest first
    assert rows[0].status == "finished" and rows[0].arch == "gpt" and rows[0].parameters > 0
    assert rows[0].best_valid_loss is not None and rows[0].step == 6
    assert [r.name for r in index.list(text="alp")] == ["alpha"]

    index.rename(a, "alpha-renamed")
    index.set_tags(a, ["baseline", "small"])
    index.set_notes(a, "the first try")
    info = json.loads((a / "run.json").read_text())
    assert info["name"] == "alpha-renamed" and info["tags"] == ["baseline", "small"] and info["notes"] == "the first try"
    index.refresh()  # the folder is the truth: a refresh keeps the edits
    record = index.get(a)
    assert record is not None and record.name == "alpha-renamed" and record.tag_list == ["baseline", "small"]
    assert [r.name for r in index.list(text="baseline")] == ["alpha-renamed"]

    freed = index.delete(b)
    assert freed > 10_000 and not b.exists()
    assert [r.name for r in index.list()] == ["alpha-renamed"]


def _wait_until_frozen(proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    """Wait for a child that stops itself (``STUDIO_FAULT=...=stop``) to be frozen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status = os.waitpid(proc.pid, os.WUNTRACED | os.WNOHANG)
        if pid:
            assert os.WIFSTOPPED(status), f"the training process ended instead (status {status})"
            return
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the training process never reached its stop point")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_index_stays_consistent_when_a_run_is_killed(tiny_corpus: Path) -> None:
    """SIGKILL a training process mid-run: the run shows as interrupted, keeps its last checkpoint,
    and resumes; the index agrees with the folder throughout.

    Where the kill lands is fixed, so the checks can be exact: the process freezes itself right
    after step 13 (the fault hook's ``stop``), two steps before a save could begin, and is killed
    there. A kill at a random moment could land in a save, between its rename and the event that
    updates run.json."""
    config = tiny_config("gpt", tiny_corpus, "train.steps=100000", "train.checkpoint_interval=5", "train.eval_interval=1000")
    path = runs_dir().parent / "killed.toml"
    config.save(path)
    proc = subprocess.Popen([sys.executable, "-m", "studio", "train", str(path), "--quiet"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "STUDIO_FAULT": "train:step@13=stop"})
    try:
        _wait_until_frozen(proc)
        index = RunIndex()
        index.refresh()
        (row,) = index.list()
        assert row.status == "running"  # alive (if frozen) and holding the run's lock
        # run.json follows the saves (steps 5 and 10) and, at most every 5 s, the steps.
        assert 10 <= row.step <= 13, row
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    index.refresh()
    row = index.list()[0]
    assert row.status == "interrupted", row
    run = Path(row.path)
    assert json.loads((run / "run.json").read_text())["status"] == "running"  # what the dead process last wrote...
    # ...and the index reads it as interrupted, because nobody holds the run's lock any more.
    from studio.core.training.checkpoint import load_checkpoint

    assert load_checkpoint(run / "checkpoints" / "last").step == 10
    result = Trainer.resume(run, ["train.steps=16"]).fit()
    assert result.status == "finished" and result.step == 16
    index.refresh()
    record = index.get(run)
    assert record is not None and record.status == "finished" and record.step == 16


def test_old_index_schema_is_migrated_keeping_its_rows(tmp_path: Path) -> None:
    db_path = data_dir() / "runs.sqlite"
    db = sqlite3.connect(db_path)
    db.execute("CREATE TABLE runs (path TEXT PRIMARY KEY, name TEXT, arch TEXT, task TEXT, parameters INTEGER, corpus TEXT, "
               "status TEXT, best_valid_loss REAL, metric_name TEXT, metric REAL, started REAL, finished REAL, duration_s REAL, "
               "step INTEGER, total_steps INTEGER, updated REAL)")
    old_row = (str(tmp_path / "elsewhere" / "old-run"), "old-run", "lstm", "lm", 1234, "stories.txt", "finished", 1.25, "", None,
               1000.0, 1060.0, 60.0, 500, 500, 1061.0)
    db.execute(f"INSERT INTO runs VALUES ({', '.join('?' for _ in old_row)})", old_row)
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()

    index = RunIndex()
    db = sqlite3.connect(db_path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    columns = [row[1] for row in db.execute("PRAGMA table_info(runs)")]
    assert "tags" in columns and "notes" in columns
    db.close()
    # The row written by the old Studio is still there, whole, with the new columns empty.
    record = index.get(old_row[0])
    assert record is not None
    assert tuple(getattr(record, c) for c in ("path", "name", "arch", "task", "parameters", "corpus", "status", "best_valid_loss",
                                              "metric_name", "metric", "started", "finished", "duration_s", "step",
                                              "total_steps", "updated")) == old_row
    assert record.tags == "" and record.notes == "" and record.tag_list == []
    assert record.has_checkpoint is False and record.search == ""
    assert [r.name for r in index.list(text="old-run")] == ["old-run"]

    # An index from a newer Studio is refused rather than "migrated" backwards.
    db = sqlite3.connect(db_path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(RuntimeError, match="newer Studio"):
        RunIndex()


def test_config_diff_shows_exactly_the_keys_that_differ(tiny_corpus: Path) -> None:
    a = tiny_run(tiny_corpus, "train.lr=1e-3", "run.name=a")
    b = tiny_run(tiny_corpus, "train.lr=2e-3", "model.n_layers=1", "run.name=b")
    rows = config_diff([run_config_table(a), run_config_table(b)])
    assert rows == [("model.n_layers", [2, 1]), ("run.name", ["a", "b"]), ("train.lr", [1e-3, 2e-3])]
    assert config_diff([{"x": {"y": 1}}, {"x": {"y": 1, "z": 2}}]) == [("x.z", [None, 2])]


def test_search_leaderboard_and_pruning(tiny_corpus: Path) -> None:
    spec = SearchSpec.from_dict({
        "search": {"name": "t", "base": str(_tiny_base_file(tiny_corpus)), "strategy": "grid", "metric": "valid_loss",
                   "prune": True, "prune_after": 1, "prune_startup": 2, "set": ["train.steps=20", "train.eval_interval=5"]},
        "params": {"train.lr": [3e-3, 1e-2, 0.0, 1e-3]},  # lr 0 never learns: a deliberately bad trial
    })
    board, folder = run_search(spec)
    # Every grid point ran once, as the trial it was given.
    assert {r.trial: r.params["train.lr"] for r in board} == {1: 3e-3, 2: 1e-2, 3: 0.0, 4: 1e-3}
    finished = [r for r in board if r.status == "finished"]
    values = [r.value for r in finished]
    assert finished and None not in values and values == sorted(values)  # best (lowest loss) first
    bad = next(r for r in board if r.params["train.lr"] == 0.0)
    assert bad.status == "pruned" and bad.steps < 20
    # Completed trials first, then the pruned ones: the ranking is by status before value.
    assert board[: len(finished)] == finished and all(r.status == "pruned" for r in board[len(finished):])
    assert (folder / "leaderboard.csv").read_text().splitlines()[0].startswith("rank,trial,train.lr,valid_loss")
    assert len((folder / "trials.jsonl").read_text().splitlines()) == 4
    tags = json.loads((Path(board[0].run_dirs[0]) / "run.json").read_text())["tags"]
    assert f"search:{folder.name}" in tags and folder.name.endswith("-t")  # the search's own folder: two "t" stay apart
    index = RunIndex()
    index.refresh()
    assert {r.search for r in index.list() if r.path in {d for t in board for d in t.run_dirs}} == {folder.name}  # grouped


def test_random_search_is_seeded_and_cross_validation_averages_folds(tmp_path: Path, tiny_corpus: Path) -> None:
    from studio.core.errors import ConfigError
    from studio.core.events import EvalLogged
    from studio.core.training.run_dir import RunDir

    spec = SearchSpec.from_dict({"search": {"base": "demo-gpt", "strategy": "random", "trials": 5, "seed": 3},
                                 "params": {"train.lr": {"min": 1e-4, "max": 1e-2, "log": True}, "model.n_layers": [1, 2]}})
    again = SearchSpec.from_dict({"search": {"base": "demo-gpt", "strategy": "random", "trials": 5, "seed": 3},
                                  "params": {"train.lr": {"min": 1e-4, "max": 1e-2, "log": True}, "model.n_layers": [1, 2]}})
    other = SearchSpec.from_dict({"search": {"base": "demo-gpt", "strategy": "random", "trials": 5, "seed": 4},
                                  "params": {"train.lr": {"min": 1e-4, "max": 1e-2, "log": True}, "model.n_layers": [1, 2]}})
    assert spec.settings() == again.settings() != other.settings()
    assert all(1e-4 <= s["train.lr"] <= 1e-2 and s["model.n_layers"] in (1, 2) for s in spec.settings())
    with pytest.raises(ConfigError, match="a grid needs lists"):
        SearchSpec.from_dict({"search": {"base": "demo-gpt", "strategy": "grid"}, "params": {"train.lr": {"min": 1, "max": 2}}})

    from studio.core.tasks.demo import write_demo_task

    files = write_demo_task("demo-sentiment", tmp_path / "sent", sizes={"train": 60, "valid": 10, "test": 10})
    base = tmp_path / "cls.toml"
    RunConfig().with_overrides([
        "task.kind=classify", f'task.paths=["{files["train"]}"]', "model.n_layers=1", "model.d_model=32", "model.n_heads=2",
        "model.context_length=64", "train.batch_size=8", "train.steps=8", "train.eval_interval=4",
    ]).save(base)
    # The validation loss differs from fold to fold (an accuracy on 20 examples may tie), so an
    # average is told apart from any one fold's value.
    cv = SearchSpec.from_dict({"search": {"base": str(base), "strategy": "grid", "metric": "valid_loss", "folds": 3},
                               "params": {"train.lr": [1e-3]}})
    board, _ = run_search(cv)
    (trial,) = board
    assert trial.status == "finished" and len(trial.run_dirs) == 3  # one run per fold
    fold_values = []
    for fold, run_dir in enumerate(trial.run_dirs):
        run = RunDir(Path(run_dir))
        task = run.load_config().task
        assert (task.cv_folds, task.cv_fold) == (3, fold)  # each run validates on its own fold
        fold_values.append(min(e.loss for e in run.read_events() if isinstance(e, EvalLogged)))
    assert len(set(fold_values)) == 3
    assert trial.value == pytest.approx(sum(fold_values) / 3, rel=1e-9)


def test_parallel_trials_run_in_their_own_processes(tiny_corpus: Path) -> None:
    """With several GPUs each trial gets one; here two CPU processes stand in for two GPUs."""
    spec = SearchSpec.from_dict({
        "search": {"name": "par", "base": str(_tiny_base_file(tiny_corpus)), "strategy": "grid", "parallel": 2,
                   "set": ["train.steps=6", "train.eval_interval=3"]},
        "params": {"train.lr": [1e-3, 3e-3]},
    })
    board, _ = run_search(spec)
    assert sorted(r.status for r in board) == ["finished", "finished"]
    assert all(r.value is not None and Path(r.run_dirs[0]).is_dir() for r in board)
    # Each trial's run.json names the process that trained it: two processes, neither this one.
    pids = {json.loads((Path(r.run_dirs[0]) / "run.json").read_text())["pid"] for r in board}
    assert len(pids) == 2 and os.getpid() not in pids
    assert {r.params["train.lr"] for r in board} == {1e-3, 3e-3}


def _tiny_base_file(corpus: Path) -> Path:
    path = runs_dir().parent / "tiny.toml"
    tiny_config("gpt", corpus, "train.sample_tokens=0", "schedule.warmup_steps=2").save(path)
    return path


def test_exported_run_generates_the_same_tokens(tiny_corpus: Path, tmp_path: Path) -> None:
    from studio.core.runs.export import export_run

    run = tiny_run(tiny_corpus)
    settings = DecodingSettings(max_new_tokens=30, temperature=1.0, seed=7)
    before = load_model(run)
    expected = generate_text(before.model, before.tokenizer, "One morning", settings)
    archive = export_run(run, tmp_path / "model.zip", as_zip=True)
    import zipfile

    with zipfile.ZipFile(archive) as z:
        z.extractall(tmp_path / "unzipped")
        names = z.namelist()
    assert any(n.endswith("model/model.safetensors") for n in names) and any(n.endswith("metrics.csv") for n in names)
    after = load_model(tmp_path / "unzipped" / "model" / "model")
    assert generate_text(after.model, after.tokenizer, "One morning", settings) == expected


def test_tensorboard_event_files_when_installed(tiny_corpus: Path) -> None:
    pytest.importorskip("tensorboard")
    run = tiny_run(tiny_corpus)
    files = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert files and files[0].stat().st_size > 100
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    assert {"train/loss", "valid/loss"} <= set(acc.Tags()["scalars"])
    assert len(acc.Scalars("train/loss")) == 6
