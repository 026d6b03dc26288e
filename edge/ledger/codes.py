"""Normalising and checking the codes the ledger stores: SKU, lot, location, supplier, GTIN.

Codes arrive from scanners, OCR, keyboards set to Chinese input (full-width characters) and
spreadsheets (stray spaces). Every code is normalised the same way on the way in - NFKC (which
maps full-width to half-width and the ideographic space to a space), trim, collapse runs of
white space, upper case - and then checked against its pattern. A code that does not match is
rejected with ``CODE_INVALID``; nothing is ever stored half-clean.

The normalisation itself and the GS1 check digit come from ``edge.codes`` (the one carton-code
grammar); this module adds the ledger's own code patterns (SKU, lot, location, supplier, unit).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from edge.codes import is_valid_gtin, normalize
from edge.contracts.errors import DockgateError, ErrorCode

#: Pseudo-SKU under which cartons with an unreadable code are held in quarantine.
UNIDENTIFIED_SKU = "UNIDENTIFIED"

_PATTERNS: dict[str, re.Pattern[str]] = {
    # what a warehouse prints on labels: letters, digits and a few separators
    "sku": re.compile(r"^[A-Z0-9][A-Z0-9._/-]{0,39}$"),
    # GS1 AI (10) allows up to 20 characters; we keep to the unambiguous subset
    "lot": re.compile(r"^[A-Z0-9][A-Z0-9._/-]{0,19}$"),
    "location": re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,31}$"),
    "supplier": re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,31}$"),
    "unit": re.compile(r"^[A-Z][A-Z0-9]{0,9}$"),
}
_ACTOR = re.compile(r"^[a-z0-9][a-z0-9._-]*:[^\s:][^\s]{0,63}$")


def clean(raw: str) -> str:
    """NFKC (full- to half-width), look-alike dashes, trim, collapse spaces, upper case."""
    return normalize(raw)


def normalise(kind: str, raw: object) -> str:
    """Normalise ``raw`` as a code of ``kind`` (sku, lot, location, supplier, unit).

    Raises ``CODE_INVALID`` naming the kind and the value when it does not match its pattern.
    """
    if not isinstance(raw, str):
        raise DockgateError(ErrorCode.CODE_INVALID, f"{kind} must be text, got {raw!r}", field=kind)
    value = clean(raw)
    if not _PATTERNS[kind].fullmatch(value):
        raise DockgateError(
            ErrorCode.CODE_INVALID,
            f"{kind} {raw!r} is not a valid code (letters, digits, . _ / - ; no spaces)",
            field=kind,
        )
    return value


def normalise_gtin(raw: object) -> str:
    """A GTIN-8/12/13/14 with a valid check digit, returned as 14 digits (GTIN-14)."""
    if not isinstance(raw, str):
        raise DockgateError(ErrorCode.CODE_INVALID, f"GTIN must be text, got {raw!r}", field="gtin")
    value = clean(raw).replace(" ", "")
    if not value.isascii() or not value.isdigit() or len(value) not in (8, 12, 13, 14):
        raise DockgateError(
            ErrorCode.CODE_INVALID, f"GTIN {raw!r} must be 8, 12, 13 or 14 digits", field="gtin"
        )
    if not is_valid_gtin(value):
        raise DockgateError(
            ErrorCode.CODE_INVALID, f"GTIN {raw!r} has a wrong check digit", field="gtin"
        )
    return value.zfill(14)


def normalise_expiry(raw: object) -> str | None:
    """An expiry date as ISO ``YYYY-MM-DD`` (or None for goods that do not expire)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, date):
        return raw.isoformat()
    if isinstance(raw, str):
        try:
            return date.fromisoformat(clean(raw)).isoformat()
        except ValueError:
            pass
    raise DockgateError(
        ErrorCode.CODE_INVALID, f"expiry {raw!r} is not a date (YYYY-MM-DD)", field="expiry"
    )


def check_actor(raw: object) -> str:
    """Actors are ``<kind>:<name>`` (``user:anna``, ``device:edge-01``, ``cloud:edge-07``)."""
    if not isinstance(raw, str):
        raise DockgateError(ErrorCode.EVENT_INVALID, f"actor must be text, got {raw!r}")
    value = unicodedata.normalize("NFKC", raw).strip()
    if not _ACTOR.fullmatch(value):
        raise DockgateError(
            ErrorCode.EVENT_INVALID,
            f"actor {raw!r} must look like 'user:NAME', 'device:ID' or 'cloud:DEVICE'",
        )
    return value
