"""Field values as printed <-> as stored: check digits, dates, and printing a value in a form.

The decoder hands over ``(tag, printed)`` pairs whose shape the CTC graph already guarantees;
this module checks what a graph cannot (calendar dates, lot length, check digits of the loose
line search) and turns them into the CartonRead values: GTIN-14, lot, ISO dates, SSCC-18.
``render`` does the opposite for ASN candidates: it prints an expected value the way this
carton prints that field, so the candidate can be scored against the same frames.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

from edge.vision.ocr.forms import LOT_CHARS, LOT_MAX, LOT_MIN, MONTHS

#: which CartonRead field each tag fills
FIELD_OF = {
    "gtin": "gtin",
    "gtin13": "gtin",
    "sscc": "sscc",
    "lot": "lot",
    "exp.yymmdd": "expiry",
    "exp.ymd": "expiry",
    "exp.my": "expiry",
    "exp.mon": "expiry",
    "prod.yymmdd": "prod_date",
    "prod.ymd": "prod_date",
}
DIGIT_TAGS = {"gtin": 14, "gtin13": 13, "sscc": 18}


def gs1_check_ok(digits: str) -> bool:
    """GS1 mod-10: weights 3, 1, 3, ... from the digit left of the check digit."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits[:-1])))
    return (10 - total % 10) % 10 == int(digits[-1])


def _last_day(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return _last_day(year, month) if day == 0 else dt.date(year, month, day)
    except ValueError:
        return None


def parse(tag: str, printed: str) -> str | None:
    """The stored value of a printed field, or ``None`` if it is not a valid value."""
    kind = tag.split(".")[-1]
    if tag in DIGIT_TAGS:
        ok = len(printed) == DIGIT_TAGS[tag] and gs1_check_ok(printed)
        return printed.rjust(14, "0") if ok and tag != "sscc" else (printed if ok else None)
    if tag == "lot":
        ok = LOT_MIN <= len(printed) <= LOT_MAX and all(c in LOT_CHARS for c in printed)
        return printed if ok else None
    day: dt.date | None = None
    if kind == "yymmdd" and re.fullmatch(r"\d{6}", printed):
        day = _date(2000 + int(printed[:2]), int(printed[2:4]), int(printed[4:]))
    elif kind == "ymd" and (m := re.fullmatch(r"(\d{4})[-./](\d{2})[-./](\d{2})", printed)):
        day = _date(int(m[1]), int(m[2]), int(m[3])) if int(m[3]) else None
    elif kind == "my" and (m := re.fullmatch(r"(\d{2})[/ ](\d{2}|\d{4})", printed)):
        year = int(m[2]) if len(m[2]) == 4 else 2000 + int(m[2])
        day = _date(year, int(m[1]), 0) if 1 <= int(m[1]) <= 12 else None
    elif kind == "mon" and (m := re.fullmatch(r"([A-Z]{3}) (\d{4})", printed.upper())):
        day = _date(int(m[2]), MONTHS.index(m[1]) + 1, 0) if m[1] in MONTHS else None
    return day.isoformat() if day is not None else None


def render(tag: str, value: str, printed: str) -> str | None:
    """Print ``value`` (a stored value) in the form of ``printed`` (same tag), or ``None``.

    Separators are copied from ``printed``, so an expected expiry ``2027-08-31`` is scored as
    ``2027.08.31`` on a carton that prints dots.
    """
    kind = tag.split(".")[-1]
    if tag in DIGIT_TAGS:
        if tag == "gtin13":
            return value[1:] if len(value) == 14 and value[0] == "0" else None
        return value
    if tag == "lot":
        return value
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return None
    month_end = day == _last_day(day.year, day.month)
    if kind == "yymmdd":
        return day.strftime("%y%m") + (
            "00" if month_end and printed.endswith("00") else f"{day.day:02d}"
        )
    if kind == "ymd" and len(printed) == 10:
        return f"{day.year:04d}{printed[4]}{day.month:02d}{printed[7]}{day.day:02d}"
    if kind == "my" and month_end and len(printed) in (5, 7):
        year = f"{day.year:04d}" if len(printed) == 7 else f"{day.year % 100:02d}"
        return f"{day.month:02d}{printed[2]}{year}"
    if kind == "mon" and month_end:
        return f"{MONTHS[day.month - 1]} {day.year:04d}"
    return None
