"""Reading corpora: plain text, CSV/TSV with a chosen column, JSONL with a chosen field.

A corpus is read in two steps:

1. :func:`scan_corpus` checks every file once (encoding, decodability, every CSV/JSONL row),
   counts lines and rows, and hashes the bytes. Every problem is a ``DataError`` naming the file
   and line. Nothing is held in memory, so a corpus larger than RAM scans in flat memory.
2. :meth:`Corpus.records` streams the text back, one line (plain text) or one row (CSV/JSONL) at a
   time, each tagged with its file, line and document number for splitting and error messages.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from studio.core.control import RunControl
from studio.core.data.encoding import EncodingReport, detect_encoding
from studio.core.errors import DataError

Format = Literal["text", "csv", "tsv", "jsonl"]
ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)

TEXT_SUFFIXES = {".txt", ".text", ".md", ".raw", ".tokens", ""}
SUFFIX_FORMATS: dict[str, Format] = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True)
class Record:
    text: str
    path: Path
    line: int  # 1-based line where this line or row starts
    doc: int  # document number within its corpus: the file (plain text) or the row (CSV/JSONL)


@dataclass(frozen=True)
class SourceFile:
    path: Path
    format: Format
    encoding: EncodingReport
    size: int
    units: int  # non-blank lines for plain text, rows for CSV/JSONL
    lines: int  # physical lines
    sha256: str
    skipped_rows: int = 0


@dataclass(frozen=True)
class Corpus:
    files: tuple[SourceFile, ...]
    column: str
    json_field: str
    skip_bad_rows: bool

    @property
    def row_based(self) -> bool:
        return any(f.format != "text" for f in self.files)

    @property
    def num_documents(self) -> int:
        return sum(f.units if f.format != "text" else 1 for f in self.files)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for f in self.files:
            h.update(f"{f.format}|{f.encoding.codec}|{f.sha256}|".encode())
        h.update(f"{self.column}|{self.json_field}|{self.skip_bad_rows}".encode())
        return h.hexdigest()

    def records(self) -> Iterator[Record]:
        doc = 0
        for f in self.files:
            if f.format == "text":
                for line_no, text in _text_lines(f.path, f.encoding):
                    yield Record(text, f.path, line_no, doc)
                doc += 1
            else:
                for line_no, text in _rows(f, self.column, self.json_field, self.skip_bad_rows):
                    yield Record(text, f.path, line_no, doc)
                    doc += 1


def expand_paths(paths: list[str] | list[Path]) -> list[Path]:
    """Files as given, and folders expanded (recursively, sorted) to the text-like files inside."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            found = sorted(
                q
                for q in p.rglob("*")
                if q.is_file()
                and not any(part.startswith(".") for part in q.relative_to(p).parts)
                and (q.suffix.lower() in TEXT_SUFFIXES or q.suffix.lower() in SUFFIX_FORMATS)
            )
            if not found:
                raise DataError("the folder holds no text, CSV, TSV or JSONL files", p)
            out.extend(found)
        elif p.is_file():
            out.append(p)
        elif p.exists():
            raise DataError("is not a regular file or folder", p)
        else:
            raise DataError("does not exist", p)
    return out


def format_of(path: Path, declared: str) -> Format:
    if declared != "auto":
        return declared  # type: ignore[return-value]
    return SUFFIX_FORMATS.get(path.suffix.lower(), "text")


def scan_corpus(
    paths: list[str] | list[Path],
    *,
    format: str = "auto",
    column: str = "text",
    json_field: str = "text",
    encoding: str = "auto",
    skip_bad_rows: bool = False,
    progress: ProgressFn | None = None,
    control: RunControl | None = None,
) -> Corpus:
    files = expand_paths(paths)
    if not files:
        raise DataError("no corpus files were given")
    total = sum(p.stat().st_size for p in files)
    done = 0
    scanned = []
    for path in files:
        if control is not None:
            control.raise_if_stopped()
        fmt = format_of(path, format)
        report = detect_encoding(path, encoding)
        size = path.stat().st_size
        sha, units, lines, skipped = _check_file(path, fmt, report, column, json_field, skip_bad_rows, control)
        if units == 0:
            raise DataError("holds no text" if fmt == "text" else "holds no rows", path)
        scanned.append(SourceFile(path, fmt, report, size, units, lines, sha, skipped))
        done += size
        if progress:
            progress("scan", done, total)
    return Corpus(tuple(scanned), column, json_field, skip_bad_rows)


# ---- checking ------------------------------------------------------------------------------


def _check_file(
    path: Path,
    fmt: Format,
    report: EncodingReport,
    column: str,
    json_field: str,
    skip_bad_rows: bool,
    control: RunControl | None,
) -> tuple[str, int, int, int]:
    """Decode every line (naming the first that fails), count units and hash the bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    lines = 0
    nonempty = 0
    if report.line_safe:
        with path.open("rb") as f:
            for lines, raw in enumerate(f, start=1):
                try:
                    text = raw.decode(report.codec)
                except UnicodeDecodeError as e:
                    raise DataError(
                        f"bytes {raw[e.start:e.start + 4]!r} cannot be decoded as {report.label} "
                        f"(column {e.start + 1}); set data.encoding to the file's real encoding",
                        path,
                        lines,
                    ) from None
                if text.strip():
                    nonempty += 1
                if control is not None and lines % 100_000 == 0:
                    control.raise_if_stopped()
    else:
        try:
            with path.open("r", encoding=report.codec, newline=None) as f:
                for text in f:
                    lines += 1
                    if text.strip():
                        nonempty += 1
        except UnicodeDecodeError as e:
            raise DataError(f"cannot be decoded as {report.label} ({e.reason})", path) from None
    if fmt == "text":
        return h.hexdigest(), nonempty, lines, 0
    rows = 0
    skipped = 0
    for _line, _text in _rows_checked(path, fmt, report, column, json_field, skip_bad_rows):
        if _text is None:
            skipped += 1
        else:
            rows += 1
    return h.hexdigest(), rows, lines, skipped


def _text_lines(path: Path, report: EncodingReport) -> Iterator[tuple[int, str]]:
    """Lines with their newline normalised to "\\n"; blank lines are kept (they are text too)."""
    if report.line_safe:
        with path.open("rb") as f:
            for n, raw in enumerate(f, start=1):
                text = raw.decode(report.codec)
                if n == 1 and text.startswith("\ufeff"):
                    text = text[1:]
                if text.endswith("\r\n"):
                    text = text[:-2] + "\n"
                yield n, text
    else:
        with path.open("r", encoding=report.codec, newline=None) as f:
            for n, text in enumerate(f, start=1):
                yield n, text.lstrip("\ufeff") if n == 1 else text


def _rows(f: SourceFile, column: str, json_field: str, skip_bad_rows: bool) -> Iterator[tuple[int, str]]:
    for line, text in _rows_checked(f.path, f.format, f.encoding, column, json_field, skip_bad_rows):
        if text is not None:
            yield line, text


def _rows_checked(
    path: Path, fmt: Format, report: EncodingReport, column: str, json_field: str, skip_bad_rows: bool
) -> Iterator[tuple[int, str | None]]:
    """Yield (line, text) per row; (line, None) for a bad row that is being skipped."""
    if fmt == "jsonl":
        yield from _jsonl_rows(path, report, json_field, skip_bad_rows)
    else:
        yield from _csv_rows(path, report, "," if fmt == "csv" else "\t", column, skip_bad_rows)


def _jsonl_rows(path: Path, report: EncodingReport, field: str, skip: bool) -> Iterator[tuple[int, str | None]]:
    for n, line in _text_lines(path, report):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            if n == 1 and line.lstrip().startswith("["):
                raise DataError("is a JSON array, not JSON Lines (one object per line)", path, n) from None
            if skip:
                yield n, None
                continue
            raise DataError(f"not valid JSON: {e.msg} (column {e.colno})", path, n) from None
        if not isinstance(obj, dict):
            if skip:
                yield n, None
                continue
            raise DataError(f"expected a JSON object, found {type(obj).__name__}", path, n)
        if field not in obj:
            if skip:
                yield n, None
                continue
            fields = ", ".join(list(obj)[:12]) or "none"
            raise DataError(f"no field {field!r} (this row has: {fields}); set data.json_field", path, n)
        value = obj[field]
        if not isinstance(value, str):
            if skip:
                yield n, None
                continue
            raise DataError(f"field {field!r} holds {type(value).__name__}, not text", path, n)
        yield n, value


def _csv_rows(path: Path, report: EncodingReport, delimiter: str, column: str, skip: bool) -> Iterator[tuple[int, str | None]]:
    with path.open("rb") as raw:
        stream = io.TextIOWrapper(raw, encoding=report.codec, newline="")
        reader = csv.reader(stream, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        header = [h.lstrip("\ufeff").strip() for h in header]
        if column not in header:
            shown = ", ".join(repr(h) for h in header[:20])
            raise DataError(f"no column {column!r}; the header has {shown}. Set data.column", path, 1)
        index = header.index(column)
        start = reader.line_num + 1
        try:
            for row in reader:
                line = start
                start = reader.line_num + 1
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) <= index:
                    if skip:
                        yield line, None
                        continue
                    raise DataError(f"row has {len(row)} fields, so no {column!r} (field {index + 1})", path, line)
                yield line, row[index]
        except csv.Error as e:
            raise DataError(f"malformed CSV: {e}", path, reader.line_num) from None
