"""Transcript bytes -> text: byte-order marks, BOM-less UTF-16, cp1252 fallback, binary refused."""

from __future__ import annotations

import codecs
from pathlib import Path

from extractor.errors import InputError

_MAGIC = {
    b"%PDF": "a PDF file", b"\x89PNG": "a PNG image", b"GIF8": "a GIF image", b"\xff\xd8\xff": "a JPEG image",
    b"\x7fELF": "an executable", b"\x1f\x8b": "a gzip archive", b"\xd0\xcf\x11\xe0": "an old MS Office (.doc) file",
}


def format_size(n: int) -> str:
    """``1.5 MiB`` / ``0.1 KiB``: the sizes of segmentation's messages."""
    value, unit = (n / 2**20, "MiB") if n >= 2**20 else (n / 1024, "KiB")
    return f"{value:.1f}".removesuffix(".0") + " " + unit


def decode_bytes(data: bytes, path: str | Path = "<bytes>") -> tuple[str, str, list[str]]:
    """Decode transcript bytes; return ``(text, encoding, notes)``.

    UTF-8 (with or without BOM), UTF-16/32 with a BOM and BOM-less UTF-16 are detected;
    other bytes fall back to cp1252/Latin-1 with a note. Binary data raises
    :class:`InputError`.
    """
    notes: list[str] = []
    for bom, enc in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                     (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                     (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(enc), enc, notes
            except UnicodeDecodeError as e:
                raise InputError(path, f"{enc} text (the file starts with a {enc} byte-order mark)",
                                 f"an undecodable byte at offset {e.start}") from None
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            raise InputError(path, "a text transcript", what)
    nul = data.count(b"\x00")
    if nul:
        utf16 = bomless_utf16(data, nul)
        if utf16 is None:
            raise InputError(path, "a text transcript", f"binary data ({nul} NUL bytes, first at offset {data.index(0)})",
                             hint="is this a transcript?")
        try:
            text = data.decode(utf16)
        except UnicodeDecodeError as e:
            raise InputError(path, "a text transcript", f"binary data (undecodable byte at offset {e.start})") from None
        notes.append(f"no byte-order mark; read as {utf16.upper()}")
        return text, utf16, notes
    try:
        text, enc = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as e:
        # cp1252 is what Windows tools write; its 5 undefined bytes fall back to Latin-1.
        text, enc = data.decode("cp1252", errors=_LATIN1_FALLBACK), "cp1252"
        notes.append(f"not UTF-8 (undecodable byte 0x{data[e.start]:02x} at offset {e.start}); read as cp1252/Latin-1"
                     " - check accented characters")
    bad = sum(1 for ch in text[:65536] if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    if bad > max(8, len(text[:65536]) // 100):
        raise InputError(path, "a text transcript", f"binary data ({bad} control characters in the first 64 KiB)",
                         hint="is this a transcript?")
    return text, enc, notes


_LATIN1_FALLBACK = "qi-extractor-latin1"


def _latin1(e: UnicodeError) -> tuple[str, int]:
    if not isinstance(e, UnicodeDecodeError):
        raise e
    return e.object[e.start:e.end].decode("latin-1"), e.end


codecs.register_error(_LATIN1_FALLBACK, _latin1)


def bomless_utf16(data: bytes, nul: int) -> str | None:
    """UTF-16 without a BOM: text of Latin letters has a NUL in every other byte."""
    sample = data[:65536]
    if len(sample) < 4 or nul < len(data) // 4:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd > 0.4 * len(sample) / 2 and even < 0.05 * len(sample) / 2:
        return "utf-16-le"
    if even > 0.4 * len(sample) / 2 and odd < 0.05 * len(sample) / 2:
        return "utf-16-be"
    return None
