"""Reading corpora: plain text, CSV/TSV with a chosen column, JSONL with a chosen field.

A corpus is read in two steps:

1. :func:`scan_corpus` checks every file once (encoding, decodability, every CSV/JSONL row),
   counts lines, rows and characters, and hashes the bytes. Every problem is a ``DataError``
   naming the file and line.
2. :meth:`Corpus.records` streams the text back, one line (plain text) or one row (CSV/JSONL) at a
   time, each tagged with its file, line and document number for splitting and error messages.

Memory stays bounded whatever the shape of the file, because nothing ever holds a whole line:

- Lines are read with a byte limit (``readline(READ_BYTES)``) and decoded with one incremental
  decoder per file, so a multi-byte character cut by the limit is completed by the next read, and
  a stateful codec keeps its state across lines. Codecs in which b"\\n" is not always a newline
  (UTF-16, UTF-32, EBCDIC) are read in fixed-size chunks, decoded the same way and split into
  lines as text. Either way a line ends at "\\n" only, a "\\r\\n" at its end becomes "\\n" (even
  when the read limit falls between the two), and a BOM at the start of the file is dropped.
- A line longer than ``PIECE_CHARS`` (1 MiB of text) comes out as several records, *pieces*, with
  the same line and document number, ``first``/``last`` marking the ends of the line and
  ``offset`` giving the position in the file's text. Concatenated they are exactly the line, so
  the character tokenizer's output is unchanged. A piece ends just before the last whitespace
  character that is followed by a non-space within ``CUT_WINDOW`` characters of the limit: the
  byte-level BPE pre-tokenizer (GPT-2's pattern) and spaCy both start a token there, so BPE and
  word tokens are unchanged too. Without such whitespace (Chinese, a base64 blob) the piece ends
  where a letter or digit is followed by punctuation (still a BPE token boundary), else at the
  limit itself, which can change at most one token per MiB.
- Whitespace here is Unicode's White_Space set, not Python's ``str.isspace`` (which adds
  U+001C-U+001F, which the BPE pattern treats as punctuation).
- A CSV or JSONL row is parsed whole, so it must fit in ``MAX_ROW_CHARS`` (16 Mi characters); a
  larger one is a ``DataError`` naming the line where it starts. The text of a row is then cut
  into pieces like a line.
- CSV is parsed strictly: a quote that is never closed, or text after a closing quote, is an error
  naming the line (for an open quote, the line where it opened), or a skipped row with
  ``data.skip_bad_rows``.

Speed: per-line Python work costs microseconds, about 20 MB/s at best, so a plain-text file in
UTF-8 (or ASCII, Latin-1, Windows-1252) is also read in blocks (``Corpus.records(blocks=True)``):
``READ_BLOCK`` bytes at a time, cut after the last newline, decoded at once. Each run of whole
lines comes out as one :class:`Lines` record, which the splitter and the token cache handle line
by line with vectorised code; the records are exactly those of ``text_pieces`` (a line longer
than ``PIECE_CHARS`` bytes is handed to the line reader above, and so is the rest of a file whose
bytes stop decoding). The scan counts lines and characters the same way, a block at a time.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np

from studio.core.control import RunControl
from studio.core.data.charsets import EncodingReport, canonical, detect_encoding
from studio.core.errors import DataError
from studio.core.i18n import _

Format = Literal["text", "csv", "tsv", "jsonl"]
ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)

TEXT_SUFFIXES = {".txt", ".text", ".md", ".raw", ".tokens", ""}
SUFFIX_FORMATS: dict[str, Format] = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}

READ_BYTES = 1 << 20  # one read of a line, or one chunk of a non-line-safe file
READ_BLOCK = 1 << 20  # one read of the block reader (capped at PIECE_CHARS, see text_blocks)
PIECE_CHARS = 1 << 20  # longest record; a longer line or row is cut into pieces
CUT_WINDOW = 16 << 10  # how far before the limit a piece may end to end at whitespace
MAX_ROW_CHARS = 16 << 20  # a CSV/JSONL row is parsed whole, so it must fit in memory

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

# Codecs read in blocks: stateless, b"\n" is always a newline and never part of a character, and
# no bytes decode to nothing except a BOM (so a block reads exactly as its lines would).
BLOCK_CODECS = {"utf-8", "utf-8-sig", "ascii", "iso8859-1", "cp1252"}

WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"  # Unicode White_Space
# Searched in the reversed text, so that one regex search finds the *last* place before a limit:
# a whitespace character followed by a non-space (where BPE's GPT-2 pattern and spaCy start a
# token), and a letter or digit followed by punctuation (where the BPE pattern starts one).
_WS_BEFORE_TEXT_REVERSED = re.compile(f"(?<=[^{WHITESPACE}])[{WHITESPACE}]")
_PUNCT_AFTER_WORD_REVERSED = re.compile(r"[^\w" + WHITESPACE + r"](?=[^\W_])")


def last_whitespace_cut(text: str, lo: int, hi: int) -> int:
    """The largest p in [lo, hi] where text[p] is whitespace and text[p + 1] is not, or -1."""
    end = min(len(text), hi + 2)
    if end - lo < 2:
        return -1
    seg = text[lo:end][::-1]
    m = _WS_BEFORE_TEXT_REVERSED.search(seg, max(0, len(seg) - 1 - (hi - lo)))
    return -1 if m is None else lo + len(seg) - 1 - m.start()


def last_punctuation_cut(text: str, lo: int, hi: int) -> int:
    """The largest p in [max(lo, 1), hi] where text[p - 1] is a letter or digit and text[p] punctuation, or -1."""
    lo = max(lo, 1)
    end = min(len(text), hi + 1)
    if end - lo < 1:
        return -1
    seg = text[lo - 1 : end][::-1]
    m = _PUNCT_AFTER_WORD_REVERSED.search(seg, max(0, len(seg) - 1 - (hi - lo + 1)))
    return -1 if m is None else lo - 1 + len(seg) - 1 - m.start()

@dataclass(frozen=True)
class Record:
    text: str
    path: Path
    line: int  # 1-based line where this line or row starts
    doc: int  # document number within its corpus: the file (plain text) or the row (CSV/JSONL)
    offset: int = 0  # characters of the file's text before this record (plain text only)
    first: bool = True  # this record starts its line or row (False: a later piece of a long one)
    last: bool = True  # this record ends its line or row

    @property
    def whole(self) -> bool:
        return self.first and self.last


@dataclass(frozen=True)
class Lines(Record):
    """Several whole lines of a plain-text file in one record (each line ends with "\n", the last
    one may end the file instead): the same text as that many records of single lines, which the
    block reader makes to spare per-line work. ``line`` is the first line's number."""


def split_lines(text: str) -> list[str]:
    """The lines of a ``Lines`` text, each with its "\n" (only "\n" ends a line here)."""
    parts = text.split("\n")
    last = parts.pop()
    out = [part + "\n" for part in parts]
    if last:
        out.append(last)
    return out


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
    chars: int = 0  # characters of text, newlines included ("\r\n" counts as one)


@dataclass(frozen=True)
class Corpus:
    files: tuple[SourceFile, ...]
    column: str
    json_field: str
    skip_bad_rows: bool

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

    def records(self, blocks: bool = False) -> Iterator[Record]:
        """Every line (plain text) or row, in pieces where long. ``blocks``: runs of whole lines of a
        plain-text file in a block codec come as :class:`Lines` records instead (same text)."""
        doc = 0
        for f in self.files:
            if f.format == "text":
                offset = 0
                if blocks and block_readable(f.encoding):
                    for line_no, text, first, last, lines in text_blocks(f.path, f.encoding):
                        kind = Lines if lines else Record
                        yield kind(text, f.path, line_no, doc, offset, first, last)
                        offset += len(text)
                else:
                    for line_no, text, first, last in text_pieces(f.path, f.encoding):
                        yield Record(text, f.path, line_no, doc, offset, first, last)
                        offset += len(text)
                doc += 1
            else:
                for line_no, text in _rows(f, self.column, self.json_field, self.skip_bad_rows):
                    for piece, first, last in split_text(text):
                        yield Record(piece, f.path, line_no, doc, 0, first, last)
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
                raise DataError(_("the folder holds no text, CSV, TSV or JSONL files"), p)
            out.extend(found)
        elif p.is_file():
            out.append(p)
        elif p.exists():
            # Translators: put after a path: "data/x: is not a regular file or folder".
            raise DataError(_("is not a regular file or folder"), p)
        else:
            # Translators: put after a path: "data/x: does not exist".
            raise DataError(_("does not exist"), p)
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
        raise DataError(_("no corpus files were given"))
    total = sum(p.stat().st_size for p in files)
    done = 0
    scanned = []
    for path in files:
        if control is not None:
            control.raise_if_stopped()
        fmt = format_of(path, format)
        report = detect_encoding(path, encoding)
        size = path.stat().st_size
        checked = _check_file(path, fmt, report, column, json_field, skip_bad_rows, control)
        if checked.units == 0:
            # Translators: put after a file's name: "corpus.txt: holds no text".
            raise DataError(_("holds no text") if fmt == "text" else _("holds no rows"), path)
        scanned.append(
            SourceFile(path, fmt, report, size, checked.units, checked.lines, checked.sha256, checked.skipped, checked.chars)
        )
        done += size
        if progress:
            progress("scan", done, total)
    return Corpus(tuple(scanned), column, json_field, skip_bad_rows)


# ---- reading lines in bounded pieces ------------------------------------------------------------


def line_fragments(path: Path, report: EncodingReport) -> Iterator[tuple[int, str, bool]]:
    """(line, text, ends_line) for the whole file, in fragments of at most about ``READ_BYTES``.

    Concatenating the fragments of one line gives the line, its "\\r\\n" normalised to "\\n". Bytes
    that do not decode are a DataError naming the line and column.
    """
    decoder = codecs.getincrementaldecoder(report.codec)("strict")
    try:
        with path.open("rb") as f:
            if report.line_safe:
                yield from _byte_line_fragments(f, decoder, path, report)
            else:
                yield from _chunk_line_fragments(f, decoder, path, report)
    except OSError as e:
        raise DataError(_("cannot be read ({reason})").format(reason=e.strerror or e), path) from None


def _undecodable(e: UnicodeError, raw: bytes, consumed: int, path: Path, report: EncodingReport, line: int) -> DataError:
    if not isinstance(e, UnicodeDecodeError):  # codecs such as idna raise the base class, with no position
        # Translators: {encoding} is an encoding's name, {reason} the decoder's own words.
        message = _("cannot be decoded as {encoding} ({reason}); set data.encoding to the file's real encoding")
        return DataError(message.format(encoding=_(report.label), reason=e), path, line)
    # e.object is what the decoder held back from the previous read plus ``raw``.
    held = max(0, len(e.object) - len(raw)) if isinstance(e.object, bytes | bytearray) else 0
    column = max(1, consumed - held + e.start + 1)
    shown = bytes(e.object[e.start : e.start + 4]) if isinstance(e.object, bytes | bytearray) else b""
    # Translators: {bytes} are the bytes as Python writes them (b'\xff\xfe'), {encoding} an encoding's name.
    return DataError(
        _("bytes {bytes} cannot be decoded as {encoding} (byte {column} of the line); "
          "set data.encoding to the file's real encoding").format(bytes=repr(shown), encoding=_(report.label), column=column),
        path,
        line,
    )


def _byte_line_fragments(f: BinaryIO, decoder: codecs.IncrementalDecoder, path: Path, report: EncodingReport,
                         line: int = 1, at_start: bool = True) -> Iterator[tuple[int, str, bool]]:
    """``line``, ``at_start``: where ``f`` stands, when it is not the start of the file (the block reader)."""
    consumed = 0  # bytes of the current line read so far
    held_cr = ""  # a "\r" that ended a read, kept until we know whether "\n" follows
    while True:
        raw = f.readline(READ_BYTES)
        try:
            text = decoder.decode(raw, final=not raw)
        except UnicodeError as e:
            raise _undecodable(e, raw, consumed, path, report, line) from None
        if at_start and text:
            text = text.removeprefix("\ufeff")  # a BOM the codec itself keeps (data.encoding = utf-8)
            at_start = False
        text = held_cr + text
        held_cr = ""
        if not raw:  # end of file; a last line without a newline ends here
            if text or consumed:
                yield line, text, True
            return
        consumed += len(raw)
        if raw.endswith(b"\n"):
            if text.endswith("\r\n"):
                text = text[:-2] + "\n"
            yield line, text, True
            line += 1
            consumed = 0
        else:
            if text.endswith("\r"):
                held_cr, text = "\r", text[:-1]
            if text:
                yield line, text, False


def _chunk_line_fragments(f: BinaryIO, decoder: codecs.IncrementalDecoder, path: Path, report: EncodingReport) -> Iterator[tuple[int, str, bool]]:
    line = 1
    pending = ""  # text of the current line not yet yielded
    open_line = False  # part of the current line has been yielded
    at_start = True
    while True:
        raw = f.read(READ_BYTES)
        try:
            text = decoder.decode(raw, final=not raw)
        except UnicodeError as e:
            where = line
            if isinstance(e, UnicodeDecodeError) and isinstance(e.object, bytes | bytearray):
                where += e.object[: e.start].decode(report.codec, errors="replace").count("\n")
            reason = e.reason if isinstance(e, UnicodeDecodeError) else str(e)
            message = _("cannot be decoded as {encoding} ({reason}); set data.encoding to the file's real encoding")
            raise DataError(message.format(encoding=_(report.label), reason=reason), path, where) from None
        if at_start and text:
            text = text.removeprefix("\ufeff")
            at_start = False
        text = pending + text
        pending = ""
        if not raw:
            if text or open_line:
                yield line, text, True
            return
        start = 0
        while True:
            end = text.find("\n", start)
            if end < 0:
                break
            piece = text[start : end + 1]
            if piece.endswith("\r\n"):
                piece = piece[:-2] + "\n"
            yield line, piece, True
            line += 1
            start = end + 1
        rest = text[start:]
        open_line = open_line and start == 0
        if rest.endswith("\r"):  # maybe the first half of "\r\n"
            pending, rest = "\r", rest[:-1]
        if rest:
            yield line, rest, False
            open_line = True


def cut_point(text: str, limit: int, window: int | None = None) -> int:
    """Where to end a piece of ``text`` (longer than ``limit``): an index in 1..limit (see the module doc)."""
    lo = max(1, limit - (CUT_WINDOW if window is None else window))
    cut = last_whitespace_cut(text, lo, limit)
    if cut < 1:
        cut = last_punctuation_cut(text, lo, limit)
    if cut < 1:
        cut = limit
    if text[cut - 1] == "\r" and cut < len(text) and text[cut] == "\n" and cut > 1:
        cut -= 1  # keep "\r\n" together, so the end of the line can be normalised
    return cut


def split_text(text: str, limit: int | None = None, window: int | None = None) -> Iterator[tuple[str, bool, bool]]:
    """(piece, first, last) for ``text`` cut into pieces of at most ``limit`` (``PIECE_CHARS``) characters."""
    limit = limit or PIECE_CHARS
    start = 0
    while len(text) - start > limit:
        cut = cut_point(text[start : start + limit + 2], limit, window)
        yield text[start : start + cut], start == 0, False
        start += cut
    yield text[start:], start == 0, True


def text_pieces(path: Path, report: EncodingReport, limit: int | None = None) -> Iterator[tuple[int, str, bool, bool]]:
    """(line, piece, first, last): every line of the file in pieces of at most ``limit`` (``PIECE_CHARS``)
    characters. Blank lines are kept (they are text too).
    """
    return _pieces(line_fragments(path, report), limit or PIECE_CHARS)


def _pieces(fragments: Iterator[tuple[int, str, bool]], limit: int) -> Iterator[tuple[int, str, bool, bool]]:
    buffer = ""
    first = True
    for line, text, ends in fragments:
        buffer = buffer + text if buffer else text
        while len(buffer) > limit:
            cut = cut_point(buffer, limit)
            yield line, buffer[:cut], first, False
            buffer = buffer[cut:]
            first = False
        if ends:
            yield line, buffer, first, True
            buffer = ""
            first = True


def block_readable(report: EncodingReport) -> bool:
    """Can a file in this encoding be read in blocks (``text_blocks``)?"""
    return canonical(report.codec) in BLOCK_CODECS


def _codec_at(report: EncodingReport, position: int) -> str:
    # A decoder made after the start of the file must not take a U+FEFF there for a BOM.
    return "utf-8" if position and canonical(report.codec) == "utf-8-sig" else report.codec


# A newline followed by a line of nothing but whitespace and its own newline. \s is what str.isspace
# and str.strip call whitespace (so "blank" means what the line reader's strip() means).
_BLANK_LINE_AFTER = re.compile(r"\n(?=[^\S\n]*\n)")


def _newlines(data: bytes, end: int) -> int:
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8, count=end) == 10))  # 7x bytes.count


def _one_line(f: BinaryIO, path: Path, report: EncodingReport, line: int, at_start: bool) -> Iterator[tuple[int, str, bool]]:
    """The fragments of the line at ``f``'s position, read as ``line_fragments`` reads it; ``f`` is
    left just after it."""
    decoder = codecs.getincrementaldecoder(_codec_at(report, f.tell()))("strict")
    for fragment in _byte_line_fragments(f, decoder, path, report, line, at_start):
        yield fragment
        if fragment[2]:
            return


def text_blocks(path: Path, report: EncodingReport, limit: int | None = None) -> Iterator[tuple[int, str, bool, bool, bool]]:
    """(line, text, first, last, lines): the records of ``text_pieces`` for a file in a block codec,
    where the whole lines of each read come joined in one record (``lines`` True).

    A line longer than ``limit`` (``PIECE_CHARS``) bytes, and the rest of a file from a block that
    does not decode, go through the line reader itself, so their pieces and errors are its own.
    Reads are at most ``limit`` bytes, so every other line is short enough to be one record.
    """
    limit = limit or PIECE_CHARS
    size = max(1, min(READ_BLOCK, limit))
    decoder: codecs.IncrementalDecoder | None = None
    line = 1
    at_start = True
    try:
        with path.open("rb") as f:
            carry = b""  # the start of a line that the next read continues (no newline in it)
            start = 0  # where ``carry`` begins in the file
            while True:
                chunk = f.read(size)
                data = carry + chunk if carry else chunk
                if not data:
                    return
                end = data.find(b"\n")
                if end >= limit or (end < 0 and len(data) > limit):  # the line may need cutting into pieces
                    f.seek(start)
                    for piece in _pieces(_one_line(f, path, report, line, at_start), limit):
                        yield (*piece, False)
                    at_start = False
                    carry, start, line = b"", f.tell(), line + 1
                    continue
                if end < 0 and chunk:
                    carry = data
                    continue
                cut = data.rfind(b"\n") + 1 if chunk else len(data)  # the file's last line may end without one
                if decoder is None:
                    decoder = codecs.getincrementaldecoder(_codec_at(report, start))("strict")
                try:
                    text = decoder.decode(data[:cut], final=not chunk)
                except UnicodeError:  # the line reader names the line and column
                    f.seek(start)
                    fragments = _byte_line_fragments(f, codecs.getincrementaldecoder(_codec_at(report, start))("strict"),
                                                     path, report, line, at_start)
                    for piece in _pieces(fragments, limit):
                        yield (*piece, False)
                    return
                if at_start and text:
                    text = text.removeprefix("\ufeff")
                    at_start = False
                if "\r" in text:  # (a memchr; replace scans even when there is nothing to replace)
                    text = text.replace("\r\n", "\n")  # only "\n" ends a line, so every "\r\n" ends one
                if text:
                    yield line, text, True, True, True
                elif not chunk:
                    yield line, "", True, True, False  # a last line of nothing but a BOM, as the line reader has it
                if not chunk:
                    return
                line += _newlines(data, cut)
                carry, start = data[cut:], start + cut
    except OSError as e:
        raise DataError(_("cannot be read ({reason})").format(reason=e.strerror or e), path) from None


def bounded_lines(path: Path, report: EncodingReport, limit: int | None = None) -> Iterator[tuple[int, str]]:
    """Whole lines (for JSONL, where a row is parsed whole); a line over ``limit`` (``MAX_ROW_CHARS``)
    characters is an error."""
    limit = limit or MAX_ROW_CHARS
    parts: list[str] = []
    size = 0
    for line, text, ends in line_fragments(path, report):
        parts.append(text)
        size += len(text)
        if size > limit:
            raise DataError(
                _("the line is longer than {limit} characters, too long for one row; "
                  "a row is read whole, so split the text into several rows or use a plain text file").format(limit=_amount(limit)),
                path,
                line,
            )
        if ends:
            yield line, "".join(parts)
            parts = []
            size = 0


def _amount(n: int) -> str:
    return f"{n >> 20} Mi" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n:,}"


# ---- checking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Checked:
    sha256: str
    units: int
    lines: int
    skipped: int
    chars: int


def _check_file(
    path: Path,
    fmt: Format,
    report: EncodingReport,
    column: str,
    json_field: str,
    skip_bad_rows: bool,
    control: RunControl | None,
) -> _Checked:
    """Decode every line (naming the first that fails), count units and characters, hash the bytes."""
    counted = _count_blocks(path, report, control) if block_readable(report) else None
    if counted is not None:
        sha256, lines, nonempty, chars = counted
    else:
        sha256, lines, nonempty, chars = _count_lines(path, report, control)
    if fmt == "text":
        return _Checked(sha256, nonempty, lines, 0, chars)
    rows = 0
    skipped = 0
    for _line, _text in _rows_checked(path, fmt, report, column, json_field, skip_bad_rows):
        if _text is None:
            skipped += 1
        else:
            rows += 1
    return _Checked(sha256, rows, lines, skipped, chars)


def _count_lines(path: Path, report: EncodingReport, control: RunControl | None) -> tuple[str, int, int, int]:
    """(sha256, lines, non-blank lines, characters), line by line; a DataError names the first line
    that does not decode."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    lines = 0
    nonempty = 0
    chars = 0
    blank = True
    for n, text, ends in line_fragments(path, report):
        chars += len(text)
        if blank and text.strip():
            blank = False
        if ends:
            lines = n
            nonempty += not blank
            blank = True
            if control is not None and n % 100_000 == 0:
                control.raise_if_stopped()
    return h.hexdigest(), lines, nonempty, chars


def _count_blocks(path: Path, report: EncodingReport, control: RunControl | None) -> tuple[str, int, int, int] | None:
    """What ``_count_lines`` counts, a block at a time and in one read (a file in a block codec);
    None when a block does not decode, so the line reader can say where."""
    h = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(report.codec)("strict")
    lines = nonblank = chars = 0
    blank = True  # the open line holds only whitespace so far
    open_line = False  # bytes have come since the last newline
    held_cr = False  # the text so far ends with "\r" (a "\r\n" counts as one character)
    at_start = True
    try:
        with path.open("rb") as f:
            while True:
                raw = f.read(READ_BLOCK)
                h.update(raw)
                try:
                    text = decoder.decode(raw, final=not raw)
                except UnicodeError:
                    return None
                if at_start and text:
                    text = text.removeprefix("\ufeff")
                    at_start = False
                if text:
                    chars += len(text) - (text.count("\r\n") if "\r" in text else 0) - (held_cr and text[0] == "\n")
                    held_cr = text[-1] == "\r"
                    first, last = text.find("\n"), text.rfind("\n")
                    if first < 0:
                        blank = blank and text.isspace()
                    else:
                        head, tail = text[:first], text[last + 1 :]
                        nonblank += not (blank and (not head or head.isspace()))
                        newlines = _newlines(raw, len(raw))  # the same newlines as the text's, in these codecs
                        # The whole lines between the first and the last newline, less the blank ones.
                        nonblank += newlines - 1 - len(_BLANK_LINE_AFTER.findall(text, first, last + 1))
                        lines += newlines
                        blank = not tail or tail.isspace()
                if not raw:
                    break
                newline = raw.rfind(b"\n")
                open_line = newline < len(raw) - 1 if newline >= 0 else True
                if control is not None:
                    control.raise_if_stopped()
    except OSError as e:
        raise DataError(_("cannot be read ({reason})").format(reason=e.strerror or e), path) from None
    if open_line:  # a last line without a newline
        lines += 1
        nonblank += not blank
    return h.hexdigest(), lines, nonblank, chars


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
    for n, line in bounded_lines(path, report):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            if n == 1 and line.lstrip().startswith("["):
                raise DataError(_("is a JSON array, not JSON Lines (one object per line)"), path, n) from None
            if skip:
                yield n, None
                continue
            # Translators: {reason} is the JSON parser's own words (in English).
            raise DataError(_("not valid JSON: {reason} (column {column})").format(reason=e.msg, column=e.colno), path, n) from None
        except (RecursionError, ValueError) as e:  # nested too deeply; an integer of over 4300 digits
            if skip:
                yield n, None
                continue
            if isinstance(e, RecursionError):
                reason = _("nested too deeply")
            elif "int_max_str_digits" in str(e):
                reason = _("a number with more than {digits:,} digits").format(digits=sys.get_int_max_str_digits())
            else:
                reason = str(e)
            raise DataError(_("not valid JSON: {reason}").format(reason=reason), path, n) from None
        if isinstance(obj, list) and n == 1 and not skip:
            raise DataError(_("is a JSON array, not JSON Lines (one object per line)"), path, n)
        if not isinstance(obj, dict):
            if skip:
                yield n, None
                continue
            # Translators: {kind} is "an array", "a string", "a number", ...
            raise DataError(_("expected a JSON object, found {kind}").format(kind=_json_kind(obj)), path, n)
        if field not in obj:
            if skip:
                yield n, None
                continue
            fields = ", ".join(list(obj)[:12]) or _("none")
            # Translators: {field} and {fields} are names of JSON fields, kept as is; data.json_field is a setting.
            raise DataError(_("no field {field} (this row has: {fields}); set data.json_field").format(field=repr(field), fields=fields), path, n)
        value = obj[field]
        if not isinstance(value, str):
            if skip:
                yield n, None
                continue
            # Translators: {kind} is "an array", "a number", ...
            raise DataError(_("field {field} holds {kind}, not text").format(field=repr(field), kind=_json_kind(value)), path, n)
        yield n, value


def _json_kind(value: object) -> str:
    names = {list: _("an array"), str: _("a string"), int: _("a number"), float: _("a number"), bool: _("true or false"),
             dict: _("an object")}
    return "null" if value is None else names.get(type(value), type(value).__name__)


class _CsvLines:
    """The lines of a CSV file for ``csv.reader``, refusing a record longer than ``MAX_ROW_CHARS``.

    Keeps the lines of the record being read, so that an error can name the line where its
    unclosed quote opened; ``row_done`` forgets them once the reader has returned the row.
    """

    def __init__(self, stream: io.TextIOWrapper, path: Path, delimiter: str):
        self.stream = stream
        self.path = path
        self.delimiter = delimiter
        self.line = 0  # lines handed to the reader
        self.record: list[str] = []
        self.record_start = 1
        self.record_chars = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        try:
            text = self.stream.readline(MAX_ROW_CHARS + 1)
        except UnicodeError as e:
            raise DataError(_("cannot be decoded ({reason}); set data.encoding").format(reason=e), self.path, self.line + 1) from None
        if not text:
            raise StopIteration
        self.line += 1
        if not self.record:
            self.record_start = self.line
        self.record.append(text)
        self.record_chars += len(text)
        if self.record_chars > MAX_ROW_CHARS:
            opened = self.open_quote_line()
            hint = _("; the quote opened on line {line} is never closed").format(line=opened) if opened else ""
            raise DataError(
                # Translators: {hint} is "; the quote opened on line N is never closed" or nothing.
                _("the row is longer than {limit} characters, too long to read whole{hint}").format(
                    limit=_amount(MAX_ROW_CHARS), hint=hint
                ),
                self.path,
                opened or self.record_start,
            )
        return text

    def row_done(self) -> None:
        self.record = []
        self.record_chars = 0

    def open_quote_line(self) -> int | None:
        """The line of the record being read where a quoted field opens and never closes."""
        offset = _unclosed_quote(self.record, self.delimiter)
        if offset is None:
            return None
        for k, text in enumerate(self.record):
            if offset < len(text):
                return self.record_start + k
            offset -= len(text)
        return self.record_start + len(self.record) - 1


def _unclosed_quote(lines: list[str], delimiter: str) -> int | None:
    """Character offset of a quote that opens a field and is never closed, as ``csv`` reads it."""
    text = "".join(lines)
    quoted = re.compile(r'"[^"]*+(?:""[^"]*+)*+"')  # possessive: a doubled quote never closes a field
    unquoted = re.compile(f"[^{re.escape(delimiter)}\r\n]*")
    pos = 0
    while pos < len(text):
        if text[pos] == '"':
            m = quoted.match(text, pos)
            if m is None:
                return pos
            pos = m.end()
        pos = unquoted.match(text, pos).end()  # type: ignore[union-attr]  # always matches
        pos += 2 if text.startswith("\r\n", pos) else 1
    return None


def _csv_rows(path: Path, report: EncodingReport, delimiter: str, column: str, skip: bool) -> Iterator[tuple[int, str | None]]:
    with path.open("rb") as raw:
        stream = io.TextIOWrapper(raw, encoding=report.codec, newline="")
        lines = _CsvLines(stream, path, delimiter)
        # strict: an unclosed quote or text after a closing quote is an error, not silently text.
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            # Translators: {reason} is the CSV reader's own words (in English).
            raise DataError(_("malformed CSV header: {reason}").format(reason=e), path, lines.open_quote_line() or 1) from None
        lines.row_done()
        header = [h.lstrip("\ufeff").strip() for h in header]
        if column not in header:
            shown = ", ".join(repr(h) for h in header[:20])
            # Translators: {column} and {header} are column names, kept as is; data.column is a setting.
            raise DataError(_("no column {column}; the header has {header}. Set data.column").format(column=repr(column), header=shown), path, 1)
        index = header.index(column)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                line = lines.record_start
                if "unexpected end of data" in str(e):
                    opened = lines.open_quote_line() or line
                    message = _("malformed CSV: the quote opened on line {line} is never closed").format(line=opened)
                    line = opened
                else:
                    message = _("malformed CSV: {reason}").format(reason=e)
                    line = reader.line_num
                lines.row_done()
                if skip:
                    yield line, None
                    continue
                raise DataError(message, path, line) from None
            line = lines.record_start
            lines.row_done()
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) <= index:
                if skip:
                    yield line, None
                    continue
                # Translators: {column} is a column's name, kept as is; {field} its position in the row.
                message = _("row has {count} fields, so no {column} (field {field})")
                raise DataError(message.format(count=len(row), column=repr(column), field=index + 1), path, line)
            yield line, row[index]
