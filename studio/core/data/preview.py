"""A quick look at a corpus before building it: encoding, columns or fields, and the first text;
which column most likely holds the text; and what a corpus setting resolves to before anything
is read (the format that ``auto`` means, the built-in corpora a person can pick).

Reads only the start of the first file, so it is instant whatever the corpus size.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from studio.core.data.charsets import detect_encoding
from studio.core.data.corpus import SUFFIX_FORMATS, expand_paths, format_of
from studio.core.data.datasets import DATASETS, DEMO_TITLES
from studio.core.errors import DataError
from studio.core.i18n import _

PREVIEW_BYTES = 64 * 1024
SAMPLE_ROWS = 200  # rows per column looked at to decide which column holds the text
NUMERIC_SHARE = 0.5  # a column with more numbers than this among its values is not text


def effective_format(paths: Sequence[str], fmt: str = "auto", dataset: str = "") -> str:
    """The format the corpus will be read in: ``fmt``, or for ``auto`` the first file's extension
    (as the corpus reader decides), or the built-in dataset's own format when no file is given."""
    if fmt != "auto":
        return fmt
    if paths:
        return SUFFIX_FORMATS.get(Path(paths[0]).suffix.lower(), "text")
    spec = DATASETS.get(dataset)
    return spec.format if spec else "text"


def builtin_corpora() -> list[tuple[str, str]]:
    """(name, title) of every built-in corpus: Studio's demo stories, then the downloadable ones."""
    demos = [(name, _(title)) for name, title in DEMO_TITLES.items()]
    # Translators: {title} is a dataset's title (Tiny Shakespeare).
    return [*demos, *((name, _("{title} (downloads once)").format(title=_(spec.title))) for name, spec in DATASETS.items())]


def _is_number(value: str) -> bool:
    try:
        float(value.replace(",", ""))
    except ValueError:
        return False
    return True


def choose_text_column(samples: Mapping[str, Sequence[str]], preferred: str = "") -> tuple[str, str]:
    """The column (or JSON field) that most likely holds the text, and why, in words.

    ``samples`` holds each column's first values. A column is text when at most half of its
    non-empty values are numbers; among those the one with the longest values on average wins
    (IDs, stars and dates are short or numeric; reviews and articles are long). ``preferred``
    (the column set before, or the default ``text``) is kept when it exists and is text.
    """
    if not samples:
        return preferred, ""
    means: dict[str, float] = {}
    for name, values in samples.items():
        filled = [v.strip() for v in values if v.strip()]
        if filled and sum(map(_is_number, filled)) <= NUMERIC_SHARE * len(filled):
            means[name] = sum(map(len, filled)) / len(filled)
    if not means:
        first = next(iter(samples))
        # Translators: {column} is a column's name, kept as is.
        return first, _("{column}: no column looks like text (mostly numbers or empty), so the first one").format(column=first)
    longest = max(means, key=lambda n: means[n])
    if preferred in means and preferred != longest:
        # Translators: {column} and {longest} are column names, kept as is; the numbers are average lengths.
        return preferred, _("{column}: kept as chosen, {average:,.0f} characters on average "
                            "({longest} has {longest_average:,.0f})").format(
            column=preferred, average=means[preferred], longest=longest, longest_average=means[longest]
        )
    # Translators: {column} is a column's name, kept as is.
    return longest, _("{column}: the longest text, {average:,.0f} characters on average").format(
        column=longest, average=means[longest]
    )


@dataclass
class Preview:
    files: list[Path]
    format: str
    encoding: str  # label, in English: show it as _(encoding)
    encoding_reason: str
    columns: list[str] = field(default_factory=list)  # CSV header or JSON keys of the first row
    text: str = ""  # the first few lines or rows of text
    text_column: str = ""  # the column (JSONL: field) that most likely holds the text ...
    text_column_reason: str = ""  # ... and why, e.g. "review: the longest text, 412 characters on average"


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
        rows: list[str] = []
        samples: dict[str, list[str]] = {}
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                if len(rows) >= 20:
                    break  # past the rows shown, a bad line is the build's to report (or skip)
                raise DataError(_("not valid JSON: {reason}").format(reason=e.msg), first, n) from None
            if isinstance(obj, dict):
                if not preview.columns:
                    preview.columns = [k for k, v in obj.items() if isinstance(v, str)] or list(obj)
                value = obj.get(json_field)
                if isinstance(value, str) and len(rows) < 20:
                    rows.append(value)
                for key in preview.columns:
                    samples.setdefault(key, []).append(v if isinstance(v := obj.get(key), str) else "")
            if n >= SAMPLE_ROWS:
                break
        preview.text = "\n—\n".join(rows)[:max_chars]
        preview.text_column, preview.text_column_reason = choose_text_column(samples, json_field)
    else:
        reader = csv.reader(io.StringIO(text), delimiter="," if kind == "csv" else "\t")
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            header = []
        preview.columns = header
        rows = []
        samples = {name: [] for name in header}
        for n, row in enumerate(reader, start=1):
            for name, value in zip(header, row, strict=False):
                samples[name].append(value)
            if column in header and len(row) > header.index(column) and len(rows) < 20:
                rows.append(row[header.index(column)])
            if n >= SAMPLE_ROWS:
                break
        preview.text = "\n—\n".join(rows)[:max_chars]
        preview.text_column, preview.text_column_reason = choose_text_column(samples, column)
    return preview
