"""Turn a data + tokenizer config into token arrays on disk, once.

``prepare_corpus`` resolves the sources (files or a built-in dataset), scans them, trains the
tokenizer on the training split, and encodes every split into a flat binary file of token ids that
training reads through ``numpy.memmap``. The result lives in the user cache folder under a key
made from the corpus bytes, the split settings and the tokenizer settings, so:

- the second run with the same data starts at once (a cache hit skips everything above);
- a corpus larger than RAM is streamed through in flat memory and trained on from disk.

Memory is bounded by one batch of records: records are at most ``corpus.PIECE_CHARS`` long (a
longer line arrives in pieces), a batch is encoded and written out every ``FLUSH_RECORDS``
records or ``FLUSH_CHARS`` characters, whichever comes first, one record's ids at a time, and
tokenizers get texts of at most ``TOKENIZER_TEXT_CHARS``.

Speed: plain-text files in UTF-8 (and a few single-byte codecs) are read in blocks of whole lines
(``corpus.Lines``, ``READ_IN_BLOCKS``) instead of a line at a time. The character tokenizer counts
and encodes a block with one numpy pass; the others still get its lines one by one (BPE in one
``encode_batch`` call per batch, which the tokenizers library runs on several threads). Either way
the cache holds the same bytes as when every line is its own record (tests/core/test_token_cache.py
compares the two), statistics included.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from filelock import FileLock, Timeout

from studio.core.config import DataConfig, TokenizerConfig
from studio.core.control import RunControl
from studio.core.data.corpus import Corpus, Lines, Record, scan_corpus, split_lines, split_text
from studio.core.data.datasets import is_available, resolve_dataset
from studio.core.data.special_tokens import EOS_ID, UNK_ID
from studio.core.data.splits import SPLITS, Splitter
from studio.core.data.tokenizers import Tokenizer, load_tokenizer, train_tokenizer
from studio.core.errors import DataError, StudioError
from studio.core.fileio import atomic_write_text
from studio.core.i18n import N_, _
from studio.core.paths import token_cache_dir

# 2: tail splits by characters (cutting long lines), CSV parsed strictly, legacy encodings by charset-normalizer.
# 3: UTF-8 bytes per split (for bits per byte).
CACHE_FORMAT_VERSION = 3
MAX_TRACKED_LENGTH = 4096  # longer records land in one overflow bin of the histogram
FLUSH_RECORDS = 2000  # encode in batches: per-call overhead dominates short lines (spaCy, HF)
# ... but never hold more text than this at once: BPE's encodings cost about 20 bytes a character
# (8 MiB of text measured +170 MB, 2 MiB +35 MB).
FLUSH_CHARS = 2 << 20
# Tokenizers see texts of at most this many characters, cut like pieces (so tokens are unchanged):
# Hugging Face needs about 200 MB to encode one MiB-long text, and its BPE trainer takes 1000
# texts at a time, which must not mean 1000 pieces of a MiB.
TOKENIZER_TEXT_CHARS = 16 << 10
READ_IN_BLOCKS = True  # False: every line is its own record (the reference the block path must equal)
ProgressFn = Callable[[str, int, int], None]


@dataclass
class SplitStats:
    characters: int = 0
    bytes: int = 0  # of the text in UTF-8
    records: int = 0  # lines of plain text, rows of CSV/JSONL
    tokens: int = 0
    unknown: int = 0
    length_counts: list[int] = field(default_factory=list)  # records per token length 0..MAX
    overflow: int = 0

    @property
    def unknown_rate(self) -> float:
        return self.unknown / self.tokens if self.tokens else 0.0

    def histogram(self, bins: int = 30) -> tuple[np.ndarray, np.ndarray]:
        """(bin edges, counts) of tokens per line or row, for plotting."""
        counts = np.asarray(self.length_counts, dtype=np.int64)
        if counts.sum() == 0:
            return np.array([0.0, 1.0]), np.array([0])
        lengths = np.arange(len(counts))
        top = max(1, int(lengths[counts > 0].max()))
        edges = np.linspace(0, top + 1, bins + 1)
        hist, _ = np.histogram(lengths, bins=edges, weights=counts)
        return edges, hist.astype(np.int64)


@dataclass
class CorpusStats:
    vocab_size: int
    tokenizer: str
    files: list[dict[str, Any]]
    splits: dict[str, SplitStats]

    def to_json(self) -> dict[str, Any]:
        return {
            "vocab_size": self.vocab_size,
            "tokenizer": self.tokenizer,
            "files": self.files,
            "splits": {k: vars(v) for k, v in self.splits.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CorpusStats:
        return cls(
            data["vocab_size"], data["tokenizer"], data["files"], {k: SplitStats(**v) for k, v in data["splits"].items()}
        )

    @property
    def total(self) -> SplitStats:
        out = SplitStats()
        for s in self.splits.values():
            out.characters += s.characters
            out.bytes += s.bytes
            out.records += s.records
            out.tokens += s.tokens
            out.unknown += s.unknown
            out.overflow += s.overflow
            if len(s.length_counts) > len(out.length_counts):
                out.length_counts.extend([0] * (len(s.length_counts) - len(out.length_counts)))
            for i, c in enumerate(s.length_counts):
                out.length_counts[i] += c
        return out


@dataclass
class PreparedCorpus:
    tokenizer: Tokenizer
    stats: CorpusStats
    directory: Path
    cache_hit: bool
    seconds: float
    _arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def tokens(self, split: str) -> np.ndarray:
        """The split's token ids as a read-only memmap (empty array for an empty split)."""
        if split not in self._arrays:
            meta = json.loads((self.directory / "meta.json").read_text())
            dtype = np.dtype(meta["dtype"])
            path = self.directory / f"{split}.bin"
            n = path.stat().st_size // dtype.itemsize if path.exists() else 0
            self._arrays[split] = np.memmap(path, dtype=dtype, mode="r", shape=(n,)) if n else np.zeros(0, dtype=dtype)
        return self._arrays[split]

# ---- sources ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sources:
    train: list[Path]
    valid: list[Path]
    test: list[Path]
    format: str
    json_field: str


def resolve_sources(data: DataConfig, progress: ProgressFn | None = None, control: RunControl | None = None) -> Sources:
    if data.paths:
        return Sources([Path(p) for p in data.paths], [Path(p) for p in data.valid_paths], [Path(p) for p in data.test_paths], data.format, data.json_field)
    files = resolve_dataset(data.dataset, progress, control)
    return Sources(
        files.train,
        [Path(p) for p in data.valid_paths] or files.valid,
        [Path(p) for p in data.test_paths] or files.test,
        files.format if data.format == "auto" else data.format,
        data.json_field if data.json_field != "text" else files.json_field,
    )


# ---- the cache -----------------------------------------------------------------------------


def cached_corpus(data: DataConfig, tokenizer_config: TokenizerConfig, cache_root: Path | None = None) -> PreparedCorpus | None:
    """The token cache these settings were built into before, if it is still there: no scan, no
    download, no build (a few file stats). The window uses it after a relaunch, so the Model page
    counts parameters with the real vocabulary instead of a guess."""
    if not data.paths and not is_available(data.dataset):
        return None
    try:
        sources = resolve_sources(data)
    except (StudioError, OSError):
        return None
    root = Path(cache_root) if cache_root else token_cache_dir()
    pointer = root / "quick" / _quick_key(sources, data, tokenizer_config, None)
    try:
        hit = root / pointer.read_text().strip()
        return _load(hit, time.perf_counter()) if (hit / "meta.json").exists() else None
    except (OSError, ValueError, KeyError, StudioError):
        return None



def prepare_corpus(
    data: DataConfig,
    tokenizer_config: TokenizerConfig,
    *,
    progress: ProgressFn | None = None,
    control: RunControl | None = None,
    cache_root: Path | None = None,
    tokenizer: Tokenizer | None = None,
) -> PreparedCorpus:
    """Scan, tokenize and cache a corpus; return its token arrays, tokenizer and statistics.

    ``tokenizer``: encode with this (for example a checkpoint's) instead of training a new one.
    """
    started = time.perf_counter()
    progress = progress or (lambda stage, done, total: None)
    cache_root = Path(cache_root) if cache_root else token_cache_dir()
    sources = resolve_sources(data, progress, control)
    scan_args = dict(
        format=sources.format, column=data.column, json_field=sources.json_field, encoding=data.encoding,
        skip_bad_rows=data.skip_bad_rows, control=control,
    )

    # A given tokenizer (a checkpoint's) usually equals the one trained for this corpus, whose
    # cache then serves as is; only a different vocabulary needs its own encoding.
    candidates = [None, tokenizer] if tokenizer is not None else [None]
    for candidate in candidates:
        pointer = cache_root / "quick" / _quick_key(sources, data, tokenizer_config, candidate)
        if pointer.exists():
            hit = cache_root / pointer.read_text().strip()
            if (hit / "meta.json").exists():
                loaded = _load(hit, started)
                if tokenizer is None or loaded.tokenizer.fingerprint() == tokenizer.fingerprint():
                    return loaded

    corpora = {"train": scan_corpus(sources.train, progress=progress, **scan_args)}  # type: ignore[arg-type]
    if sources.valid:
        corpora["valid"] = scan_corpus(sources.valid, progress=progress, **scan_args)  # type: ignore[arg-type]
    if sources.test:
        corpora["test"] = scan_corpus(sources.test, progress=progress, **scan_args)  # type: ignore[arg-type]

    key = _content_key(corpora, data, tokenizer_config, None)
    if tokenizer is not None:
        own = cache_root / key
        if not ((own / "meta.json").exists() and load_tokenizer(own / "tokenizer").fingerprint() == tokenizer.fingerprint()):
            key = _content_key(corpora, data, tokenizer_config, tokenizer)
    final = cache_root / key
    built = not (final / "meta.json").exists()  # else the same bytes were encoded before (a copied or touched file)
    if built:
        _build(final, corpora, data, tokenizer_config, tokenizer, progress, control)
    pointer = cache_root / "quick" / _quick_key(sources, data, tokenizer_config, tokenizer)
    pointer.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(pointer, key, durable=False)  # a cut pointer would name no cache: rebuilt, but slowly
    return _load(final, started, cache_hit=not built)


def _quick_key(sources: Sources, data: DataConfig, tok: TokenizerConfig, tokenizer: Tokenizer | None) -> str:
    """A key from file names, sizes and modification times: lets a repeat run skip even the scan."""
    h = hashlib.sha256(f"v{CACHE_FORMAT_VERSION}".encode())
    for split, paths in (("train", sources.train), ("valid", sources.valid), ("test", sources.test)):
        for p in paths:
            p = Path(p).expanduser()
            entries = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
            for q in entries:
                try:
                    st = q.stat()
                except OSError:
                    continue
                h.update(f"{split}|{q.resolve()}|{st.st_size}|{st.st_mtime_ns}|".encode())
    h.update(json.dumps([sources.format, sources.json_field, data.to_dict(), tok.to_dict()], sort_keys=True).encode())
    if tokenizer is not None:
        h.update(tokenizer.fingerprint().encode())
    return h.hexdigest()[:32]


def _content_key(corpora: dict[str, Corpus], data: DataConfig, tok: TokenizerConfig, tokenizer: Tokenizer | None) -> str:
    h = hashlib.sha256(f"v{CACHE_FORMAT_VERSION}".encode())
    for split, corpus in corpora.items():
        h.update(f"{split}:{corpus.fingerprint()}|".encode())
    split_settings = {k: data.to_dict()[k] for k in ("valid_fraction", "test_fraction", "split_mode", "split_seed")}
    h.update(json.dumps([split_settings, tok.to_dict()], sort_keys=True).encode())
    if tokenizer is not None:
        h.update(tokenizer.fingerprint().encode())
    return h.hexdigest()[:32]


def _load(directory: Path, started: float, cache_hit: bool = True) -> PreparedCorpus:
    meta = json.loads((directory / "meta.json").read_text())
    return PreparedCorpus(
        tokenizer=load_tokenizer(directory / "tokenizer"),
        stats=CorpusStats.from_json(meta["stats"]),
        directory=directory,
        cache_hit=cache_hit,
        seconds=time.perf_counter() - started,
    )


def _splitter(corpora: dict[str, Corpus], data: DataConfig) -> Splitter:
    given = set(corpora) - {"train"}
    return Splitter(
        corpora["train"],
        0.0 if "valid" in given else data.valid_fraction,
        0.0 if "test" in given else data.test_fraction,
        data.split_mode,
        data.split_seed,
    )


def _routed_records(corpora: dict[str, Corpus], splitter: Splitter) -> Iterator[tuple[str, Record]]:
    """Every record of every corpus with the split it belongs to (a record straddling a cut in
    parts); runs of whole lines come as ``Lines`` blocks when ``READ_IN_BLOCKS``."""
    for record in corpora["train"].records(READ_IN_BLOCKS):
        yield from splitter.route(record)
    for split in ("valid", "test"):
        if split in corpora:
            for record in corpora[split].records(READ_IN_BLOCKS):
                yield split, record


@dataclass
class _Progress:
    """Progress through the corpora: characters of plain text plus one per CSV/JSONL row, so a
    file of one huge line still moves the bar."""

    total: int
    row_files: set[Path]

    @classmethod
    def of(cls, corpora: dict[str, Corpus]) -> _Progress:
        files = [f for c in corpora.values() for f in c.files]
        total = sum(f.chars if f.format == "text" else f.units for f in files)
        return cls(total, {f.path for f in files if f.format != "text"})

    def step(self, record: Record) -> int:
        if record.path in self.row_files:
            return int(record.last)
        return len(record.text)


def _tokenizer_texts(text: str) -> list[str]:
    if len(text) <= TOKENIZER_TEXT_CHARS:
        return [text]
    return [piece for piece, _first, _last in split_text(text, TOKENIZER_TEXT_CHARS)]


def _encode(tokenizer: Tokenizer, texts: list[str]) -> list[np.ndarray]:
    """Token ids per text as int64 arrays; the character tokenizer makes them without Python ints."""
    encode_array = getattr(tokenizer, "encode_array", None)
    if callable(encode_array):
        return [np.asarray(encode_array(t), dtype=np.int64) for t in texts]
    parts = [_tokenizer_texts(t) for t in texts]
    ids = iter(tokenizer.encode_batch([p for group in parts for p in group]))
    out = []
    for group in parts:
        arrays = [np.asarray(next(ids), dtype=np.int64) for _ in group]
        out.append(arrays[0] if len(arrays) == 1 else np.concatenate(arrays))
    return out


def _encode_flat(tokenizer: Tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The ids of all ``texts`` one after the other (int64), and how many each text has."""
    parts = [_tokenizer_texts(t) for t in texts]
    flat_texts = texts if all(len(group) == 1 for group in parts) else [p for group in parts for p in group]
    # A line that comes again (a blank line, a speaker's name, a closing brace) is encoded once: a
    # text's ids do not depend on its neighbours.
    unique = list(dict.fromkeys(flat_texts))
    encoded: list[list[int]] = []
    for i in range(0, len(unique), FLUSH_RECORDS):  # the library's encodings of one batch at a time
        encoded.extend(tokenizer.encode_batch(unique[i : i + FLUSH_RECORDS]))
    if len(unique) == len(flat_texts):
        lists = encoded
    else:
        by_text = dict(zip(unique, encoded, strict=True))
        lists = [by_text[t] for t in flat_texts]
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    ids = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64, count=int(lengths.sum()))
    if flat_texts is not texts:
        starts = np.cumsum([0] + [len(group) for group in parts[:-1]])
        lengths = np.add.reduceat(lengths, starts) if len(lengths) else lengths
    return ids, lengths


def _encoded(tokenizer: Tokenizer, records: list[Record], dtype: np.dtype) -> Iterator[tuple[Record, np.ndarray, np.ndarray | None]]:
    """(record, ids, tokens per line) for each record in order; tokens per line only for ``Lines``."""
    plain: list[Record] = []

    def plain_ones() -> Iterator[tuple[Record, np.ndarray, None]]:
        if not plain:
            return
        for record, ids in zip(plain, _encode(tokenizer, [r.text for r in plain]), strict=True):
            yield record, ids, None
        plain.clear()

    encode_lines = getattr(tokenizer, "encode_lines", None)
    for record in records:
        if not isinstance(record, Lines):
            plain.append(record)  # encoded together, in one batch
            continue
        yield from plain_ones()
        if callable(encode_lines):
            ids, lengths = encode_lines(record.text, dtype)
        else:
            ids, lengths = _encode_flat(tokenizer, split_lines(record.text))
        yield record, ids, lengths
    yield from plain_ones()


def _utf8_bytes(text: str) -> int:
    if text.isascii():  # (a flag of the string: no scan)
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))  # JSON can hold lone surrogates


def _build(
    final: Path,
    corpora: dict[str, Corpus],
    data: DataConfig,
    tok_config: TokenizerConfig,
    tokenizer: Tokenizer | None,
    progress: ProgressFn,
    control: RunControl | None,
) -> None:
    counter = _Progress.of(corpora)
    total_units = counter.total
    splitter = _splitter(corpora, data)
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_build_leftovers(final.parent)
    # The lock comes first, then the folder: a folder whose lock is free belongs to nobody.
    name = f".build-{secrets.token_hex(6)}"
    lock = FileLock(final.parent / f"{name}.lock", timeout=0, thread_local=False)
    lock.acquire()
    work = final.parent / name
    work.mkdir()
    try:
        if tokenizer is None:
            texts = _train_texts(corpora, splitter, counter, progress, control, whole_blocks=tok_config.kind == "char",
                                 lowercase=tok_config.lowercase)
            tokenizer = train_tokenizer(tok_config, texts)
        tokenizer.save(work / "tokenizer")
        dtype = np.dtype(np.uint16 if tokenizer.vocab_size <= np.iinfo(np.uint16).max else np.uint32)
        stats: dict[str, SplitStats] = {s: SplitStats(length_counts=[0] * (MAX_TRACKED_LENGTH + 1)) for s in SPLITS}
        outs: dict[str, BinaryIO] = {s: (work / f"{s}.bin").open("wb") for s in SPLITS}
        last_doc: dict[str, tuple[Path, int] | None] = {s: None for s in SPLITS}
        last_id: dict[str, int] = {s: -1 for s in SPLITS}
        pending: dict[str, list[Record]] = {s: [] for s in SPLITS}
        pending_chars: dict[str, int] = {s: 0 for s in SPLITS}
        line_tokens: dict[str, int] = {s: 0 for s in SPLITS}  # tokens so far of a line arriving in pieces
        open_line: dict[str, bool] = {s: False for s in SPLITS}
        eos = np.array([EOS_ID], dtype=dtype).tobytes()
        done = 0

        def count_line(st: SplitStats, n: int) -> None:
            st.records += 1
            if n > MAX_TRACKED_LENGTH:
                st.overflow += 1
            else:
                st.length_counts[n] += 1

        def count_lines(st: SplitStats, lengths: np.ndarray) -> None:
            st.records += len(lengths)
            counts = np.bincount(np.minimum(lengths, MAX_TRACKED_LENGTH + 1), minlength=MAX_TRACKED_LENGTH + 2)
            st.overflow += int(counts[-1])
            for n in np.flatnonzero(counts[:-1]):
                st.length_counts[n] += int(counts[n])

        def flush(split: str) -> None:
            records = pending[split]
            if not records:
                return
            st = stats[split]
            out = outs[split]
            for record, ids, lengths in _encoded(tokenizer, records, dtype):
                doc = (record.path, record.doc)
                if last_doc[split] is not None and doc != last_doc[split] and last_id[split] != EOS_ID:
                    out.write(eos)  # close the previous document
                    last_id[split] = EOS_ID
                    st.tokens += 1
                last_doc[split] = doc
                if len(ids):
                    out.write(ids.astype(dtype, copy=False).tobytes())
                    last_id[split] = int(ids[-1])
                    st.unknown += int(np.count_nonzero(ids == UNK_ID))
                n = len(ids)
                st.tokens += n
                st.characters += len(record.text)
                st.bytes += _utf8_bytes(record.text)
                if lengths is not None:  # whole lines, as that many records would count them
                    count_lines(st, lengths)
                    line_tokens[split] = int(lengths[-1])
                    open_line[split] = False
                    continue
                # Lines and rows are counted once, where their last piece lands.
                if record.first:
                    line_tokens[split] = 0
                line_tokens[split] += n
                open_line[split] = not record.last
                if record.last:
                    count_line(st, line_tokens[split])
            pending[split] = []
            pending_chars[split] = 0

        for split, record in _routed_records(corpora, splitter):
            # Checked at every record, not only at a flush: a record is up to a MiB of text, so a
            # small file is a handful of records and a Cancel could otherwise go unseen to the end.
            if control is not None:
                control.raise_if_stopped()
            pending[split].append(record)
            pending_chars[split] += len(record.text)
            done += counter.step(record)
            if len(pending[split]) >= FLUSH_RECORDS or pending_chars[split] >= FLUSH_CHARS or len(record.text) > 100_000:
                flush(split)
                progress("encode", min(done, total_units), total_units)
        for split in SPLITS:
            flush(split)
            if open_line[split]:  # the split ends inside a line that the next split continues
                count_line(stats[split], line_tokens[split])
            if last_doc[split] is not None and last_id[split] != EOS_ID:
                outs[split].write(eos)
                stats[split].tokens += 1
            outs[split].close()
        progress("encode", total_units, total_units)

        expected = ["train"] + [s for s in ("valid", "test") if s not in corpora and _fraction(data, s) > 0]
        for split in expected:
            if stats[split].records == 0:
                why = splitter.why_empty(split)  # type: ignore[arg-type]
                raise DataError(_(_EMPTY_SPLIT[split]).format(why=why))
        if stats["train"].tokens == 0:
            raise DataError(
                # Translators: {tokenizer} describes the tokenizer ("char tokenizer, 80 entries"); tokenizer.kind is a setting.
                _("the training split is empty: its text makes no tokens with this tokenizer "
                  "({tokenizer}); use more text or another tokenizer.kind").format(tokenizer=tokenizer.describe())
            )
        for st in stats.values():  # trim the histogram to the longest record seen
            while len(st.length_counts) > 1 and st.length_counts[-1] == 0:
                st.length_counts.pop()
        files = [
            {
                "split": split,
                "path": str(f.path),
                "format": f.format,
                "encoding": f.encoding.label,
                "encoding_reason": f.encoding.reason,
                "bytes": f.size,
                "units": f.units,
                "skipped_rows": f.skipped_rows,
            }
            for split, c in corpora.items()
            for f in c.files
        ]
        corpus_stats = CorpusStats(tokenizer.vocab_size, tokenizer.describe(), files, stats)
        meta = {"format_version": CACHE_FORMAT_VERSION, "dtype": dtype.name, "stats": corpus_stats.to_json()}
        (work / "meta.json").write_text(json.dumps(meta, ensure_ascii=False))
        if control is not None:  # a Cancel that came during the last flush still cancels
            control.raise_if_stopped()
        if final.exists() and not (final / "meta.json").exists():  # an incomplete leftover from a crash
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.replace(work, final)
        except OSError:
            if not (final / "meta.json").exists():
                raise
            shutil.rmtree(work, ignore_errors=True)  # another process built the same cache first
    except BaseException:
        for f in locals().get("outs", {}).values():
            f.close()
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        lock.release()
        Path(lock.lock_file).unlink(missing_ok=True)


def sweep_build_leftovers(cache_root: Path) -> list[str]:
    """Remove the ``.build-*`` folders of builds that were killed (their lock is free). A build
    that is running holds its lock, so another process's work in progress is never touched."""
    removed = []
    for folder in sorted(Path(cache_root).glob(".build-*")):
        if not folder.is_dir():
            continue
        lock_path = folder.with_name(folder.name + ".lock")
        probe = FileLock(lock_path, timeout=0, thread_local=False)
        try:
            probe.acquire()
        except Timeout:
            continue  # a live build
        try:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
        finally:
            probe.release()
            lock_path.unlink(missing_ok=True)
    return removed


def _train_texts(
    corpora: dict[str, Corpus], splitter: Splitter, counter: _Progress, progress: ProgressFn, control: RunControl | None,
    whole_blocks: bool = False, lowercase: bool = False,
) -> Iterator[str]:
    """The training split's text as the tokenizer trains on it: each line or row, cut into texts of
    at most TOKENIZER_TEXT_CHARS. ``whole_blocks`` (the character tokenizer, which only counts
    characters): a block of lines as one text instead, unless lowercasing a line that would be cut
    (a final sigma lowercases by what follows it)."""
    done = 0
    n = 0
    for split, record in _routed_records(corpora, splitter):
        n += 1
        done += counter.step(record)
        if control is not None:  # every record (see _build): cheap, and a record can be a MiB
            control.raise_if_stopped()
        if n % 5000 == 0 or len(record.text) > 100_000:
            progress("tokenizer", min(done, counter.total), counter.total)
        if split != "train":
            continue
        if not isinstance(record, Lines):
            yield from _tokenizer_texts(record.text)
        elif whole_blocks and not (lowercase and max(map(len, record.text.split("\n"))) > TOKENIZER_TEXT_CHARS):
            yield record.text
        else:
            for line in split_lines(record.text):
                yield from _tokenizer_texts(line)
    progress("tokenizer", counter.total, counter.total)


# Translators: {why} says how much text there is and what to change.
_EMPTY_SPLIT = {"train": N_("the training split is empty: {why}"), "valid": N_("the validation split is empty: {why}"),
                "test": N_("the test split is empty: {why}")}


def _fraction(data: DataConfig, split: str) -> float:
    return data.valid_fraction if split == "valid" else data.test_fraction
