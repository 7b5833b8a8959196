"""Standard datasets: fetched from their canonical source once, checked against a published
checksum, and cached in the user's data folder. The demo corpora are written locally instead.

``STUDIO_DATASET_MIRROR`` (a base URL) replaces every canonical address with
``<mirror>/<mirror_path>``; the tests point it at a local HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from studio.core.control import RunControl
from studio.core.data.demo import DEMO_CORPORA, demo_corpus_path
from studio.core.errors import DataError, DownloadError
from studio.core.i18n import N_, _
from studio.core.paths import datasets_dir

ProgressFn = Callable[[str, int, int], None]
DEFAULT_MAX_BYTES = 256 << 20  # no built-in dataset file is larger; a server sending more is wrong


@dataclass(frozen=True)
class RemoteFile:
    name: str  # file name in the dataset folder
    url: str  # canonical source
    mirror_path: str  # path under STUDIO_DATASET_MIRROR
    sha256: str = ""
    git_blob_sha1: str = ""  # for files whose origin publishes only git's blob id
    size: int = 0  # the published size: a download is refused as soon as it would exceed it
    max_bytes: int = 0  # where no exact size is published, a ceiling (0: DEFAULT_MAX_BYTES)

    @property
    def limit(self) -> int:
        return self.size or self.max_bytes or DEFAULT_MAX_BYTES


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str  # title, description and license: English, marked with N_(); shown as _(spec.title)
    description: str
    license: str
    files: tuple[RemoteFile, ...]
    train: tuple[str, ...]  # file names (after extraction) for each split
    valid: tuple[str, ...] = ()
    test: tuple[str, ...] = ()
    format: Literal["text", "csv", "tsv", "jsonl"] = "text"
    json_field: str = "text"
    suggested_tokenizer: str = "char"
    extract: Callable[[Path], None] | None = None
    optional_files: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class DatasetFiles:
    """What a dataset resolves to on disk."""

    train: list[Path]
    valid: list[Path]
    test: list[Path]
    format: str
    json_field: str


def _extract_imdb(folder: Path) -> None:
    """aclImdb_v1.tar.gz -> train.jsonl / test.jsonl of {"text", "label"} (1 = positive), sorted by path."""
    archive = folder / "aclImdb_v1.tar.gz"
    rows: dict[str, list[tuple[str, str, int]]] = {"train": [], "test": []}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            # aclImdb/<split>/<pos|neg>/<id>_<rating>.txt ; never extract to disk, just read.
            if not member.isfile() or len(parts) != 4 or parts[1] not in rows or parts[2] not in ("pos", "neg"):
                continue
            data = tar.extractfile(member)
            if data is None:
                continue
            text = data.read().decode("utf-8", errors="replace")
            rows[parts[1]].append((member.name, text, 1 if parts[2] == "pos" else 0))
    for split, items in rows.items():
        if not items:
            raise DataError(_("the archive has no aclImdb/{split}/pos|neg reviews").format(split=split), archive)
        tmp = folder / f"{split}.jsonl.tmp"
        with tmp.open("w", encoding="utf-8") as f:
            for _name, text, label in sorted(items):
                f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
        tmp.replace(folder / f"{split}.jsonl")


_WIKITEXT = "https://raw.githubusercontent.com/pytorch/examples/77f55b912142e11fcfdf5b530231fb9c52f181e8/word_language_model/data/wikitext-2"

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="tinyshakespeare",
            title=N_("Tiny Shakespeare"),
            description=N_("1.1 MB of Shakespeare's plays; the classic character-level corpus (karpathy/char-rnn)."),
            license=N_("Public domain text"),
            files=(
                RemoteFile(
                    "input.txt",
                    "https://raw.githubusercontent.com/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/input.txt",
                    "tinyshakespeare/input.txt",
                    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
                    size=1_115_394,
                ),
            ),
            train=("input.txt",),
        ),
        DatasetSpec(
            name="wikitext-2",
            title=N_("WikiText-2"),
            description=N_("Wikipedia Good and Featured articles, already tokenized, rare words as <unk> (Merity et al. 2016)."),
            license="CC BY-SA",
            files=(
                RemoteFile("train.txt", f"{_WIKITEXT}/train.txt", "wikitext-2/train.txt", git_blob_sha1="2d84b35af79e411d73ea7cae83c73964c6ac83b4",
                           max_bytes=16 << 20),
                RemoteFile(
                    "valid.txt", f"{_WIKITEXT}/valid.txt", "wikitext-2/valid.txt",
                    sha256="f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8", size=1_121_681,
                ),
                RemoteFile(
                    "test.txt", f"{_WIKITEXT}/test.txt", "wikitext-2/test.txt",
                    sha256="d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0", size=1_256_449,
                ),
            ),
            train=("train.txt",),
            valid=("valid.txt",),
            test=("test.txt",),
            suggested_tokenizer="word",
        ),
        DatasetSpec(
            name="imdb",
            title=N_("IMDB movie reviews"),
            description=N_("50,000 labelled reviews (Maas et al. 2011); text for language modelling, labels for sentiment."),
            license=N_("Research use; cite Maas et al. 2011"),
            files=(
                RemoteFile(
                    "aclImdb_v1.tar.gz",
                    "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
                    "imdb/aclImdb_v1.tar.gz",
                    sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
                    size=84_125_825,
                ),
            ),
            train=("train.jsonl",),
            test=("test.jsonl",),
            format="jsonl",
            suggested_tokenizer="bpe",
            extract=_extract_imdb,
        ),
    )
}

# English, marked for translation: shown as _(title).
DEMO_TITLES = {"demo": N_("Demo stories (English, written by Studio)"), "demo-zh": N_("Demo stories (Chinese, written by Studio)")}


def dataset_names() -> list[str]:
    return [*DEMO_CORPORA, *DATASETS]


def dataset_folder(name: str) -> Path:
    return datasets_dir() / name


def is_available(name: str) -> bool:
    """True when the dataset can be used without a download."""
    if name in DEMO_CORPORA:
        return True
    spec = _spec(name)
    folder = dataset_folder(name)
    return all((folder / f).exists() for f in (*spec.train, *spec.valid, *spec.test))


def resolve_dataset(name: str, progress: ProgressFn | None = None, control: RunControl | None = None) -> DatasetFiles:
    """Local files for a built-in dataset, downloading and checking them first if needed."""
    if name in DEMO_CORPORA:
        return DatasetFiles([demo_corpus_path(name)], [], [], "text", "text")
    spec = _spec(name)
    folder = dataset_folder(name)
    if not is_available(name):
        download_dataset(spec, folder, progress, control)
    return DatasetFiles(
        [folder / f for f in spec.train],
        [folder / f for f in spec.valid],
        [folder / f for f in spec.test],
        spec.format,
        spec.json_field,
    )


def _spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        # Translators: {names} lists the built-in datasets' names, kept as is.
        raise DataError(_("unknown dataset {name} (built in: {names})").format(name=repr(name), names=", ".join(dataset_names()))) from None


def download_dataset(
    spec: DatasetSpec, folder: Path, progress: ProgressFn | None = None, control: RunControl | None = None
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for remote in spec.files:
        target = folder / remote.name
        if not target.exists():
            fetch(remote, target, progress, control)
    if spec.extract is not None:
        spec.extract(folder)


def url_for(remote: RemoteFile) -> str:
    mirror = os.environ.get("STUDIO_DATASET_MIRROR", "").rstrip("/")
    return f"{mirror}/{remote.mirror_path}" if mirror else remote.url


def fetch(remote: RemoteFile, target: Path, progress: ProgressFn | None = None, control: RunControl | None = None) -> Path:
    """Download to ``target`` through a .part file; only a file that matches its checksum is kept."""
    url = url_for(remote)
    part = target.with_name(target.name + ".part")
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(usedforsecurity=False)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, part.open("wb") as out:
            total = int(response.headers.get("Content-Length") or remote.size or 0)
            limit = remote.limit
            if total > limit:
                # Translators: {expected} is "N bytes" or "at most N bytes".
                message = _("{url} offers {total:,} bytes but {file} is {expected}; nothing was downloaded")
                raise DownloadError(message.format(url=url, total=total, file=remote.name, expected=_expected(remote)))
            if remote.git_blob_sha1:
                if not total:
                    raise DownloadError(_("{url} did not say its size, which the git checksum needs").format(url=url))
                blob.update(f"blob {total}\0".encode())
            done = 0
            while chunk := response.read(1 << 16):
                if done + len(chunk) > limit:
                    # A wrong or hostile server is cut off here, not after filling the disk.
                    message = _("{url} sent more than {expected} for {file}; the download was stopped and discarded")
                    raise DownloadError(message.format(url=url, expected=_expected(remote), file=remote.name))
                out.write(chunk)
                sha256.update(chunk)
                blob.update(chunk)
                done += len(chunk)
                if progress:
                    progress(f"download {remote.name}", done, total)
                if control is not None:
                    control.raise_if_stopped()
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    except urllib.error.HTTPError as e:
        part.unlink(missing_ok=True)
        # Translators: {code} and {reason} are the server's HTTP status (404 Not Found).
        raise DownloadError(_("could not download {url}: HTTP {code} {reason}").format(url=url, code=e.code, reason=e.reason)) from None
    except urllib.error.URLError as e:
        part.unlink(missing_ok=True)
        message = _("could not reach {url}: {reason}. Check the internet connection, or place the file at {target}")
        raise DownloadError(message.format(url=url, reason=e.reason, target=target)) from None
    except (OSError, TimeoutError) as e:
        part.unlink(missing_ok=True)
        raise DownloadError(_("download of {url} failed: {reason}").format(url=url, reason=e)) from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if remote.sha256 and sha256.hexdigest() != remote.sha256:
        part.unlink(missing_ok=True)
        raise DownloadError(
            _("{file} from {url} does not match its published checksum "
              "(sha256 {got}…, expected {expected}…); the download was discarded").format(
                file=remote.name, url=url, got=sha256.hexdigest()[:16], expected=remote.sha256[:16]
            )
        )
    if remote.git_blob_sha1 and blob.hexdigest() != remote.git_blob_sha1:
        part.unlink(missing_ok=True)
        raise DownloadError(
            _("{file} from {url} does not match its published git blob id "
              "({got}…, expected {expected}…); the download was discarded").format(
                file=remote.name, url=url, got=blob.hexdigest()[:16], expected=remote.git_blob_sha1[:16]
            )
        )
    part.replace(target)
    return target


def _expected(remote: RemoteFile) -> str:
    if remote.size:
        return _("{count:,} bytes").format(count=remote.size)
    return _("at most {count:,} bytes").format(count=remote.limit)


