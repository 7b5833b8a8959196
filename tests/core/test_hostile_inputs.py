"""A folder of hostile corpus files, generated here: each is read correctly, or stops with a DataError
that names the file (and the line, where there is one). Nothing else may escape: no traceback.

Every case goes through both ``scan_corpus`` and the whole ``prepare_corpus`` (scan, split,
tokenizer training, encoding into the token cache).
"""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from studio.core.config import DataConfig, TokenizerConfig
from studio.core.data import corpus as corpus_module
from studio.core.data.corpus import scan_corpus
from studio.core.data.prepare import prepare_corpus
from studio.core.errors import DataError
from tests.core.test_charsets import LEGACY

FRENCH = (
    "Le cœur a ses raisons que la raison ne connaît point.\n"
    "L'été dernier, nous avons visité la côte : les falaises, les phares et les ports de pêche.\n"
    "Les élèves préfèrent étudier à la bibliothèque où règne un silence agréable.\n"
)
CHINESE = "话说天下大势，分久必合，合久必分。\n周末七国分争，并入于秦。\n及秦灭之后，楚、汉分争，又并入于汉。\n"


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    text: str | None = None  # what must be read back (train + valid + test), or None for an error
    error: str = ""  # a regex the message must match after "<path>: " (or "<path>, line N: ")
    options: dict[str, Any] = field(default_factory=dict)  # DataConfig settings
    rows: list[str] | None = None  # for CSV/JSONL: the row texts that must be read


def _rows_jsonl(rows: list[str]) -> bytes:
    return "".join(json.dumps({"text": r}, ensure_ascii=False) + "\n" for r in rows).encode()


ROWS = [f"row number {i}, with some text" for i in range(30)]

CASES = [
    # empty, blank and binary files
    Case("empty.txt", b"", error=r"the file is empty"),
    Case("whitespace.txt", b" \n\t\n   \r\n", error=r"the file is empty"),
    Case("bom-only.txt", codecs.BOM_UTF8, error=r"holds no text"),
    Case("binary.txt", bytes(range(256)) * 40, error=r"looks like a binary file"),
    Case("nul-bytes.txt", b"hello\x00world\n" * 10, error=r"looks like a binary file, not text \(a NUL byte at offset 5\)"),
    Case("control-bytes.txt", bytes([1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16]) * 500, error=r"looks like a binary file"),
    Case("high-bytes.txt", bytes(range(128, 256)) * 8, error=r"cannot tell the encoding"),
    # every supported encoding
    Case("utf8.txt", FRENCH.encode("utf-8"), FRENCH),
    Case("utf8-bom.txt", codecs.BOM_UTF8 + FRENCH.encode("utf-8"), FRENCH),
    Case("utf16-le-bom.txt", codecs.BOM_UTF16_LE + FRENCH.encode("utf-16-le"), FRENCH),
    Case("utf16-be-bom.txt", codecs.BOM_UTF16_BE + FRENCH.encode("utf-16-be"), FRENCH),
    Case("utf16-le.txt", FRENCH.encode("utf-16-le"), FRENCH),
    Case("utf16-be.txt", FRENCH.encode("utf-16-be"), FRENCH),
    Case("utf16-crlf.txt", codecs.BOM_UTF16_LE + FRENCH.replace("\n", "\r\n").encode("utf-16-le"), FRENCH),
    Case("utf32-le-bom.txt", FRENCH.encode("utf-32"), FRENCH),
    Case("utf32-be-bom.txt", codecs.BOM_UTF32_BE + (FRENCH + CHINESE).encode("utf-32-be"), FRENCH + CHINESE),
    Case("gb18030.txt", CHINESE.encode("gb18030"), CHINESE),
    Case("gb18030-four-byte.txt", "€ ẞ 😀 中文\n".encode("gb18030") * 30, "€ ẞ 😀 中文\n" * 30, options={"encoding": "gb18030"}),
    *[Case(f"legacy-{k}-{codec}.txt", text.encode(codec), text) for k, (_lang, codec, text) in enumerate(LEGACY)],
    # line endings
    Case("crlf.txt", FRENCH.replace("\n", "\r\n").encode(), FRENCH),
    Case("cr-only.txt", b"one\rtwo\rthree\r" * 20, "one\rtwo\rthree\r" * 20),
    Case("no-final-newline.txt", FRENCH.rstrip("\n").encode(), FRENCH.rstrip("\n")),
    # damaged UTF-8, and bytes a declared encoding cannot read
    Case("damaged-utf8.txt", "première\ndeuxième\n".encode() + b"troisi\xe8me \xff ligne\n" + "quatrième\n".encode(),
         error=r"line 3: bytes .* are not valid UTF-8"),
    Case("cut-utf8.txt", b"plain ascii\n" * 30 + b"caf\xc3 au lait\n", error=r"line 31: bytes .* are not valid UTF-8"),
    Case("damaged-deep.txt", b"a fine ascii line\n" * 70_000 + b"bad \xc3\x28 here\n",
         error=r"line 70001: bytes b'\\xc3\(.*' cannot be decoded as UTF-8"),
    Case("declared-wrong.txt", FRENCH.encode("cp1252"), error=r"line 1: bytes .* cannot be decoded as UTF-8",
         options={"encoding": "utf-8"}),
    Case("utf16-odd-length.txt", codecs.BOM_UTF16_LE + FRENCH.encode("utf-16-le") + b"x",
         error=r"line 4: cannot be decoded as UTF-16 .*\(truncated data\)"),
    # JSONL
    Case("good.jsonl", _rows_jsonl(ROWS), rows=ROWS),
    Case("broken.jsonl", _rows_jsonl(ROWS[:2]) + b'{"text": "broken\n' + _rows_jsonl(ROWS[3:]), error=r"line 3: not valid JSON"),
    Case("broken-skipped.jsonl", _rows_jsonl(ROWS[:2]) + b'{"text": "broken\n' + _rows_jsonl(ROWS[3:]),
         rows=ROWS[:2] + ROWS[3:], options={"skip_bad_rows": True}),
    Case("not-objects.jsonl", _rows_jsonl(ROWS[:3]) + b'["a", "list"]\n', error=r"line 4: expected a JSON object, found an array"),
    Case("a-number.jsonl", _rows_jsonl(ROWS[:3]) + b"42\n", error=r"line 4: expected a JSON object, found a number"),
    Case("null.jsonl", b"null\n", error=r"line 1: expected a JSON object, found null"),
    Case("array.jsonl", b'[{"text": "a"},\n {"text": "b"}]\n', error=r"line 1: is a JSON array, not JSON Lines"),
    Case("field-not-text.jsonl", b'{"text": ["a"]}\n', error=r"line 1: field 'text' holds an array, not text"),
    Case("missing-field.jsonl", b'{"body": "a"}\n', error=r"line 1: no field 'text' \(this row has: body\)"),
    Case("deep.jsonl", b"[" * 200_000 + b"\n", error=r"line 1: not valid JSON: nested too deeply"),
    Case("huge-int.jsonl", b'{"text": "a", "n": ' + b"9" * 10_000 + b"}\n", error=r"line 1: not valid JSON: a number with more"),
    Case("mixed-skipped.jsonl", _rows_jsonl(ROWS[:2]) + b"42\nnull\n[1]\n{}\n" + _rows_jsonl(ROWS[2:]),
         rows=ROWS, options={"skip_bad_rows": True}),
    # CSV: quoting, short rows, the column
    Case("good.csv", ("id,text\n" + "".join(f'{i},"{r}"\n' for i, r in enumerate(ROWS))).encode(), rows=ROWS),
    Case("open-quote.csv", ("id,text\n" + "".join(f"{i},{r.replace(',', ';')}\n" for i, r in enumerate(ROWS[:5]))
                            + '5,"this quote\nis never closed\n6,and the file ends\n').encode(),
         error=r"line 7: malformed CSV: the quote opened on line 7 is never closed"),
    Case("text-after-quote.csv", b'id,text\n1,"quoted" then more\n', error=r"line 2: malformed CSV: ',' expected after '\"'"),
    Case("header-quote.csv", b'"id,text\n1,a\n', error=r"line 1: malformed CSV header: unexpected end of data"),
    Case("short-row.csv", b"id,text\n1,fine\n2\n3,also fine\n", error=r"line 3: row has 1 fields, so no 'text' \(field 2\)"),
    Case("short-row-skipped.csv", b"id,text\n1,fine\n2\n3,also fine\n" + b"".join(b"%d,more %d\n" % (i, i) for i in range(4, 30)),
         rows=["fine", "also fine"] + [f"more {i}" for i in range(4, 30)], options={"skip_bad_rows": True}),
    Case("quote-errors-skipped.csv", b'id,text\n1,fine\n2,"bad" quote\n3,"never closed\n',
         rows=["fine"], options={"skip_bad_rows": True, "valid_fraction": 0.0}),
    Case("no-column.csv", b"id,body\n1,a\n", error=r"line 1: no column 'text'; the header has 'id', 'body'"),
    Case("header-only.csv", b"id,text\n", error=r"holds no rows"),
    Case("utf16.csv", codecs.BOM_UTF16_LE + "id,text\n1,été\n2,\"deux\nlignes\"\n".encode("utf-16-le"),
         rows=["été", "deux\nlignes"], options={"valid_fraction": 0.0}),
    Case("tabs.tsv", b'text\tlabel\n"quoted\ttab"\t1\nplain\t2\n', rows=["quoted\ttab", "plain"], options={"valid_fraction": 0.0}),
]


def _read_back(prepared: Any) -> str:
    return "".join(prepared.tokenizer.decode(prepared.tokens(s)) for s in ("train", "valid", "test"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(tmp_path: Path, case: Case) -> None:
    folder = tmp_path / "hostile"
    folder.mkdir()
    path = folder / case.name
    path.write_bytes(case.data)
    # Plain text is read back with no held-out share: characters first seen in validation would
    # be <unk> to a tokenizer trained on the rest (the split has tests of its own).
    options = {"valid_fraction": 0.0} if case.rows is None and not case.error else {}
    data = DataConfig(paths=[str(path)], **{**options, **case.options})
    tok = TokenizerConfig(kind="char", vocab_size=100_000)
    if case.error:
        for attempt in (
            lambda: scan_corpus([path], encoding=data.encoding, skip_bad_rows=data.skip_bad_rows),
            lambda: prepare_corpus(data, tok, cache_root=tmp_path / "cache"),
        ):
            with pytest.raises(DataError) as e:
                attempt()
            message = str(e.value)
            assert message.startswith(f"{path}: ") or message.startswith(f"{path}, line "), message
            assert e.value.path == path
            rest = message[len(str(path)) :].removeprefix(": ").removeprefix(", ")
            assert __import__("re").match(case.error, rest), message
        return
    corpus = scan_corpus([path], encoding=data.encoding, skip_bad_rows=data.skip_bad_rows)
    records = [r.text for r in corpus.records()]
    if case.rows is not None:
        assert records == case.rows
        prepared = prepare_corpus(data, tok, cache_root=tmp_path / "cache")
        assert prepared.stats.total.records == len(case.rows)
    else:
        assert "".join(records) == case.text
        prepared = prepare_corpus(data, tok, cache_root=tmp_path / "cache")
        assert _read_back(prepared) == case.text


def test_the_whole_folder_at_once_stops_at_the_first_bad_file(tmp_path: Path) -> None:
    folder = tmp_path / "hostile"
    folder.mkdir()
    for k, case in enumerate(c for c in CASES if c.name.endswith(".txt")):
        (folder / f"{k:03d}-{case.name}").write_bytes(case.data)
    with pytest.raises(DataError) as e:
        prepare_corpus(DataConfig(paths=[str(folder)]), TokenizerConfig(kind="char"), cache_root=tmp_path / "cache")
    assert str(e.value).startswith(str(folder / "000-empty.txt"))


def test_a_row_over_the_bound_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus_module, "MAX_ROW_CHARS", 1 << 20)
    path = tmp_path / "huge.jsonl"
    path.write_bytes(_rows_jsonl(["short"]) + _rows_jsonl(["x" * (2 << 20)]))
    with pytest.raises(DataError, match=r"huge\.jsonl, line 2: the line is longer than 1 Mi characters"):
        scan_corpus([path])


_MEASURE = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    from studio.core.config import DataConfig, TokenizerConfig
    from studio.core.data.prepare import prepare_corpus
    p = prepare_corpus(DataConfig(paths=[sys.argv[1]], valid_fraction=0.1), TokenizerConfig(kind="char"),
                       cache_root=Path(sys.argv[2]))
    train, valid = p.tokens("train"), p.tokens("valid")
    # VmHWM is this process's own peak; ru_maxrss on Linux also counts the parent's size at fork.
    status = Path("/proc/self/status")
    if status.exists():
        peak_mb = int(next(x for x in status.read_text().splitlines() if x.startswith("VmHWM:")).split()[1]) / 1024
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak_mb = peak / (1 << 20) if sys.platform == "darwin" else peak / 1024
    print(json.dumps({
        "peak_mb": peak_mb,
        "tokens": [len(train), len(valid)],
        "chars": [p.stats.splits[s].characters for s in ("train", "valid")],
        "lines": [p.stats.splits[s].records for s in ("train", "valid")],
        "head": p.tokenizer.decode(train[:300]), "train_tail": p.tokenizer.decode(train[-301:]),
        "valid_head": p.tokenizer.decode(valid[:300]), "valid_tail": p.tokenizer.decode(valid[-301:]),
    }))
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="measures peak memory with the resource module")
def test_a_100_mb_single_line_streams_in_bounded_memory(tmp_path: Path) -> None:
    """A 300 MB single line used to take 7.7 GB (a whole line decoded, then a Python int per character)."""
    import random

    rng = random.Random(5)
    words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "été", "café", "中文", "naïve"]
    chunk = " ".join(rng.choice(words) for _ in range(180_000)) + " "
    repeats = (100 << 20) // len(chunk.encode()) + 1
    path = tmp_path / "one-line.txt"
    with path.open("w", encoding="utf-8") as f:
        for _ in range(repeats):
            f.write(chunk)
    total = len(chunk) * repeats
    assert path.stat().st_size >= 100 << 20
    result = subprocess.run([sys.executable, "-c", _MEASURE, str(path), str(tmp_path / "cache")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    assert out["peak_mb"] < 400, out["peak_mb"]
    train_chars, valid_chars = out["chars"]
    assert train_chars + valid_chars == total
    assert abs(valid_chars - 0.1 * total) < 100  # cut inside the line, at a space near 90%
    assert out["tokens"] == [train_chars + 1, valid_chars + 1]  # one <eos> closes each split
    assert out["lines"] == [1, 1]
    assert out["head"] == chunk[:300]
    assert out["valid_head"].startswith(" ") and not out["train_tail"].endswith(" ")
    text_end = (chunk * 2)[-300:]
    assert out["valid_tail"] == text_end


# ---- task example files (fine-tuning) ------------------------------------------------------------


@pytest.mark.parametrize(("content", "message"), [
    (b'text,label\n"good,1\nbad,0\n', "line 2: malformed CSV"),
    (b"text,label\ngood\n", "line 2: row has 1 fields"),
    (b"text,label\ncaf\xe9 au lait,1\n\xe9\xe8\xff\xfe,0\n", "cannot be decoded"),
])
def test_task_csv_errors_name_the_line(tmp_path: Path, content: bytes, message: str) -> None:
    from studio.core.tasks.examples import load_examples

    path = tmp_path / "examples.csv"
    path.write_bytes(content)
    try:
        load_examples("classify", [path], "csv", [])
    except DataError as e:
        assert str(path) in str(e) and (message in str(e) or "not valid UTF-8" in str(e)), str(e)
    else:
        if message != "cannot be decoded":  # a legacy code page may legitimately read it
            pytest.fail("accepted a malformed file")


def test_a_task_jsonl_line_too_long_for_one_example_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.core.tasks import examples

    monkeypatch.setattr(examples, "MAX_ROW_BYTES", 1000)
    path = tmp_path / "examples.jsonl"
    path.write_text('{"text": "ok", "label": "a"}\n{"text": "' + "x" * 5000 + '", "label": "b"}\n')
    with pytest.raises(DataError, match="line 2: this line is longer than"):
        examples.load_examples("classify", [path], "jsonl", [])
