"""AIM symbology identifiers (ISO/IEC 15424): ``]`` + code character + modifier character.

Only splitting and naming happen here; what the data means (GS1 element strings, check
digits) is decided in ``edge/codes``.
"""

from __future__ import annotations

import re

# ``]`` + an ASCII letter (the symbology) + one modifier character (digit or letter).
_AIM = re.compile(rb"\][A-Za-z][0-9A-Za-z]")

#: Identifiers a warehouse meets, with the symbology they announce.
KNOWN: dict[str, str] = {
    "]C0": "Code 128",
    "]C1": "GS1-128",
    "]d1": "Data Matrix",
    "]d2": "GS1 DataMatrix",
    "]Q1": "QR Code",
    "]Q3": "GS1 QR Code",
    "]e0": "GS1 DataBar",
    "]E0": "EAN-13 / UPC-A",
    "]E4": "EAN-8",
    "]I1": "ITF-14 (check digit validated)",
    "]A0": "Code 39",
    "]L2": "PDF417",
    "]J1": "GS1 DotCode",
}

#: Identifiers whose data is a GS1 element string (FNC1 in first position, not transmitted).
GS1_ELEMENT_STRING = frozenset({"]C1", "]d2", "]Q3", "]e0", "]J1"})


def split_identifier(payload: bytes) -> tuple[str | None, bytes]:
    """Split a leading AIM identifier off ``payload``: ``(identifier or None, data)``."""
    if _AIM.match(payload):
        return payload[:3].decode("ascii"), payload[3:]
    return None, payload


def describe(identifier: str | None) -> str:
    """Human name of an identifier for logs and the panel (``"unknown ]X9"`` if not listed)."""
    if identifier is None:
        return "no identifier"
    return KNOWN.get(identifier, f"unknown {identifier}")
