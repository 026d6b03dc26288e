"""Interpret what a barcode scanner sends: GS1 element strings, plain GTINs and SSCCs.

Scanners send the data of the symbol, optionally prefixed with its AIM symbology identifier
(``]C1`` GS1-128, ``]d2`` GS1 DataMatrix, ``]Q3`` GS1 QR, ``]e0`` GS1 DataBar, ``]E0`` EAN-13),
with variable-length fields ended by FNC1, transmitted as GS (0x1D). Some are configured to send
the human-readable form ``(01)...(17)...``. The GS1 syntax (AIs, lengths, check digits, dates with
day ``00``) is parsed by the maintained ``biip`` library; this module maps its result onto the
same :class:`ParseResult` and field rules (lot charset, GTIN-14) as printed text, so a scanner
read and an OCR read of the same carton compare equal.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from datetime import date

import biip
from biip.gs1_messages import GS1Message

from edge.codes.model import CartonCode, CodeIssue, FieldMatch, ParseResult
from edge.contracts.errors import ErrorCode

GS = "\x1d"
_INVALID = ErrorCode.CODE_INVALID
_AIM = re.compile(r"\][A-Za-z][0-9A-Za-z]")
_LOT = re.compile(r"[A-Z0-9-]{3,20}")
# AI -> (field, form). (15) best-before stands in for expiry only when (17) is absent.
_AI_FIELDS = {
    "00": "sscc",
    "01": "gtin",
    "10": "lot",
    "11": "prod_date",
    "17": "expiry",
    "15": "expiry",
}
_GS1_SYMBOLOGIES = {"]C1", "]d2", "]Q3", "]e0", "]J1"}
_CONFIG = biip.ParseConfig(separator_chars=[GS])


def _decode(raw: bytes | str) -> str | None:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        return None


def _from_message(msg: GS1Message, sym: str | None, payload: str) -> ParseResult:
    matches: list[FieldMatch] = []
    issues: list[CodeIssue] = []
    extras: dict[str, str] = {}
    ais = {es.ai.ai for es in msg.element_strings}
    for es in msg.element_strings:
        ai = es.ai.ai
        field = _AI_FIELDS.get(ai)
        if field is None or (ai == "15" and "17" in ais):
            extras[ai] = es.value
            continue
        error = es.gtin_error or es.sscc_error
        value: str | object = es.value
        if field in ("expiry", "prod_date"):
            value = es.date
        if field == "lot" and not _LOT.fullmatch(es.value):
            error = f"lot {es.value!r} is not 3..20 characters of A-Z 0-9 -"
        if error or value is None:
            issues.append(
                CodeIssue(_INVALID, error or f"AI ({ai}) {es.value!r} is not a date", field)
            )
            continue
        matches.append(FieldMatch(field, value, f"gs1:{ai}", f"({ai}){es.value}"))  # type: ignore[arg-type]
    return ParseResult(payload, tuple(matches), tuple(issues), sym, extras)


def parse_scan(raw: bytes | str) -> ParseResult:
    """Parse one scanner frame (terminator and AIM prefix allowed). Never raises for bad input.

    GS1 symbols give every AI they carry (unknown ones land in ``extras``); an EAN/UPC symbol
    or bare 8/12/13/14 digits give a GTIN-14; 18 bare digits give an SSCC.
    """
    text = _decode(raw)
    if text is None:
        return ParseResult("", errors=(CodeIssue(_INVALID, "scanner frame is not ASCII"),))
    text = text.strip("\r\n\x04\x00 ")
    sym: str | None = None
    if _AIM.match(text):
        sym, text = text[:3], text[3:]
    payload = text.lstrip(GS)  # a leading FNC1 only marks the symbol as GS1
    if not payload:
        return ParseResult(
            text, errors=(CodeIssue(_INVALID, "empty scanner frame"),), symbology=sym
        )
    try:
        if payload.startswith("("):
            return _from_message(GS1Message.parse_hri(payload), sym, payload)
        if sym in _GS1_SYMBOLOGIES or GS in payload:
            return _from_message(GS1Message.parse(payload, config=_CONFIG), sym, payload)
    except biip.ParseError as exc:
        return ParseResult(payload, errors=(CodeIssue(_INVALID, str(exc)),), symbology=sym)
    return _plain(payload, sym)


def _plain(payload: str, sym: str | None) -> ParseResult:
    """A non-GS1 symbol: a GTIN (EAN/UPC) or an SSCC, as bare digits."""
    if payload.isascii() and payload.isdigit() and len(payload) == 18:
        try:
            return _from_message(GS1Message.parse("00" + payload), sym, payload)
        except biip.ParseError as exc:
            return ParseResult(
                payload, errors=(CodeIssue(_INVALID, str(exc), "sscc"),), symbology=sym
            )
    if payload.startswith("]"):
        # an AIM prefix we did not recognise: biip would read it as one and fail on it
        return ParseResult(
            payload,
            errors=(CodeIssue(_INVALID, f"malformed symbology identifier {payload[:3]!r}"),),
            symbology=sym,
        )
    try:
        res = biip.parse(payload, config=_CONFIG)
    except (biip.ParseError, IndexError, ValueError) as exc:  # never let a scan crash the reader
        return ParseResult(payload, errors=(CodeIssue(_INVALID, str(exc)),), symbology=sym)
    if res.gs1_message is not None and len(payload) not in (8, 12, 13, 14):
        return _from_message(res.gs1_message, sym, payload)  # element string without AIM
    if res.gtin is not None:
        gtin = res.gtin.value.zfill(14)
        return ParseResult(
            payload, (FieldMatch("gtin", gtin, "gtin_bare", payload),), symbology=sym
        )
    reason = res.gtin_error or res.gs1_message_error or "not a GS1 element string or GTIN"
    field = "gtin" if payload.isdigit() else None
    return ParseResult(payload, errors=(CodeIssue(_INVALID, reason, field),), symbology=sym)


def format_scan(
    code: CartonCode,
    *,
    symbology: str | None = "]C1",
    order: Sequence[str] = ("sscc", "gtin", "expiry", "prod_date", "lot"),
    day00: bool = False,
) -> str:
    """What a scanner sends for a GS1 symbol carrying ``code`` (simulators and tests use it).

    Fields go in ``order`` (those that are None are skipped); a variable-length field (the lot)
    is ended by GS unless it is last, exactly as FNC1 is transmitted. ``day00`` prints a
    month's last day as ``00`` in the YYMMDD dates.
    """
    parts: list[str] = []
    values = {
        "sscc": code.sscc,
        "gtin": code.gtin,
        "expiry": _yymmdd(code.expiry, day00),
        "prod_date": _yymmdd(code.prod_date, day00) if code.prod_date else None,
        "lot": code.lot,
    }
    present = [f for f in order if values.get(f) is not None]
    for i, f in enumerate(present):
        parts.append(_AI_OF[f] + str(values[f]))
        if f == "lot" and i < len(present) - 1:
            parts.append(GS)
    return (symbology or "") + "".join(parts)


_AI_OF = {"sscc": "00", "gtin": "01", "expiry": "17", "prod_date": "11", "lot": "10"}


def _yymmdd(d: date, day00: bool) -> str:
    last = calendar.monthrange(d.year, d.month)[1]
    day = "00" if day00 and d.day == last else f"{d.day:02d}"
    return f"{d.year % 100:02d}{d.month:02d}{day}"
