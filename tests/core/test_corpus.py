from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.core.data.corpus import scan_corpus
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
    path = _write(tmp_path / "t.txt", "".join(f"line {i}\n" for i in range(100)))
    corpus = scan_corpus([path])
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
