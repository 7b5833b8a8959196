"""Find a text file's encoding, or say clearly why not.

The rules that only we can apply are explicit, and what is left is a guess that
charset-normalizer makes far better than hand-written rules did (on the eleven legacy-encoded
samples in eight scripts of ``tests/core/test_charsets.py`` it is right eleven times, the
hand-written GB18030/Latin-1 rules that were here before twice):

1. A byte-order mark decides (UTF-8 with BOM, UTF-16 and UTF-32 LE/BE).
2. NUL bytes mean UTF-16 (if they sit at alternating positions) or a binary file.
3. Strict UTF-8.
4. Damaged UTF-8 is an error naming the first damaged line, never a silent legacy reading. A
   general detector cannot say *which line* is damaged, and will happily read a UTF-8 file with
   one cut character as Windows-1250. A file is taken as damaged UTF-8 when its non-UTF-8 parts
   look like UTF-8, not like a legacy code page:

   - at least half of the lines that hold non-ASCII bytes are valid UTF-8 (in legacy text
     nearly every such line is invalid: a single "é" or CJK character breaks it), or
   - well-formed multi-byte UTF-8 sequences outnumber the broken ones eight to one (legacy text
     makes such sequences only by chance: up to one per broken one in GB18030 Chinese, none in
     most European text), which catches damage inside a file of one long line, or
   - at least half of the broken sequences are UTF-8 characters cut short: a lead byte
     0xE0-0xF4 followed by some but too few continuation bytes, or 0xC2/0xC3 (the lead bytes
     of every accented Latin letter, but the rare "Â"/"Ã" in Latin-1) followed by none. A lone
     0xE9 is how Latin-1 writes "é", so it counts as legacy evidence, not damage. In the legacy
     samples under a tenth of the broken sequences have this shape.

5. Mostly control bytes (valid UTF-8 or not): a binary file.
6. Everything else goes to charset-normalizer (``from_bytes``). Several code pages often read a
   sample equally well (cp1250 and cp1252 agree on all of German); among those, and among the
   code pages charset-normalizer lists as giving the identical text, the most widely used wins,
   supersets first (gb2312/gbk -> gb18030, Shift_JIS -> cp932, EUC-KR -> cp949): "Le café est
   très bon." reads as Windows-1252, not as the Windows-1250 "trčs" charset-normalizer ranks
   first. When the sample holds too little non-ASCII text for charset-normalizer to recognise a
   language it is asked again among the common code pages only, so "Straße" alone reads as
   Windows-1252, not as the Urdu code page cp1006 ("Straﻑe") its first pass prefers.

Every answer says what was chosen and why in ``EncodingReport.reason``, which ``studio inspect``
and the Data page show. The whole file is decoded strictly later (``corpus.scan_corpus``), so a
wrong guess that fails further on is a ``DataError`` naming the line, not mojibake.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

from charset_normalizer import from_bytes

from studio.core.errors import DataError
from studio.core.i18n import N_, _, ngettext
from studio.core.settings import text_codec_problem

SAMPLE_BYTES = 1 << 20

_BOMS = (  # UTF-32 first: its little-endian BOM begins with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32", N_("UTF-32 (little-endian, BOM)")),
    (codecs.BOM_UTF32_BE, "utf-32", N_("UTF-32 (big-endian, BOM)")),
    (codecs.BOM_UTF8, "utf-8-sig", N_("UTF-8 with BOM")),
    (codecs.BOM_UTF16_LE, "utf-16", N_("UTF-16 (little-endian, BOM)")),
    (codecs.BOM_UTF16_BE, "utf-16", N_("UTF-16 (big-endian, BOM)")),
)
_VALID_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
# UTF-8 characters cut short (see rule 4). The lead bytes are never continuation bytes, so every
# match is a broken sequence, whatever precedes it.
_CUT_SHORT = re.compile(
    rb"[\xe0-\xef][\x80-\xbf](?![\x80-\xbf])|[\xf0-\xf4][\x80-\xbf]{1,2}(?![\x80-\xbf])|[\xc2\xc3](?![\x80-\xbf])"
)
_LAST_SAFE_BYTE = re.compile(rb"[\x00-\x2f][\x30-\xff]*\Z")
# Keyed by codecs.lookup(name).name. Labels with words in them are marked for translation: a
# report's label stays English (it is kept in the token cache) and is shown as _(label).
_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": N_("UTF-8 with BOM"),
    "utf-16": "UTF-16",
    "utf-16-le": N_("UTF-16 (little-endian)"),
    "utf-16-be": N_("UTF-16 (big-endian)"),
    "gb18030": N_("GB18030 (GBK-compatible)"),
    "gbk": "GBK",
    "gb2312": "GB2312",
    "iso8859-1": "Latin-1",
    "iso8859-15": "Latin-9 (ISO-8859-15)",
    "cp1252": "Windows-1252",
    "cp1250": "Windows-1250",
    "cp1251": "Windows-1251",
    "cp1253": "Windows-1253",
    "cp1254": "Windows-1254",
    "cp1255": "Windows-1255",
    "cp1256": "Windows-1256",
    "cp1257": "Windows-1257",
    "koi8-r": "KOI8-R",
    "koi8-u": "KOI8-U",
    "big5": "Big5",
    "cp950": "Big5 (Windows-950)",
    "big5hkscs": "Big5-HKSCS",
    "cp932": "Shift_JIS (Windows-932)",
    "shift_jis": "Shift_JIS",
    "euc_jp": "EUC-JP",
    "euc_jis_2004": "EUC-JP (JIS X 0213)",
    "cp949": "EUC-KR (Windows-949)",
    "euc_kr": "EUC-KR",
    "iso8859-2": "Latin-2 (ISO-8859-2)",
    "iso8859-5": N_("ISO-8859-5 (Cyrillic)"),
    "iso8859-7": N_("ISO-8859-7 (Greek)"),
    "iso8859-8": N_("ISO-8859-8 (Hebrew)"),
    "iso8859-9": "Latin-5 (ISO-8859-9)",
    "cp874": N_("Windows-874 (Thai)"),
    "tis-620": N_("TIS-620 (Thai)"),
    "mac-roman": "Mac Roman",
}
# Most widely used first; within a family the superset first, so that the rest of a file (beyond
# the sample) still decodes. Code pages not listed rank after these, in charset-normalizer's order.
_PREFERENCE = (
    "utf-8", "cp1252", "iso8859-1", "iso8859-15", "gb18030", "cp1251", "cp932", "shift_jis", "cp949",
    "euc_kr", "cp950", "big5", "big5hkscs", "euc_jis_2004", "euc_jp", "cp1250", "iso8859-2", "cp1253",
    "iso8859-7", "koi8-r", "koi8-u", "cp1254", "iso8859-9", "cp1255", "iso8859-8", "cp1256", "cp1257",
    "cp874", "tis-620", "iso8859-5",
)
_RANK = {name: i for i, name in enumerate(_PREFERENCE)}
# charset-normalizer answers with narrower codecs than we want to decode a whole file with.
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "ascii": "utf-8"}
_TIE_CHAOS = 0.01  # charset-normalizer's "mess" ratio: closer than this is a tie
_TIE_COHERENCE = 0.02
_NO_LANGUAGE = 0.05  # coherence below this: too little text to recognise a language


@dataclass(frozen=True)
class EncodingReport:
    codec: str  # a name Python's codecs accept
    label: str  # what the user sees, in English: show it as _(label)
    reason: str  # why this one was chosen, in the current language

    @property
    def line_safe(self) -> bool:
        """True when b"\\n" can only mean a newline, so files can be split into lines as bytes."""
        try:
            newline = codecs.lookup(self.codec).encode("\n")[0]
        except (LookupError, UnicodeError):
            return False
        return newline.removeprefix(codecs.BOM_UTF8) == b"\n"


def canonical(codec: str) -> str:
    try:
        return codecs.lookup(codec).name
    except LookupError:
        return codec


def label_for(codec: str) -> str:
    return _LABELS.get(canonical(codec), codec)


def detect_encoding(path: Path, declared: str = "auto") -> EncodingReport:
    """Decide how to decode ``path``. Raises DataError for empty, binary or corrupt files."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            sample = f.read(SAMPLE_BYTES)
    except OSError as e:
        # Translators: {reason} is the operating system's words for the failure.
        raise DataError(_("cannot be read ({reason})").format(reason=e.strerror or e), path) from None
    if size == 0 or not sample.strip():
        raise DataError(_("the file is empty"), path)

    if declared != "auto":
        problem = text_codec_problem(declared)
        if problem:
            # Translators: data.encoding is the setting's name, kept as is.
            raise DataError(_("{problem} (data.encoding)").format(problem=problem), path)
        codec = codecs.lookup(declared).name
        return EncodingReport(codec, label_for(codec), _("set in the configuration"))

    truncated = len(sample) < size
    for bom, codec, label in _BOMS:
        if sample.startswith(bom):
            if codec == "utf-32" and (len(sample) == len(bom) or not _decodes(sample, codec, truncated)):
                continue  # UTF-16's BOM followed by U+0000, most likely
            return EncodingReport(codec, label, _("byte-order mark"))

    if b"\x00" in sample:
        utf16 = _utf16_without_bom(sample)
        if utf16:
            return EncodingReport(utf16, label_for(utf16), _("NUL bytes at alternating positions"))
        offset = sample.index(b"\x00")
        raise DataError(_("looks like a binary file, not text (a NUL byte at offset {offset})").format(offset=offset), path)

    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(sample, final=not truncated)
    except UnicodeDecodeError as e:
        bad_at = e.start
    else:
        if _looks_binary(sample):  # control bytes are valid UTF-8 too
            raise DataError(_("looks like a binary file, not text (mostly control bytes)"), path)
        return EncodingReport("utf-8", "UTF-8", _("valid UTF-8"))
    bad_line = sample.count(b"\n", 0, bad_at) + 1

    # A sample cut mid-character would make every multi-byte codec fail on its last bytes; cut it
    # after the last byte below 0x30, which no code page here uses inside a character.
    body = sample
    if truncated:
        tail = _LAST_SAFE_BYTE.search(sample, max(0, len(sample) - 65536))
        if tail is not None:
            body = sample[: tail.start() + 1]

    why = _utf8_damage(body)
    if why:
        shown = sample[bad_at : bad_at + 4]
        # Translators: {bytes} are the bad bytes as Python writes them (b'\xe4\xb8'); {why} says why the file looks like UTF-8.
        raise DataError(
            _("bytes {bytes} are not valid UTF-8, though the file looks like UTF-8 ({why}). "
              "The file may be damaged; fix it, or set data.encoding (for example cp1252) to read it anyway").format(
                bytes=repr(shown), why=why
            ),
            path,
            bad_line,
        )

    if _looks_binary(body):
        raise DataError(_("looks like a binary file, not text (mostly control bytes)"), path)

    try:
        guess = _charset_normalizer(body)
    except DataError as e:
        raise DataError(str(e), path, bad_line) from None
    if guess is None:
        raise DataError(
            _("cannot tell the encoding: not UTF-8 (first non-UTF-8 byte on line {line}), and no other "
              "encoding reads it as text. Set data.encoding to the file's encoding").format(line=bad_line),
            path,
        )
    codec, language, tie = guess
    label = label_for(codec)
    if language:
        # Translators: {encoding} is an encoding's name, {language} the language charset-normalizer recognised (in English).
        told = _("{encoding}, {language}").format(encoding=_(label), language=language)
    else:
        told = _("{encoding} (too little text to tell the language)").format(encoding=_(label))
    # Translators: charset-normalizer is the library that guessed; {guess} is its answer.
    reason = _("not UTF-8 (first non-UTF-8 byte on line {line}); charset-normalizer: {guess}").format(line=bad_line, guess=told)
    if tie:
        reason += _("; the most common of the code pages that read it equally well")
    return EncodingReport(codec, label, reason)


def _charset_normalizer(sample: bytes) -> tuple[str, str, bool] | None:
    """(codec, language or "", whether a tie was broken by preference), or None when nothing fits."""
    matches = list(from_bytes(sample))
    if not matches:
        return None
    best = matches[0]
    close = [m for m in matches if m.chaos <= best.chaos + _TIE_CHAOS and m.coherence >= best.coherence - _TIE_COHERENCE]
    if best.coherence < _NO_LANGUAGE:
        common = [name for name in _PREFERENCE if name != "utf-8"]
        close += [m for m in from_bytes(sample, cp_isolation=common) if m.chaos <= best.chaos + _TIE_CHAOS]
    options: list[tuple[int, int, str, str]] = []  # (rank, charset-normalizer's order, codec, language)
    for order, match in enumerate(close):
        language = "" if match.language in ("Unknown", "") else match.language
        for name in [match.encoding, *match.could_be_from_charset]:
            codec = canonical(_SUPERSETS.get(name, name))
            if codec.startswith(("utf-16", "utf-32")):  # would have had NUL bytes
                continue
            options.append((_RANK.get(codec, len(_RANK) + order), order, codec, language))
    if not options:
        return None
    _rank, _order, codec, language = min(options)
    return codec, language, codec != canonical(_SUPERSETS.get(best.encoding, best.encoding))


def _utf8_damage(body: bytes) -> str:
    """Why ``body`` (not strict UTF-8) looks like damaged UTF-8 rather than a legacy code page, or ""."""
    broken = _count_invalid_utf8(body)
    if not broken:
        return ""
    clean = dirty = 0
    for line in body.split(b"\n"):
        if not line.isascii():
            try:
                line.decode("utf-8")
                clean += 1
            except UnicodeDecodeError:
                dirty += 1
    sequences = ngettext("{count:,} broken sequence in the first MiB", "{count:,} broken sequences in the first MiB",
                         broken).format(count=broken)
    if clean >= dirty:
        # Translators: {sequences} is "N broken sequences in the first MiB".
        return _("{clean:,} of the {lines:,} lines with non-ASCII text are valid UTF-8; {sequences}").format(
            clean=clean, lines=clean + dirty, sequences=sequences
        )
    valid = len(_VALID_MULTIBYTE.findall(body))
    if valid >= 8 * broken:
        # Translators: {sequences} is "N broken sequences in the first MiB".
        return _("{valid:,} well-formed multi-byte characters; {sequences}").format(valid=valid, sequences=sequences)
    cut_short = len(_CUT_SHORT.findall(body))
    if 2 * cut_short >= broken:
        # Translators: {sequences} is "N broken sequences in the first MiB".
        return _("{count:,} of the {sequences} are UTF-8 characters cut short").format(count=cut_short, sequences=sequences)
    return ""


def _decodes(sample: bytes, codec: str, truncated: bool) -> bool:
    try:
        codecs.getincrementaldecoder(codec)("strict").decode(sample, final=not truncated)
    except UnicodeDecodeError:
        return False
    return True


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


def _looks_binary(sample: bytes) -> bool:
    control = sum(1 for b in sample[:8192] if b < 32 and b not in (9, 10, 12, 13, 27))
    return control > 0.1 * min(len(sample), 8192)
