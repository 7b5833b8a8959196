"""Find a text file's encoding among the ones people actually hand us, or say clearly why not.

General-purpose detectors guess among dozens of codecs and will happily decode a corrupt UTF-8
file as Cyrillic. Studio needs one of five answers (UTF-8, UTF-8 with BOM, UTF-16, GB18030/GBK,
Latin-1), a named line for corrupt files, and a firm "this is binary", so the rules are explicit:

1. A byte-order mark decides.
2. NUL bytes mean UTF-16 (if they sit at alternating positions) or a binary file.
3. Strict UTF-8.
4. Bytes that are *mostly* valid UTF-8 multi-byte sequences with a few broken ones are a corrupt
   UTF-8 file: that is an error naming the line, never a silent Latin-1 reading.
5. Strict GB18030 whose non-ASCII characters are overwhelmingly CJK text and punctuation.
6. Latin-1, which can decode anything, last.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

from studio.core.errors import DataError

SAMPLE_BYTES = 1 << 20

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8 with BOM"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16 (little-endian, BOM)"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16 (big-endian, BOM)"),
)
_VALID_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16 (little-endian)",
    "utf-16-be": "UTF-16 (big-endian)",
    "gb18030": "GB18030 (GBK-compatible)",
    "latin-1": "Latin-1",
}


@dataclass(frozen=True)
class EncodingReport:
    codec: str  # a name Python's codecs accept
    label: str  # what the user sees
    reason: str  # why this one was chosen

    @property
    def line_safe(self) -> bool:
        """True when b"\\n" can only mean a newline, so files can be split into lines as bytes."""
        return not self.codec.startswith("utf-16")


def label_for(codec: str) -> str:
    return _LABELS.get(codec, codec)


def detect_encoding(path: Path, declared: str = "auto") -> EncodingReport:
    """Decide how to decode ``path``. Raises DataError for empty, binary or corrupt files."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            sample = f.read(SAMPLE_BYTES)
    except OSError as e:
        raise DataError(f"cannot be read ({e.strerror or e})", path) from None
    if size == 0 or not sample.strip():
        raise DataError("the file is empty", path)

    if declared != "auto":
        try:
            codec = codecs.lookup(declared).name
        except LookupError:
            raise DataError(f"unknown encoding {declared!r} (data.encoding)", path) from None
        return EncodingReport(codec, label_for(codec), "set in the configuration")

    for bom, codec, label in _BOMS:
        if sample.startswith(bom):
            return EncodingReport(codec, label, "byte-order mark")

    if b"\x00" in sample:
        utf16 = _utf16_without_bom(sample)
        if utf16:
            return EncodingReport(utf16, label_for(utf16), "NUL bytes at alternating positions")
        offset = sample.index(b"\x00")
        raise DataError(f"looks like a binary file, not text (a NUL byte at offset {offset})", path)

    truncated = len(sample) < size
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(sample, final=not truncated)
        return EncodingReport("utf-8", "UTF-8", "valid UTF-8")
    except UnicodeDecodeError as e:
        bad_at = e.start

    # GB18030 text contains some byte pairs that happen to be valid UTF-8 (about one per four
    # invalid ones in real Chinese prose); a damaged UTF-8 file has thousands per invalid one.
    valid_multibyte = len(_VALID_MULTIBYTE.findall(sample))
    invalid = _count_invalid_utf8(sample)
    damaged_utf8 = DataError(
        f"bytes {sample[bad_at:bad_at + 4]!r} are not valid UTF-8, though the rest of the file is UTF-8. "
        "The file may be damaged; fix it, or set data.encoding (for example latin-1) to read it anyway",
        path,
        sample.count(b"\n", 0, bad_at) + 1,
    )
    if valid_multibyte >= 4 * max(1, invalid):
        raise damaged_utf8

    if _plausible_gb18030(sample, truncated):
        return EncodingReport("gb18030", label_for("gb18030"), "decodes as GB18030 to Chinese text")
    if valid_multibyte >= max(1, invalid):
        raise damaged_utf8

    if _looks_binary(sample):
        raise DataError("looks like a binary file, not text (mostly control bytes)", path)
    return EncodingReport("latin-1", "Latin-1", "not UTF-8 or GB18030; Latin-1 reads any byte")


def _utf16_without_bom(sample: bytes) -> str | None:
    head = sample[:4096]
    even = head[0::2].count(0)
    odd = head[1::2].count(0)
    half = len(head) // 2
    if odd > 0.3 * half and even < 0.05 * half:
        return "utf-16-le"
    if even > 0.3 * half and odd < 0.05 * half:
        return "utf-16-be"
    return None


def _count_invalid_utf8(sample: bytes) -> int:
    # Each invalid sequence becomes one U+FFFD; subtract the U+FFFD characters genuinely encoded.
    return sample.decode("utf-8", errors="replace").count("\ufffd") - sample.count(b"\xef\xbf\xbd")


def _plausible_gb18030(sample: bytes, truncated: bool) -> bool:
    try:
        text = codecs.getincrementaldecoder("gb18030")("strict").decode(sample, final=not truncated)
    except UnicodeDecodeError:
        return False
    non_ascii = [ch for ch in text if ord(ch) > 127]
    if not non_ascii:
        return False
    cjk = sum(
        1
        for ch in non_ascii
        if 0x4E00 <= ord(ch) <= 0x9FFF  # CJK unified ideographs
        or 0x3000 <= ord(ch) <= 0x303F  # CJK punctuation
        or 0xFF00 <= ord(ch) <= 0xFFEF  # full-width forms
        or 0x2010 <= ord(ch) <= 0x2027  # dashes, quotes, ellipsis
    )
    return cjk >= 0.9 * len(non_ascii)


def _looks_binary(sample: bytes) -> bool:
    control = sum(1 for b in sample[:8192] if b < 32 and b not in (9, 10, 12, 13))
    return control > 0.1 * min(len(sample), 8192)
