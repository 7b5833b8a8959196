"""The Try panel's decoding process (`studio decode-worker`), driven through its real client: it
writes what the engine writes in-process, reports what it cannot do, survives a cancel and is
replaced after it dies."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from studio.core.config import RunConfig
from studio.core.decoding.options import DecodingSettings
from studio.core.inference.decode_process import END_KINDS, DecodeClient, DecodeRequest
from studio.core.inference.loading import load_model
from studio.core.inference.runner import TaskRunner
from studio.core.training.trainer import Trainer

SEEDED = DecodingSettings("sample", 0.8, 0, 1.0, max_new_tokens=40, stop_at_eos=False, seed=3)


@pytest.fixture
def run(tiny_corpus: Path, tmp_path: Path) -> Path:
    config = RunConfig().with_overrides([
        "model.arch=gpt", "model.n_layers=1", "model.n_heads=2", "model.d_model=16", "model.context_length=32",
        f'data.paths=["{tiny_corpus}"]', "train.steps=4", "train.batch_size=4", "train.sample_tokens=0",
    ])
    return Trainer(config, out=tmp_path / "runs").fit().run_dir


def ask(client: DecodeClient, request: DecodeRequest, cancelled: threading.Event | None = None) -> list[dict[str, Any]]:
    replies: list[dict[str, Any]] = []
    client.decode(request, replies.append, cancelled or threading.Event())
    assert replies and replies[-1]["kind"] in END_KINDS
    return replies


def tokens_of(replies: list[dict[str, Any]]) -> list[list[Any]]:
    return [token for r in replies if r["kind"] == "tokens" for token in r["tokens"]]


def text_of(replies: list[dict[str, Any]]) -> str:
    return "".join(text for _id, text, _p in tokens_of(replies))


def test_it_writes_what_the_engine_writes_and_says_what_it_cannot_do(run: Path, tmp_path: Path) -> None:
    expected = "".join(t.text for t in TaskRunner(load_model(run)).stream("generate", SEEDED, text="Th"))
    client = DecodeClient()
    try:
        replies = ask(client, DecodeRequest(str(run), "generate", "Th", "", "", SEEDED))
        assert [r["kind"] for r in replies][:1] == ["started"] and replies[-1] == {"id": 1, "kind": "done", "count": 40}
        assert text_of(replies) == expected
        assert len(tokens_of(replies)) == 40 and all(0.0 <= p <= 1.0 for _id, _text, p in tokens_of(replies))
        assert len(replies[1]["tokens"]) == 1  # the first token at once; later ones in batches

        unsupported = ask(client, DecodeRequest(str(run), "classify", "a text", "", "", SEEDED))
        assert [r["kind"] for r in unsupported] == ["unsupported"] and "classif" in unsupported[0]["why"]

        missing = ask(client, DecodeRequest(str(tmp_path / "no-such-run"), "generate", "", "", "", SEEDED))
        assert [r["kind"] for r in missing] == ["failed"] and "Traceback" not in missing[0]["message"]

        client.forget()  # the model loads again, and answers the same
        assert text_of(ask(client, DecodeRequest(str(run), "generate", "Th", "", "", SEEDED))) == expected
    finally:
        client.close()
    assert client.process is None


def test_a_process_that_dies_is_reported_and_the_next_request_starts_another(run: Path) -> None:
    client = DecodeClient(env={**os.environ, "STUDIO_FAULT": "decode:token@2=kill"})
    try:
        died = ask(client, DecodeRequest(str(run), "generate", "Th", "", "", SEEDED))
        assert [r["kind"] for r in died][-1] == "failed"
        assert "The decoding process ended unexpectedly" in died[-1]["message"]
        assert len(tokens_of(died)) == 2
        client.env = None  # the next process has no fault point
        again = ask(client, DecodeRequest(str(run), "generate", "Th", "", "", SEEDED))
        assert again[-1]["kind"] == "done" and len(text_of(again)) > 0
    finally:
        client.close()


def test_cancel_ends_the_request_at_once_and_the_next_one_gets_only_its_own_tokens(run: Path) -> None:
    client = DecodeClient(env={**os.environ, "STUDIO_FAULT": "decode:token@2=stop"})
    request = DecodeRequest(str(run), "generate", "Th", "", "", SEEDED)
    try:
        replies: list[dict[str, Any]] = []
        cancelled = threading.Event()
        asking = threading.Thread(target=client.decode, args=(request, replies.append, cancelled))
        asking.start()
        give_up = time.monotonic() + 60
        while len(tokens_of(replies)) < 2 and time.monotonic() < give_up:
            time.sleep(0.02)
        cancelled.set()  # the process is frozen after its second token
        asking.join(10)
        assert not asking.is_alive()
        assert [r["kind"] for r in replies] == ["started", "tokens", "tokens", "cancelled"]
        assert client.process is not None
        os.kill(client.process.pid, signal.SIGCONT)
        expected = "".join(t.text for t in TaskRunner(load_model(run)).stream("generate", SEEDED, text="Th"))
        assert text_of(ask(client, request)) == expected  # none of the cancelled request's tokens
    finally:
        client.close()


def test_closing_while_the_process_still_imports_pytorch_is_quick() -> None:
    """The window closing right after a model was chosen: the child reads its input from the
    start, so it leaves at once instead of after its imports (the window used to wait 5 s)."""
    client = DecodeClient()
    client.start()
    process = client.process
    assert process is not None
    started = time.monotonic()
    client.close()
    assert time.monotonic() - started < 3.0
    assert process.poll() is not None and client.process is None
