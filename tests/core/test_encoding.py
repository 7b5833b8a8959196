from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from studio.core.data.encoding import detect_encoding
from studio.core.errors import DataError

CHINESE = "滚滚长江东逝水，浪花淘尽英雄。是非成败转头空。\n青山依旧在，几度夕阳红。\n"
FRENCH = "Le cœur a ses raisons que la raison ne connaît point.\nÉté, café, naïve.\n"


@pytest.mark.parametrize(
    ("data", "codec", "label"),
    [
        (FRENCH.encode("utf-8"), "utf-8", "UTF-8"),
        (codecs.BOM_UTF8 + FRENCH.encode("utf-8"), "utf-8-sig", "UTF-8 with BOM"),
        (FRENCH.encode("utf-16"), "utf-16", "UTF-16 (little-endian, BOM)"),
        ("plain ascii text\n".encode("utf-16-le"), "utf-16-le", "UTF-16 (little-endian)"),
        (CHINESE.encode("gb18030"), "gb18030", "GB18030 (GBK-compatible)"),
        (CHINESE.encode("gbk"), "gb18030", "GB18030 (GBK-compatible)"),
        (FRENCH.replace("œ", "oe").encode("latin-1"), "latin-1", "Latin-1"),
    ],
)
def test_detects_and_decodes(tmp_path: Path, data: bytes, codec: str, label: str) -> None:
    path = tmp_path / "corpus.txt"
    path.write_bytes(data)
    report = detect_encoding(path)
    assert (report.codec, report.label) == (codec, label)
    assert data.decode(report.codec).lstrip("\ufeff").replace("oe", "œ") in (FRENCH, CHINESE, "plain ascii text\n")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.txt: the file is empty"):
        detect_encoding(path)


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(DataError, match=r"model\.bin: looks like a binary file"):
        detect_encoding(path)


def test_corrupt_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "damaged.txt"
    path.write_bytes("première ligne\ndeuxième ligne\n".encode() + b"troisi\xe8me \xff ligne\n" + "quatrième\n".encode())
    with pytest.raises(DataError) as e:
        detect_encoding(path)
    assert "damaged.txt, line 3:" in str(e.value)
    assert "not valid UTF-8" in str(e.value)


def test_declared_encoding_is_used(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_bytes(CHINESE.encode("gbk"))
    assert detect_encoding(path, "gbk").codec == "gbk"
    with pytest.raises(DataError, match="unknown encoding"):
        detect_encoding(path, "klingon-8")
