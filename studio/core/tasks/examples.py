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
from studio.core.i18n import _

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
        role, _sep, column = item.partition("=")
        role, column = role.strip(), column.strip()
        if role not in mapping:
            # Translators: task.fields is a setting; {kind} a task kind (classify, translate, ...) and the roles
            # (text, label, source, ...) are names used in that setting, all kept as is.
            message = _("task.fields: a {kind} task has no role {role} (its roles: {roles})")
            raise DataError(message.format(kind=kind, role=repr(role), roles=", ".join(KIND_ROLES[kind])))
        mapping[role] = column
    return mapping


def format_of(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    suffix = path.suffix.lower()
    return {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "squad", ".csv": "csv", ".tsv": "tsv", ".txt": "tsv"}.get(suffix, "jsonl")


def load_examples(kind: str, paths: list[Path] | list[str], fmt: str = "auto", fields: list[str] | None = None,
                  limit: int | None = None) -> list[Example]:
    """Every example of the files (or the first ``limit``), or a DataError naming file and line."""
    if kind not in KIND_ROLES:
        raise DataError(_("task kind {kind} has no examples to load").format(kind=repr(kind)))
    mapping = field_mapping(kind, fields or [])
    out: list[Example] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            # Translators: put after a path: "data/x: does not exist".
            raise DataError(_("does not exist"), path)
        f = format_of(path, fmt)
        if f == "squad":
            if kind != "qa":
                # Translators: {kind} is a task kind (classify, translate, summarize).
                raise DataError(_("SQuAD JSON holds questions and answers, not {kind} examples").format(kind=kind), path)
            rows = _squad(path)
        elif f == "jsonl":
            rows = _jsonl(path, kind, mapping)
        elif f == "csv":
            rows = _csv(path, kind, mapping, ",")
        elif f == "tsv":
            rows = _tsv_pairs(path, kind)
        else:
            raise DataError(_("unknown task format {format}").format(format=repr(f)), path)
        for example in rows:
            out.append(example)
            if limit is not None and len(out) >= limit:
                return out
    if not out:
        # Translators: {kind} is a task kind (classify, translate, ...), {paths} the files.
        raise DataError(_("no {kind} examples in {paths}").format(kind=kind, paths=", ".join(str(p) for p in paths)))
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
                raise DataError(_("this line is longer than {size} MiB, far too long for one example; "
                                  "is the file one example per line?").format(size=MAX_ROW_BYTES >> 20), path, n)
            try:
                text = raw.decode(report.codec)
            except UnicodeDecodeError as e:
                # Translators: {bytes} are the bytes as Python writes them (b'\xff'), {encoding} an encoding's name.
                message = _("bytes {bytes} cannot be decoded as {encoding}")
                raise DataError(message.format(bytes=repr(raw[e.start:e.start + 4]), encoding=_(report.label)), path, n) from None
            yield n, text.lstrip("\ufeff") if n == 1 else text


def _text(value: object, role: str, column: str, path: Path, line: int) -> str:
    if isinstance(value, str):
        return value
    if role == "label" and isinstance(value, int | float | bool):
        return str(int(value) if isinstance(value, bool) else value)
    # Translators: {column} is a field's name; {type} a Python type name (int, list, dict).
    raise DataError(_("{column} holds {type}, not text").format(column=repr(column), type=type(value).__name__), path, line)


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
            raise DataError(_("not valid JSON: {reason} (column {column})").format(reason=e.msg, column=e.colno), path, n) from None
        if not isinstance(row, dict):
            # Translators: {type} is a Python type name (list, str, int).
            raise DataError(_("expected a JSON object, found {type}").format(type=type(row).__name__), path, n)
        get = {}
        for role, column in mapping.items():
            if column not in row:
                # Translators: {field} and {fields} are field names, {role} a role (text, label, ...); task.fields is a setting.
                message = _("no field {field} for {role} (this row has: {fields}); map it in task.fields")
                raise DataError(message.format(field=repr(column), role=role, fields=", ".join(list(row)[:12])), path, n)
            get[role] = _text(row[column], role, column, path, n)
        example = _make(kind, get, path, n, int(row.get("answer_start", -1)) if kind == "qa" else -1)
        if kind == "summarize" and isinstance(row.get("references"), list):
            example = Example(example.source, example.target, references=tuple(str(r) for r in row["references"]),
                              path=example.path, line=example.line)
        yield example


def _squad(path: Path) -> Iterator[Example]:
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise DataError(_("is {size:.1f} GiB; a SQuAD JSON file is read whole and may be at most "
                          "{limit} GiB. Convert it to JSONL (one question per line)").format(
                            size=size / 2**30, limit=MAX_JSON_BYTES >> 30), path)
    try:
        data = json.loads(path.read_bytes().decode(detect_encoding(path).codec))
    except json.JSONDecodeError as e:
        raise DataError(_("not valid JSON: {reason}").format(reason=e.msg), path, e.lineno) from None
    articles = data.get("data") if isinstance(data, dict) else None
    if not isinstance(articles, list):
        # Translators: {shape} is the JSON layout expected, written as is.
        message = _("not SQuAD JSON: expected {shape}").format(shape='{"data": [{"paragraphs": [...]}]}')
        raise DataError(message, path)
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(article.get("paragraphs", [])):
            context = paragraph.get("context")
            for q, qa in enumerate(paragraph.get("qas", [])):
                answers = qa.get("answers") or []
                if not isinstance(context, str) or not isinstance(qa.get("question"), str) or not answers:
                    message = _("article {article}, paragraph {paragraph}, question {question}: "
                                "needs a context, a question and at least one answer")
                    raise DataError(message.format(article=a + 1, paragraph=p + 1, question=q + 1), path)
                texts = tuple(str(x.get("text", "")) for x in answers)
                yield Example(context, texts[0], question=qa["question"], references=texts,
                              answer_start=int(answers[0].get("answer_start", -1)), path=str(path), line=0)


def _csv(path: Path, kind: str, mapping: dict[str, str], delimiter: str) -> Iterator[Example]:
    report = detect_encoding(path)
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise DataError(_("is {size:.1f} GiB; task examples are held in memory, so a CSV may be at most "
                          "{limit} GiB").format(size=size / 2**30, limit=MAX_JSON_BYTES >> 30), path)
    raw = path.read_bytes()
    try:
        text = raw.decode(report.codec).lstrip("\ufeff")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        message = _("bytes {bytes} cannot be decoded as {encoding}")
        raise DataError(message.format(bytes=repr(raw[e.start:e.start + 4]), encoding=_(report.label)), path, line) from None
    # strict: an unclosed quote or text after a closing quote is an error, not a silent merge of rows.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(_("the file is empty"), path) from None
        index = {}
        for role, column in mapping.items():
            if column not in header:
                # Translators: {column} and {header} are column names, {role} a role (text, label, ...); task.fields is a setting.
                message = _("no column {column} for {role}; the header has {header}. Map it in task.fields")
                raise DataError(message.format(column=repr(column), role=role, header=", ".join(map(repr, header[:20]))), path, 1)
            index[role] = header.index(column)
        start = reader.line_num + 1
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) < len(header):
                raise DataError(_("row has {count} fields, the header {header}").format(count=len(row), header=len(header)), path, line)
            yield _make(kind, {role: row[i] for role, i in index.items()}, path, line)
    except csv.Error as e:
        message = _("malformed CSV: {reason} (a quote that is never closed starts a field that runs to the end)")
        raise DataError(message.format(reason=e), path, start if "start" in locals() else 1) from None


def _tsv_pairs(path: Path, kind: str) -> Iterator[Example]:
    """Tab-separated columns in role order (Tatoeba/manythings: English, translation, attribution)."""
    roles = KIND_ROLES[kind]
    for n, line in _lines(path):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < len(roles):
            # Translators: {roles} names the columns' roles (source, target), kept as is.
            message = _("expected {count} tab-separated columns ({roles}), found {found}")
            raise DataError(message.format(count=len(roles), roles=", ".join(roles), found=len(cols)), path, n)
        yield _make(kind, dict(zip(roles, cols, strict=False)), path, n)
