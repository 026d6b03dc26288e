"""The recogniser's classes: CTC blank, then every character the carton-code grammar prints.

Digits, Latin capitals, ``-./:()``, space and the characters of the Chinese label words
(批号, 有效期至, 生产日期). The tuple has the shape :class:`edge.vision.ocr.decode.Decoder`
expects: index 0 is the blank (``""``), index ``i`` is the character of output column ``i``.
"""

from __future__ import annotations

from collections.abc import Sequence

LATIN = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
PUNCT = "-./:() "
CJK = "批号有效期至生产日"
CHARACTERS = LATIN + PUNCT + CJK
CHARSET: tuple[str, ...] = ("", *CHARACTERS)
INDEX = {c: i for i, c in enumerate(CHARSET) if i > 0}


def encode(text: str) -> list[int]:
    """Class indices of ``text``; raises ``KeyError`` for a character outside the charset."""
    return [INDEX[c] for c in text]


def metadata_value(chars: Sequence[str] = CHARSET[1:]) -> str:
    """The ONNX metadata ``character`` value: one character per line (PP-OCR's convention)."""
    return "\n".join(chars)


def from_metadata(value: str) -> tuple[str, ...]:
    """The charset tuple (blank first) from an ONNX ``character`` metadata value."""
    return ("", *value.split("\n"))
