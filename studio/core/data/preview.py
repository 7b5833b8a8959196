"""A quick look at a corpus before building it: encoding, columns or fields, and the first text.

Reads only the start of the first file, so it is instant whatever the corpus size.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.data.charsets import detect_encoding
from studio.core.data.corpus import expand_paths, format_of
from studio.core.errors import DataError

PREVIEW_BYTES = 64 * 1024


@dataclass
class Preview:
    files: list[Path]
    format: str
    encoding: str  # label
    encoding_reason: str
    columns: list[str] = field(default_factory=list)  # CSV header or JSON keys of the first row
    text: str = ""  # the first few lines or rows of text


def preview_corpus(paths: list[str], fmt: str = "auto", column: str = "text", json_field: str = "text",
                   encoding: str = "auto", max_chars: int = 3000) -> Preview:
    files = expand_paths(paths)
    first = files[0]
    kind = format_of(first, fmt)
    report = detect_encoding(first, encoding)
    with first.open("rb") as f:
        head = f.read(PREVIEW_BYTES)
    text = head.decode(report.codec, errors="replace").lstrip("\ufeff")
    if len(head) == PREVIEW_BYTES:
        text = text.rsplit("\n", 1)[0]  # do not show a cut line
    text = text.replace("\r\n", "\n")
    preview = Preview(files, kind, report.label, report.reason)
    if kind == "text":
        preview.text = text[:max_chars]
    elif kind == "jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"not valid JSON: {e.msg}", first, n) from None
            if isinstance(obj, dict):
                if not preview.columns:
                    preview.columns = [k for k, v in obj.items() if isinstance(v, str)] or list(obj)
                value = obj.get(json_field)
                if isinstance(value, str):
                    rows.append(value)
            if len(rows) >= 20:
                break
        preview.text = "\n—\n".join(rows)[:max_chars]
    else:
        reader = csv.reader(io.StringIO(text), delimiter="," if kind == "csv" else "\t")
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            header = []
        preview.columns = header
        rows = []
        if column in header:
            i = header.index(column)
            for row in reader:
                if len(row) > i:
                    rows.append(row[i])
                if len(rows) >= 20:
                    break
        preview.text = "\n—\n".join(rows)[:max_chars]
    return preview
