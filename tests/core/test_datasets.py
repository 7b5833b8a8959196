"""Downloads exercised for real: an HTTP server on 127.0.0.1 serves the copies in ../shared/data."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.core.data import datasets
from studio.core.data.datasets import DatasetSpec, RemoteFile, download_dataset, fetch, resolve_dataset
from studio.core.errors import DownloadError


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path, shared_data: Path) -> Iterator[tuple[str, Path]]:
    """Serves a folder laid out like the mirror: <dataset>/<file>."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "tinyshakespeare").symlink_to(shared_data / "lm" / "tinyshakespeare")
    (root / "wikitext-2").symlink_to(shared_data / "lm" / "wikitext-2")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    httpd.handle_error = lambda request, address: None  # a client that cancels mid-download is expected here
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_tinyshakespeare_downloads_and_verifies(server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = server
    monkeypatch.setenv("STUDIO_DATASET_MIRROR", url)
    seen: list[tuple[str, int, int]] = []
    files = resolve_dataset("tinyshakespeare", progress=lambda s, d, t: seen.append((s, d, t)))
    path = files.train[0]
    assert path.read_bytes()[:14] == b"First Citizen:"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == datasets.DATASETS["tinyshakespeare"].files[0].sha256
    assert seen[-1] == ("download input.txt", 1_115_394, 1_115_394)
    # Cached: a second call needs no server at all.
    monkeypatch.setenv("STUDIO_DATASET_MIRROR", "http://127.0.0.1:9")
    assert resolve_dataset("tinyshakespeare").train == [path]


def test_wikitext_valid_and_test_verify_and_missing_train_is_a_clear_error(server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url, _ = server
    monkeypatch.setenv("STUDIO_DATASET_MIRROR", url)
    spec = datasets.DATASETS["wikitext-2"]
    by_name = {f.name: f for f in spec.files}
    for name in ("valid.txt", "test.txt"):
        fetch(by_name[name], tmp_path / name)
        assert (tmp_path / name).stat().st_size == by_name[name].size
    with pytest.raises(DownloadError, match=r"could not download .*/wikitext-2/train\.txt: HTTP 404"):
        resolve_dataset("wikitext-2")
    assert not list(datasets.dataset_folder("wikitext-2").glob("*.part"))


def test_git_blob_checksum(server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, shared_data: Path) -> None:
    url, _ = server
    monkeypatch.setenv("STUDIO_DATASET_MIRROR", url)
    # SOURCES.md gives the git blob id of valid.txt; verify a download against it.
    remote = RemoteFile("valid.txt", "unused", "wikitext-2/valid.txt", git_blob_sha1="eec944eb2d9e46061cd34a6913528797db6842fc")
    fetch(remote, tmp_path / "valid.txt")
    wrong = RemoteFile("valid.txt", "unused", "wikitext-2/valid.txt", git_blob_sha1="0" * 40)
    with pytest.raises(DownloadError, match="does not match its published git blob id"):
        fetch(wrong, tmp_path / "again.txt")
    assert not (tmp_path / "again.txt").exists()


def test_checksum_mismatch_discards_the_file(server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url, _ = server
    monkeypatch.setenv("STUDIO_DATASET_MIRROR", url)
    remote = RemoteFile("input.txt", "unused", "tinyshakespeare/input.txt", sha256="0" * 64)
    with pytest.raises(DownloadError, match="does not match its published checksum"):
        fetch(remote, tmp_path / "input.txt")
    assert not (tmp_path / "input.txt").exists() and not (tmp_path / "input.txt.part").exists()


def test_unreachable_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STUDIO_DATASET_MIRROR", "http://127.0.0.1:9")
    with pytest.raises(DownloadError, match="could not reach"):
        fetch(datasets.DATASETS["tinyshakespeare"].files[0], tmp_path / "x.txt")


def test_imdb_archive_is_extracted_to_jsonl(server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, shared_data: Path) -> None:
    """The real archive is 84 MB; build one in aclImdb's layout from the shared IMDB rows instead."""
    url, root = server
    rows = [json.loads(x) for x in (shared_data / "tasks" / "sentiment" / "train.jsonl").read_text().splitlines()[:40]]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for i, row in enumerate(rows):
            split = "train" if i < 30 else "test"
            label = "pos" if row["label"] else "neg"
            data = row["text"].encode()
            info = tarfile.TarInfo(f"aclImdb/{split}/{label}/{i}_7.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (root / "imdb").mkdir()
    (root / "imdb" / "aclImdb_v1.tar.gz").write_bytes(buffer.getvalue())
    real = datasets.DATASETS["imdb"]
    spec = DatasetSpec(
        **{**real.__dict__, "files": (RemoteFile("aclImdb_v1.tar.gz", real.files[0].url, "imdb/aclImdb_v1.tar.gz",
                                                   sha256=hashlib.sha256(buffer.getvalue()).hexdigest()),)}
    )
    monkeypatch.setenv("STUDIO_DATASET_MIRROR", url)
    monkeypatch.setitem(datasets.DATASETS, "imdb", spec)
    files = resolve_dataset("imdb")
    train = [json.loads(x) for x in files.train[0].read_text().splitlines()]
    test = [json.loads(x) for x in files.test[0].read_text().splitlines()]
    assert len(train) == 30 and len(test) == 10
    assert {r["label"] for r in train} <= {0, 1}
    assert sorted(r["text"] for r in train) == sorted(r["text"] for r in rows[:30])


def test_demo_corpus_is_written_locally() -> None:
    files = resolve_dataset("demo")
    assert files.train[0].read_text().startswith("One morning")
    assert "一天早上" in resolve_dataset("demo-zh").train[0].read_text()


def test_unknown_dataset() -> None:
    from studio.core.errors import DataError

    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        resolve_dataset("nope")


def test_download_dataset_is_cancellable(server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from studio.core.control import Cancelled, RunControl

    url, _ = server
    monkeypatch.setenv("STUDIO_DATASET_MIRROR", url)
    control = RunControl()
    control.request_stop()
    with pytest.raises(Cancelled):
        download_dataset(datasets.DATASETS["tinyshakespeare"], tmp_path / "ts", control=control)
    assert not list((tmp_path / "ts").iterdir())


class _EndlessHandler(http.server.BaseHTTPRequestHandler):
    """A wrong or hostile server: declares a huge length, or none, and sends bytes without end."""

    sent = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        if self.path.endswith("declared"):
            self.send_header("Content-Length", str(300 << 20))
        self.end_headers()
        chunk = b"x" * (1 << 16)
        try:
            while True:
                self.wfile.write(chunk)
                type(self).sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.mark.parametrize("path", ["declared", "undeclared"])
def test_a_download_larger_than_published_is_cut_off(path: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _EndlessHandler.sent = 0
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EndlessHandler)
    httpd.handle_error = lambda request, address: None
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("STUDIO_DATASET_MIRROR", f"http://127.0.0.1:{httpd.server_address[1]}")
        remote = RemoteFile("input.txt", "unused", f"x/{path}", sha256="0" * 64, size=1_115_394)
        with pytest.raises(DownloadError, match="1,115,394 bytes"):
            fetch(remote, tmp_path / "input.txt")
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert not (tmp_path / "input.txt").exists() and not (tmp_path / "input.txt.part").exists()
    # The client stopped reading at the published size: what the server got out is that plus
    # whatever the sockets buffer, nowhere near the 300 MB on offer.
    assert _EndlessHandler.sent < 40 << 20
