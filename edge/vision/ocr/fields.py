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

from edge.codes.checkdigit import has_valid_check_digit
from edge.codes.grammar import MONTHS
from edge.codes.text import validate_field
from edge.contracts.errors import DockgateError

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
    """GS1 mod-10 check digit (GTIN, SSCC)."""
    return digits.isdigit() and len(digits) >= 2 and has_valid_check_digit(digits)


def parse(tag: str, printed: str) -> str | None:
    """The stored value of a printed field value, or ``None`` if it is not valid.

    Validation is the code grammar's (:func:`edge.codes.text.validate_field`): check digits,
    lot alphabet and length, calendar dates, GS1's sliding century and day ``00``.
    """
    if tag in DIGIT_TAGS and len(printed) != DIGIT_TAGS[tag]:
        return None
    try:
        value = validate_field(FIELD_OF[tag], printed)
    except DockgateError:
        return None
    return value if isinstance(value, str) else value.isoformat()


def _last_day(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


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
