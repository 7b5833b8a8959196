from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from studio.core.config import DataConfig, TokenizerConfig
from studio.core.control import Cancelled, RunControl
from studio.core.data import corpus as corpus_module
from studio.core.data import prepare as prepare_module
from studio.core.data.prepare import prepare_corpus
from studio.core.data.special_tokens import EOS_ID
from studio.core.errors import DataError
from studio.core.training.batches import eval_windows, sequential_windows


def test_second_run_is_a_cache_hit(tiny_corpus: Path) -> None:
    data = DataConfig(paths=[str(tiny_corpus)])
    first = prepare_corpus(data, TokenizerConfig(kind="char"))
    second = prepare_corpus(data, TokenizerConfig(kind="char"))
    assert not first.cache_hit and second.cache_hit
    assert second.directory == first.directory
    assert np.array_equal(first.tokens("train"), second.tokens("train"))
    assert isinstance(second.tokens("train"), np.memmap)
    # A different tokenizer is a different cache entry.
    third = prepare_corpus(data, TokenizerConfig(kind="bpe", vocab_size=400))
    assert not third.cache_hit and third.directory != first.directory


def test_tokens_decode_back_to_the_corpus(tiny_corpus: Path) -> None:
    prepared = prepare_corpus(DataConfig(paths=[str(tiny_corpus)], valid_fraction=0.1), TokenizerConfig(kind="char"))
    text = tiny_corpus.read_text(encoding="utf-8")
    train = prepared.tokenizer.decode(prepared.tokens("train"))
    valid = prepared.tokenizer.decode(prepared.tokens("valid"))
    assert train + valid == text  # nothing lost, nothing duplicated; the held-out part is the tail
    assert prepared.tokens("train")[-1] == EOS_ID


def test_statistics(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    rows = ["ab", "abc", "abcd", "zzzz"] * 10
    path.write_text("".join(json.dumps({"text": r}) + "\n" for r in rows))
    prepared = prepare_corpus(
        DataConfig(paths=[str(path)], valid_fraction=0.1), TokenizerConfig(kind="char")
    )
    total = prepared.stats.total
    assert total.records == 40 and total.characters == sum(map(len, rows))
    assert total.records == 40 and prepared.stats.splits["valid"].records == 4  # rows shuffled 90/10
    assert total.length_counts[2] == 10 and total.length_counts[3] == 10 and total.length_counts[4] == 20
    edges, counts = total.histogram(bins=5)
    assert counts.sum() == 40 and len(edges) == 6
    assert prepared.stats.files[0]["encoding"] == "UTF-8"


def test_unknown_rate(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("aaaa\n" * 50 + "q\n")
    prepared = prepare_corpus(DataConfig(paths=[str(path)], valid_fraction=0.0), TokenizerConfig(kind="char", min_frequency=2))
    st = prepared.stats.splits["train"]
    assert st.unknown == 1 and 0 < st.unknown_rate < 0.01


def test_given_validation_files(tmp_path: Path) -> None:
    train, valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    train.write_text("hello world\n" * 30)
    valid.write_text("hello world\n" * 3)
    prepared = prepare_corpus(DataConfig(paths=[str(train)], valid_paths=[str(valid)]), TokenizerConfig(kind="char"))
    assert prepared.tokenizer.decode(prepared.tokens("valid")) == "hello world\n" * 3
    assert prepared.stats.splits["valid"].records == 3
    assert prepared.stats.splits["train"].records == 30


def test_cancel_in_the_middle_of_a_build_leaves_no_half_built_cache(tmp_path: Path) -> None:
    from studio.core.data.demo import write_demo_corpus

    corpus = write_demo_corpus(tmp_path / "stories.txt", stories=400, seed=5)
    cache = tmp_path / "cache"
    control = RunControl()
    seen_building: list[str] = []

    def progress(stage: str, done: int, total: int) -> None:
        if stage != "scan" and not control.stop_requested:
            seen_building.extend(p.name for p in cache.iterdir() if p.name.startswith(".build-") and p.is_dir())
            control.request_stop()  # as the Data page's Cancel does, from another thread

    with pytest.raises(Cancelled):
        prepare_corpus(DataConfig(paths=[str(corpus)]), TokenizerConfig(kind="char"), control=control,
                       cache_root=cache, progress=progress)
    assert seen_building, "the stop came while the build folder existed"
    assert not [p.name for p in cache.iterdir() if p.name.startswith(".build-")]
    assert not list(cache.glob("*/meta.json"))


@pytest.mark.parametrize("stage", ["tokenizer", "encode"])
def test_a_cancel_late_in_a_small_build_still_cancels(tmp_path: Path, stage: str) -> None:
    """A file under a MiB is one record: the stop checks once per flush let a Cancel that came
    after the first record go unseen, and the build then succeeded (a flaky GUI test on CI)."""
    corpus = tmp_path / "small.txt"
    corpus.write_text("the quick brown fox jumps\n" * 20_000, encoding="utf-8")  # 500 kB: one record
    cache = tmp_path / "cache"
    control = RunControl()
    stages: list[str] = []

    def progress(name: str, done: int, total: int) -> None:
        stages.append(name)
        if name == stage and done == total:  # the stage's last report: nothing is left to check after it but the commit
            control.request_stop()

    with pytest.raises(Cancelled):
        prepare_corpus(DataConfig(paths=[str(corpus)]), TokenizerConfig(kind="char"), control=control,
                       cache_root=cache, progress=progress)
    assert stage in stages
    assert not list(cache.glob("*/meta.json")) and not list(cache.glob(".build-*"))


def test_leftovers_of_a_killed_build_are_swept_and_live_builds_kept(tiny_corpus: Path, tmp_path: Path) -> None:
    from filelock import FileLock

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ".build-dead").mkdir()  # a build killed before it could clean up: its lock is free
    (cache / ".build-dead" / "train.bin").write_bytes(b"\0" * 100)
    (cache / ".build-live").mkdir()
    live = FileLock(cache / ".build-live.lock", timeout=0, thread_local=False)
    live.acquire()
    try:
        prepare_corpus(DataConfig(paths=[str(tiny_corpus)]), TokenizerConfig(kind="char"), cache_root=cache)
        assert not (cache / ".build-dead").exists()
        assert (cache / ".build-live").exists()  # another process's build in progress is untouched
    finally:
        live.release()


# ---- long lines, and a corpus with no newline ----------------------------------------------------


def test_a_corpus_without_a_newline_trains(tmp_path: Path) -> None:
    """Used to fail with only "the training split is empty": the file's one line went to validation."""
    path = tmp_path / "one-line.txt"
    text = " ".join(f"word{i % 50}" for i in range(3000))
    path.write_text(text)
    prepared = prepare_corpus(DataConfig(paths=[str(path)], valid_fraction=0.1), TokenizerConfig(kind="char"),
                              cache_root=tmp_path / "cache")
    train = prepared.tokenizer.decode(prepared.tokens("train"))
    valid = prepared.tokenizer.decode(prepared.tokens("valid"))
    assert train + valid == text
    assert abs(len(valid) - 0.1 * len(text)) < 10 and valid.startswith(" ")


def test_too_little_text_for_the_share_says_why_and_what_to_set(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("the first line of\nthe second\nthe fine line\n")  # 43 characters
    with pytest.raises(DataError) as e:  # both shares fall inside the last line, which validation takes
        prepare_corpus(DataConfig(paths=[str(path)], valid_fraction=0.1, test_fraction=0.1), TokenizerConfig(kind="char"),
                       cache_root=tmp_path / "cache")
    message = str(e.value)
    assert message.startswith("the test split is empty: x.txt holds 43 characters, too few for a 10% test share")
    assert "data.test_paths" in message and "data.test_fraction = 0" in message
    # Without a test share the same file trains and validates.
    prepared = prepare_corpus(DataConfig(paths=[str(path)], valid_fraction=0.1), TokenizerConfig(kind="char"),
                              cache_root=tmp_path / "cache")
    assert prepared.tokenizer.decode(prepared.tokens("valid")) == "the fine line\n"


def test_a_short_single_line_file_is_cut_inside_its_line(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("one short line, the whole file, and no newline at its end")
    prepared = prepare_corpus(DataConfig(paths=[str(path)], valid_fraction=0.1), TokenizerConfig(kind="char"),
                              cache_root=tmp_path / "cache")
    assert prepared.tokenizer.decode(prepared.tokens("valid")) == " its end"


@pytest.mark.parametrize("kind", ["bpe", "word", "char"])
def test_long_lines_in_pieces_leave_tokens_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    monkeypatch.setattr(corpus_module, "PIECE_CHARS", 300)
    monkeypatch.setattr(corpus_module, "CUT_WINDOW", 100)
    monkeypatch.setattr(prepare_module, "TOKENIZER_TEXT_CHARS", 120)
    monkeypatch.setattr(prepare_module, "FLUSH_CHARS", 500)
    words = ["the", "cat's", "naïve", "café", "中文", "U.S.", "don't", "—", "x1", "2024", "(ok)", "e\u0301"]
    lines = [" ".join(words[(i * 7 + j) % len(words)] for j in range(40 + i * 90)) for i in range(6)]
    text = "\n".join(lines) + "\n"
    path = tmp_path / "t.txt"
    path.write_text(text)
    tok = TokenizerConfig(kind=kind, vocab_size=400 if kind == "bpe" else 1000)
    prepared = prepare_corpus(DataConfig(paths=[str(path)], valid_fraction=0.0), tok, cache_root=tmp_path / "cache")
    expected = prepared.tokenizer.encode(text)
    expected += [] if expected[-1] == EOS_ID else [EOS_ID]  # the cache closes the document
    assert prepared.tokens("train").tolist() == expected
    st = prepared.stats.splits["train"]
    assert st.records == len(lines) and st.characters == len(text)


# ---- evaluation windows are lazy -----------------------------------------------------------------


def test_eval_windows_keep_their_starts_and_come_a_batch_at_a_time() -> None:
    tokens = np.arange(10_000) % 977
    windows = eval_windows(tokens, 65, 40 * 8)
    old = np.stack([tokens[s : s + 65] for s in np.linspace(0, len(tokens) - 65, num=40 * 8).astype(np.int64)])
    batches = list(windows.batches(8))
    assert len(batches) == 40 and all(b.shape == (8, 65) for b in batches)
    assert np.array_equal(torch.cat(batches).numpy(), old)


def test_a_huge_eval_batch_count_costs_one_batch() -> None:
    """train.eval_batches=100000000 used to build every window in memory (19 GB)."""
    tokens = np.arange(5000) % 300
    windows = eval_windows(tokens, 65, 100_000_000 * 32)
    assert len(windows) == len(tokens) - 65 + 1  # never more windows than distinct starts
    assert np.array_equal(windows.starts(), np.arange(len(tokens) - 65 + 1))
    first = next(windows.batches(32))
    assert first.shape == (32, 65) and first[1, 0] == 1


def test_sequential_windows_are_lazy_and_cover_every_token_once() -> None:
    tokens = np.arange(1000)
    windows = sequential_windows(tokens, 65)
    old_n = (len(tokens) - 1) // 64
    assert len(windows) == old_n
    rows = torch.cat(list(windows.batches(5))).numpy()
    assert np.array_equal(rows, np.stack([tokens[i * 64 : i * 64 + 65] for i in range(old_n)]))
    assert len(sequential_windows(np.arange(10), 65)) == 0
    with pytest.raises(DataError, match="fewer than one window"):
        eval_windows(np.arange(10), 65, 8)


def test_a_built_cache_is_found_again_without_scanning(tiny_corpus: Path, tmp_path: Path) -> None:
    from studio.core.data.prepare import cached_corpus

    data, tok = DataConfig(paths=[str(tiny_corpus)]), TokenizerConfig(kind="char")
    assert cached_corpus(data, tok, cache_root=tmp_path) is None  # nothing built yet
    built = prepare_corpus(data, tok, cache_root=tmp_path)
    found = cached_corpus(data, tok, cache_root=tmp_path)
    assert found is not None and found.tokenizer.vocab_size == built.tokenizer.vocab_size
    assert cached_corpus(DataConfig(dataset="tinyshakespeare"), tok, cache_root=tmp_path) is None  # never downloads


def test_two_writers_of_the_same_demo_files_at_once_both_succeed(tmp_path: Path) -> None:
    """The Fine-tune page's preview and a search's first trial can write a demo task together:
    with one shared "train.tmp" the second rename found it gone (FileNotFoundError)."""
    import threading

    from studio.core.data.demo import write_demo_corpus
    from studio.core.tasks.demo import write_demo_task

    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def write(i: int) -> None:
        start.wait()
        try:
            for _ in range(5):
                if i % 2:
                    write_demo_task("demo-translate", tmp_path / "task")
                else:
                    write_demo_corpus(tmp_path / "stories.txt", stories=300)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert not list(tmp_path.rglob("*.tmp"))
    assert (tmp_path / "task" / "train.jsonl").read_text(encoding="utf-8").count("\n") > 10
