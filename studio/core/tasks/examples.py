"""Task examples, read from JSONL, SQuAD JSON, tab-separated pairs or CSV with a column mapping.

Every kind of task uses one record shape:

- classify:   source = the text,      target = the label
- translate:  source = the sentence,  target = its translation
- summarize:  source = the document,  target = the summary
- qa:         source = the context,   question = the question, target = the first answer,
              references = every gold answer, answer_start = where the first answer starts

Each example remembers its file and line, and every bad row is a ``DataError`` naming them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from studio.core.data.charsets import detect_encoding
from studio.core.errors import DataError

# Roles each kind needs, in the order a TSV's columns fill them.
KIND_ROLES: dict[str, tuple[str, ...]] = {
    "classify": ("text", "label"),
    "translate": ("source", "target"),
    "summarize": ("document", "summary"),
    "qa": ("context", "question", "answer"),
}


@dataclass(frozen=True)
class Example:
    source: str
    target: str
    question: str = ""
    references: tuple[str, ...] = ()
    answer_start: int = -1
    path: str = ""
    line: int = 0

    @property
    def all_targets(self) -> tuple[str, ...]:
        return self.references or (self.target,)


def field_mapping(kind: str, overrides: list[str]) -> dict[str, str]:
    """role -> column name: the role names themselves unless ``role=column`` says otherwise."""
    mapping = {role: role for role in KIND_ROLES[kind]}
    for item in overrides:
        role, _, column = item.partition("=")
        role, column = role.strip(), column.strip()
        if role not in mapping:
            raise DataError(f"task.fields: a {kind} task has no role {role!r} (its roles: {', '.join(KIND_ROLES[kind])})")
        mapping[role] = column
    return mapping


def format_of(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    suffix = path.suffix.lower()
    return {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "squad", ".csv": "csv", ".tsv": "tsv", ".txt": "tsv"}.get(suffix, "jsonl")


def load_examples(kind: str, paths: list[Path] | list[str], fmt: str = "auto", fields: list[str] | None = None) -> list[Example]:
    if kind not in KIND_ROLES:
        raise DataError(f"task kind {kind!r} has no examples to load")
    mapping = field_mapping(kind, fields or [])
    out: list[Example] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise DataError("does not exist", path)
        f = format_of(path, fmt)
        if f == "squad":
            if kind != "qa":
                raise DataError(f"SQuAD JSON holds questions and answers, not {kind} examples", path)
            out.extend(_squad(path))
        elif f == "jsonl":
            out.extend(_jsonl(path, kind, mapping))
        elif f == "csv":
            out.extend(_csv(path, kind, mapping, ","))
        elif f == "tsv":
            out.extend(_tsv_pairs(path, kind))
        else:
            raise DataError(f"unknown task format {f!r}", path)
    if not out:
        raise DataError(f"no {kind} examples in {', '.join(str(p) for p in paths)}")
    return out


MAX_ROW_BYTES = 16 << 20  # one example per line: a longer "line" is not an example, and must not fill memory
MAX_JSON_BYTES = 1 << 30  # SQuAD JSON is read whole; the largest public sets are a few tens of MB


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    report = detect_encoding(path)
    with path.open("rb") as f:
        n = 0
        while raw := f.readline(MAX_ROW_BYTES + 1):
            n += 1
            if len(raw) > MAX_ROW_BYTES and not raw.endswith(b"\n"):
                raise DataError(f"this line is longer than {MAX_ROW_BYTES >> 20} MiB, far too long for one example; "
                                "is the file one example per line?", path, n)
            try:
                text = raw.decode(report.codec)
            except UnicodeDecodeError as e:
                raise DataError(f"bytes {raw[e.start:e.start + 4]!r} cannot be decoded as {report.label}", path, n) from None
            yield n, text.lstrip("\ufeff") if n == 1 else text


def _text(value: object, role: str, column: str, path: Path, line: int) -> str:
    if isinstance(value, str):
        return value
    if role == "label" and isinstance(value, int | float | bool):
        return str(int(value) if isinstance(value, bool) else value)
    raise DataError(f"{column!r} holds {type(value).__name__}, not text", path, line)


def _make(kind: str, get: dict[str, str], path: Path, line: int, starts: int = -1) -> Example:
    if kind == "classify":
        return Example(get["text"], get["label"], path=str(path), line=line)
    if kind == "translate":
        return Example(get["source"], get["target"], path=str(path), line=line)
    if kind == "summarize":
        return Example(get["document"], get["summary"], path=str(path), line=line)
    return Example(get["context"], get["answer"], question=get["question"], references=(get["answer"],),
                   answer_start=starts, path=str(path), line=line)


def _jsonl(path: Path, kind: str, mapping: dict[str, str]) -> Iterator[Example]:
    for n, line in _lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"not valid JSON: {e.msg} (column {e.colno})", path, n) from None
        if not isinstance(row, dict):
            raise DataError(f"expected a JSON object, found {type(row).__name__}", path, n)
        get = {}
        for role, column in mapping.items():
            if column not in row:
                raise DataError(f"no field {column!r} for {role} (this row has: {', '.join(list(row)[:12])}); map it in task.fields", path, n)
            get[role] = _text(row[column], role, column, path, n)
        example = _make(kind, get, path, n, int(row.get("answer_start", -1)) if kind == "qa" else -1)
        if kind == "summarize" and isinstance(row.get("references"), list):
            example = Example(example.source, example.target, references=tuple(str(r) for r in row["references"]),
                              path=example.path, line=example.line)
        yield example


def _squad(path: Path) -> Iterator[Example]:
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise DataError(f"is {size / 2**30:.1f} GiB; a SQuAD JSON file is read whole and may be at most "
                        f"{MAX_JSON_BYTES >> 30} GiB. Convert it to JSONL (one question per line)", path)
    try:
        data = json.loads(path.read_bytes().decode(detect_encoding(path).codec))
    except json.JSONDecodeError as e:
        raise DataError(f"not valid JSON: {e.msg}", path, e.lineno) from None
    articles = data.get("data") if isinstance(data, dict) else None
    if not isinstance(articles, list):
        raise DataError('not SQuAD JSON: expected {"data": [{"paragraphs": [...]}]}', path)
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            context = paragraph.get("context")
            for q, qa in enumerate(paragraph.get("qas", [])):
                where = f"article {a + 1}, paragraph {p + 1}, question {q + 1}"
                answers = qa.get("answers") or []
                if not isinstance(context, str) or not isinstance(qa.get("question"), str) or not answers:
                    raise DataError(f"{where}: needs a context, a question and at least one answer", path)
                texts = tuple(str(x.get("text", "")) for x in answers)
                yield Example(context, texts[0], question=qa["question"], references=texts,
                              answer_start=int(answers[0].get("answer_start", -1)), path=str(path), line=0)


def _csv(path: Path, kind: str, mapping: dict[str, str], delimiter: str) -> Iterator[Example]:
    report = detect_encoding(path)
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise DataError(f"is {size / 2**30:.1f} GiB; task examples are held in memory, so a CSV may be at most "
                        f"{MAX_JSON_BYTES >> 30} GiB", path)
    raw = path.read_bytes()
    try:
        text = raw.decode(report.codec).lstrip("\ufeff")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(f"bytes {raw[e.start:e.start + 4]!r} cannot be decoded as {report.label}", path, line) from None
    # strict: an unclosed quote or text after a closing quote is an error, not a silent merge of rows.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError("the file is empty", path) from None
        index = {}
        for role, column in mapping.items():
            if column not in header:
                raise DataError(f"no column {column!r} for {role}; the header has {', '.join(map(repr, header[:20]))}. Map it in task.fields", path, 1)
            index[role] = header.index(column)
        start = reader.line_num + 1
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) < len(header):
                raise DataError(f"row has {len(row)} fields, the header {len(header)}", path, line)
            yield _make(kind, {role: row[i] for role, i in index.items()}, path, line)
    except csv.Error as e:
        raise DataError(f"malformed CSV: {e} (a quote that is never closed starts a field that runs to the end)", path,
                        start if "start" in locals() else 1) from None


def _tsv_pairs(path: Path, kind: str) -> Iterator[Example]:
    """Tab-separated columns in role order (Tatoeba/manythings: English, translation, attribution)."""
    roles = KIND_ROLES[kind]
    for n, line in _lines(path):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < len(roles):
            raise DataError(f"expected {len(roles)} tab-separated columns ({', '.join(roles)}), found {len(cols)}", path, n)
        yield _make(kind, dict(zip(roles, cols, strict=False)), path, n)
