from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.core.data import corpus as corpus_module
from studio.core.data.corpus import Record, scan_corpus, split_text, text_pieces
from studio.core.data.splits import Splitter
from studio.core.errors import DataError


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_text_files_and_folders(tmp_path: Path) -> None:
    folder = tmp_path / "books"
    folder.mkdir()
    _write(folder / "a.txt", "one\ntwo\n")
    _write(folder / "b.md", "three\r\nfour\r\n")
    _write(folder / ".hidden.txt", "secret\n")
    (folder / "image.png").write_bytes(b"\x89PNG\x00\x00")
    corpus = scan_corpus([folder])
    assert [f.path.name for f in corpus.files] == ["a.txt", "b.md"]
    texts = [r.text for r in corpus.records()]
    assert texts == ["one\n", "two\n", "three\n", "four\n"]  # CRLF normalised


def test_csv_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "reviews.csv", 'id,review\n1,"Great, really great"\n2,"Multi\nline"\n')
    corpus = scan_corpus([path], column="review")
    records = list(corpus.records())
    assert [r.text for r in records] == ["Great, really great", "Multi\nline"]
    assert [r.line for r in records] == [2, 3]


def test_csv_without_the_column_names_file_and_header(tmp_path: Path) -> None:
    path = _write(tmp_path / "reviews.csv", "id,review\n1,good\n")
    with pytest.raises(DataError) as e:
        scan_corpus([path], column="text")
    assert "reviews.csv, line 1: no column 'text'; the header has 'id', 'review'" in str(e.value)


def test_tsv_by_extension(tmp_path: Path) -> None:
    path = _write(tmp_path / "pairs.tsv", "text\tlabel\nhello there\t1\n")
    assert [r.text for r in scan_corpus([path]).records()] == ["hello there"]


def test_jsonl_field_and_broken_line(tmp_path: Path) -> None:
    rows = [json.dumps({"body": f"row {i}"}) for i in range(5)]
    good = _write(tmp_path / "good.jsonl", "\n".join(rows) + "\n")
    assert [r.text for r in scan_corpus([good], json_field="body").records()] == [f"row {i}" for i in range(5)]
    rows[3] = '{"body": "broken'
    bad = _write(tmp_path / "bad.jsonl", "\n".join(rows) + "\n")
    with pytest.raises(DataError) as e:
        scan_corpus([bad], json_field="body")
    assert "bad.jsonl, line 4: not valid JSON" in str(e.value)
    corpus = scan_corpus([bad], json_field="body", skip_bad_rows=True)
    assert corpus.files[0].skipped_rows == 1 and corpus.files[0].units == 4


def test_jsonl_missing_field(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.jsonl", '{"text": "a"}\n{"txt": "b"}\n')
    with pytest.raises(DataError, match=r"x\.jsonl, line 2: no field 'text' \(this row has: txt\)"):
        scan_corpus([path])


def test_gb18030_corpus_reads_back(tmp_path: Path) -> None:
    text = "话说天下大势，分久必合，合久必分。\n周末七国分争，并入于秦。\n"
    path = _write(tmp_path / "sanguo.txt", text, "gb18030")
    corpus = scan_corpus([path])
    assert corpus.files[0].encoding.codec == "gb18030"
    assert "".join(r.text for r in corpus.records()) == text


def test_undecodable_bytes_deep_in_a_declared_file(tmp_path: Path) -> None:
    path = tmp_path / "late.txt"
    path.write_bytes(b"fine line\n" * 50 + b"bad \xff\xfe byte\n")
    with pytest.raises(DataError, match=r"late\.txt, line 51: bytes .* cannot be decoded as UTF-8"):
        scan_corpus([path], encoding="utf-8")


def test_missing_and_empty_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        scan_corpus([tmp_path / "nope.txt"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no text"):
        scan_corpus([tmp_path / "empty"])
    blank = _write(tmp_path / "blank.txt", "\n\n   \n")
    with pytest.raises(DataError, match="blank.txt: the file is empty"):
        scan_corpus([blank])


def test_tail_split_keeps_the_end_for_validation(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.txt", "".join(f"line {i:02d}\n" for i in range(100)))  # 8 characters each
    corpus = scan_corpus([path])
    assert corpus.files[0].chars == 800
    splitter = Splitter(corpus, 0.1, 0.1, "auto", 0)
    assert splitter.mode == "tail"
    splits = [splitter.split_of(r) for r in corpus.records()]
    assert splits == ["train"] * 80 + ["valid"] * 10 + ["test"] * 10


def test_shuffle_split_is_seeded_and_exact(tmp_path: Path) -> None:
    path = _write(tmp_path / "rows.jsonl", "".join(json.dumps({"text": f"row {i}"}) + "\n" for i in range(200)))
    corpus = scan_corpus([path])
    a = [Splitter(corpus, 0.1, 0.05, "auto", 7).split_of(r) for r in corpus.records()]
    b = [Splitter(corpus, 0.1, 0.05, "auto", 7).split_of(r) for r in corpus.records()]
    c = [Splitter(corpus, 0.1, 0.05, "auto", 8).split_of(r) for r in corpus.records()]
    assert a == b != c
    assert (a.count("valid"), a.count("test"), a.count("train")) == (20, 10, 170)


# ---- the tail split by characters ----------------------------------------------------------------


def _routed(splitter: Splitter, records: list[Record]) -> dict[str, str]:
    out = {"train": "", "valid": "", "test": ""}
    for record in records:
        for split, part in splitter.route(record):
            out[split] += part.text
    return out


def test_tail_split_never_cuts_a_short_line(tmp_path: Path) -> None:
    lines = [f"{'word ' * (i % 7 + 1)}{i}\n" for i in range(200)]
    path = _write(tmp_path / "t.txt", "".join(lines))
    corpus = scan_corpus([path])
    parts = _routed(Splitter(corpus, 0.1, 0.1, "tail", 0), list(corpus.records()))
    assert parts["train"] + parts["valid"] + parts["test"] == "".join(lines)
    for text in parts.values():
        assert text.endswith("\n") and text.count("\n") == sum(1 for line in lines if line in text)
    total = len("".join(lines))
    assert abs(len(parts["valid"]) - 0.1 * total) < 40 and abs(len(parts["test"]) - 0.1 * total) < 40


def test_a_file_without_a_newline_splits_inside_its_line(tmp_path: Path) -> None:
    """Used to send the file's one line to validation and report an empty training split."""
    text = " ".join(f"word{i}" for i in range(2000))  # about 15,000 characters, no newline
    path = _write(tmp_path / "one-line.txt", text)
    corpus = scan_corpus([path])
    assert corpus.files[0].lines == 1 and corpus.files[0].chars == len(text)
    parts = _routed(Splitter(corpus, 0.1, 0.0, "tail", 0), list(corpus.records()))
    assert parts["train"] + parts["valid"] == text
    assert abs(len(parts["valid"]) - 0.1 * len(text)) < 10
    assert parts["valid"].startswith(" word") and not parts["train"].endswith(" ")  # cut before a space


def test_the_last_short_line_of_a_small_file_is_still_held_out(tmp_path: Path) -> None:
    path = _write(tmp_path / "small.txt", "first line here\nsecond line here\nthird line\n")
    corpus = scan_corpus([path])
    parts = _routed(Splitter(corpus, 0.1, 0.0, "tail", 0), list(corpus.records()))
    assert parts == {"train": "first line here\nsecond line here\n", "valid": "third line\n", "test": ""}


def test_the_tail_cut_is_deterministic_and_streams(tmp_path: Path) -> None:
    text = "".join(f"paragraph {i} " + "x" * 3000 + "\n" for i in range(5))  # long lines: cut inside
    path = _write(tmp_path / "long.txt", text)
    corpus = scan_corpus([path])
    first = [(s, r.text) for rec in corpus.records() for s, r in Splitter(corpus, 0.2, 0.1, "tail", 0).route(rec)]
    second = [(s, r.text) for rec in corpus.records() for s, r in Splitter(corpus, 0.2, 0.1, "tail", 0).route(rec)]
    assert first == second
    assert "".join(t for _, t in first) == text
    assert [s for s, _ in first] == sorted((s for s, _ in first), key=["train", "valid", "test"].index)


# ---- long lines come in bounded pieces -----------------------------------------------------------


def test_a_long_line_comes_in_pieces_that_join_to_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus_module, "PIECE_CHARS", 100)
    monkeypatch.setattr(corpus_module, "CUT_WINDOW", 30)
    monkeypatch.setattr(corpus_module, "READ_BYTES", 7)  # reads cut multi-byte characters and "\r\n"
    long_line = " ".join(f"mot{i} été 中文" for i in range(100)) + "\r\n"
    text = "short\r\n" + long_line + "tail without newline"
    path = tmp_path / "long.txt"
    path.write_bytes(text.encode("utf-8"))
    corpus = scan_corpus([path])
    records = list(corpus.records())
    assert "".join(r.text for r in records) == text.replace("\r\n", "\n")
    assert corpus.files[0].chars == len(text.replace("\r\n", "\n")) and corpus.files[0].lines == 3
    pieces = [r for r in records if r.line == 2]
    assert len(pieces) > 5 and all(len(r.text) <= 100 for r in pieces)
    assert pieces[0].first and not pieces[0].last and pieces[-1].last and not pieces[-1].first
    assert {r.doc for r in records} == {0}
    assert all(r.text.startswith(" ") for r in pieces[1:])  # cut just before a space
    assert [r.offset for r in records] == [sum(len(q.text) for q in records[:k]) for k in range(len(records))]


@pytest.mark.parametrize("codec", ["utf-8", "gb18030", "utf-16", "utf-16-le", "shift_jis"])
def test_small_reads_cut_characters_harmlessly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, codec: str) -> None:
    monkeypatch.setattr(corpus_module, "READ_BYTES", 5)
    text = "日本語のテキスト\r\nと二行目\n" * 30 + "最後"
    path = tmp_path / "t.txt"
    path.write_bytes(text.encode(codec))
    lines = list(text_pieces(path, scan_corpus([path], encoding=codec).files[0].encoding))
    assert "".join(t for _, t, _, _ in lines) == text.replace("\r\n", "\n")
    assert [n for n, _, _, last in lines if last] == list(range(1, 62))


def test_undecodable_bytes_name_line_and_byte_across_small_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus_module, "READ_BYTES", 4)
    path = tmp_path / "late.txt"
    path.write_bytes(b"fine line\n" * 5 + b"0123456789 bad \xff byte\n")
    with pytest.raises(DataError, match=r"late\.txt, line 6: bytes b'\\xff.*' cannot be decoded as UTF-8 \(byte 16 of"):
        scan_corpus([path], encoding="utf-8")


def test_split_text_prefers_whitespace_then_punctuation() -> None:
    assert [p for p, _, _ in split_text("aaaa bbbb cccc", 10, 10)] == ["aaaa bbbb", " cccc"]
    assert [p for p, _, _ in split_text("中文中文，中文中文中文", 6, 6)] == ["中文中文", "，中文中文中", "文"]
    assert [p for p, _, _ in split_text("x" * 25, 10, 10)] == ["x" * 10, "x" * 10, "x" * 5]
    assert [(f, la) for _, f, la in split_text("x" * 25, 10, 10)] == [(True, False), (False, False), (False, True)]


# ---- CSV and JSONL: strict, bounded rows ---------------------------------------------------------


def test_unterminated_csv_quote_names_the_line_it_opened(tmp_path: Path) -> None:
    """Used to be accepted silently: the rest of the file became one row's text."""
    path = _write(tmp_path / "open.csv", 'id,text\n1,fine\n2,"two\nlines"\n3,"never closed\n4,more\n5,end\n')
    with pytest.raises(DataError, match=r"open\.csv, line 5: malformed CSV: the quote opened on line 5 is never closed"):
        scan_corpus([path])
    corpus = scan_corpus([path], skip_bad_rows=True)
    assert [r.text for r in corpus.records()] == ["fine", "two\nlines"] and corpus.files[0].skipped_rows == 1


def test_text_after_a_closing_csv_quote_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "after.csv", 'id,text\n1,fine\n2,"abc"def\n3,ok\n')
    with pytest.raises(DataError, match=r"after\.csv, line 3: malformed CSV: ',' expected after '\"'"):
        scan_corpus([path])
    assert [r.text for r in scan_corpus([path], skip_bad_rows=True).records()] == ["fine", "ok"]


def test_a_csv_row_over_the_bound_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus_module, "MAX_ROW_CHARS", 1000)
    path = _write(tmp_path / "huge.csv", "id,text\n1,fine\n2," + "x" * 2000 + "\n")
    with pytest.raises(DataError, match=r"huge\.csv, line 3: the row is longer than 1,000 characters"):
        scan_corpus([path])
    quoted = _write(tmp_path / "runaway.csv", 'id,text\n1,fine\n2,"opened\n' + "more text\n" * 200)
    with pytest.raises(DataError, match=r"runaway\.csv, line 3: the row is longer .*the quote opened on line 3"):
        scan_corpus([quoted])


def test_a_jsonl_row_over_the_bound_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus_module, "MAX_ROW_CHARS", 1000)
    path = _write(tmp_path / "huge.jsonl", '{"text": "ok"}\n{"text": "' + "x" * 2000 + '"}\n')
    with pytest.raises(DataError, match=r"huge\.jsonl, line 2: the line is longer than 1,000 characters"):
        scan_corpus([path])


def test_a_long_row_comes_in_pieces_of_one_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus_module, "PIECE_CHARS", 50)
    body = " ".join(f"w{i}" for i in range(100))
    path = _write(tmp_path / "rows.jsonl", json.dumps({"text": "short"}) + "\n" + json.dumps({"text": body}) + "\n")
    records = list(scan_corpus([path]).records())
    assert records[0].text == "short" and records[0].whole
    rest = records[1:]
    assert "".join(r.text for r in rest) == body and len(rest) > 3
    assert {(r.line, r.doc) for r in rest} == {(2, 1)} and rest[0].first and rest[-1].last


def test_jsonl_values_that_are_not_rows(tmp_path: Path) -> None:
    cases = {
        '{"text": "ok"}\n42\n': r"line 2: expected a JSON object, found a number",
        '[{"text": "ok"}]\n': r"line 1: is a JSON array, not JSON Lines",
        '{"text": 5}\n': r"line 1: field 'text' holds a number, not text",
        '{"text": "ok"}\n' + "[" * 100_000 + "\n": r"line 2: not valid JSON: nested too deeply",
        '{"text": "ok", "n": ' + "1" * 5000 + "}\n": r"line 1: not valid JSON: a number with more than 4,300 digits",
    }
    for k, (text, message) in enumerate(cases.items()):
        path = _write(tmp_path / f"bad{k}.jsonl", text)
        with pytest.raises(DataError, match=rf"bad{k}\.jsonl, {message}"):
            scan_corpus([path])
