"""Parse, validate and print carton-code text in the forms of :mod:`edge.codes.grammar`."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

from edge.codes.checkdigit import has_valid_check_digit, is_valid_gtin
from edge.codes.grammar import (
    FIELDS,
    FORMS,
    FORMS_BY_NAME,
    LOT_MAX,
    LOT_MIN,
    MONTHS,
    Form,
    Lit,
    Slot,
    forms_for,
)
from edge.codes.model import CodeIssue, FieldMatch, FieldValue, ParseResult
from edge.codes.normalize import normalize
from edge.contracts.errors import DockgateError, ErrorCode

_INVALID = ErrorCode.CODE_INVALID
_LOT_RE = re.compile(rf"[A-Z0-9-]{{{LOT_MIN},{LOT_MAX}}}")

EXAMPLE_VALUES: dict[str, FieldValue] = {
    "gtin": "06901234567892",
    "lot": "A24B117",
    "expiry": date(2027, 8, 31),
    "prod_date": date(2025, 8, 31),
    "sscc": "369012340000000017",
}


class _BadValueError(ValueError):
    """A slot matched its pattern but its value is wrong (check digit, calendar)."""


def gs1_year(yy: int, today: date | None = None) -> int:
    """Four-digit year of a GS1 ``YY`` (GS1 General Specifications 7.12, sliding century).

    A difference of 51..99 years ahead of ``today`` means the previous century, 50..99
    behind means the next one; otherwise the current century.
    """
    ref = (today or date.today()).year
    century, ref_yy = divmod(ref, 100)
    diff = yy - ref_yy
    if 51 <= diff <= 99:
        century -= 1
    elif -99 <= diff <= -50:
        century += 1
    return century * 100 + yy


def _last_day(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _make_date(parts: dict[str, str], today: date | None, day00: bool) -> date:
    named = parts.get("month_name")
    if named and named not in MONTHS:  # the slot's pattern is per column: "MAN", "JEB" fit it
        raise _BadValueError(f"{named} is not a month name")
    month = MONTHS.index(named) + 1 if named else int(parts["month"])
    year = int(parts["year"]) if "year" in parts else gs1_year(int(parts["yy"]), today)
    if not 1 <= month <= 12:
        raise _BadValueError(f"month {month:02d} is not 01..12")
    if not 2000 <= year <= 2099:
        raise _BadValueError(f"year {year} is outside 2000..2099")
    day = parts.get("day")
    if day is None or (day00 and day == "00"):  # month-only, or GS1's day 00: end of month
        return _last_day(year, month)
    try:
        return date(year, month, int(day))
    except ValueError as exc:
        raise _BadValueError(f"{year:04d}-{month:02d}-{day} is not a calendar date") from exc


def _value(form: Form, parts: dict[str, str], today: date | None) -> FieldValue:
    if form.field in ("gtin", "sscc"):
        digits = parts[form.field]
        if not has_valid_check_digit(digits):
            raise _BadValueError(f"{form.field.upper()} {digits} fails its check digit")
        return digits.zfill(14) if form.field == "gtin" else digits
    if form.field == "lot":
        lot = parts["lot"]
        if not any(c.isalnum() for c in lot):
            raise _BadValueError(f"lot {lot!r} has no letter or digit")
        return lot
    return _make_date(parts, today, any(t.kind == "day2_00" for t in form.slots))


@dataclass(frozen=True)
class _Compiled:
    form: Form
    regex: re.Pattern[str]
    prefix: re.Pattern[str] | None  # the label part alone, to name the field in error messages
    value_only: re.Pattern[str]  # the slots and the literals between them (typed input)


def _token_re(tok: Lit | Slot, group: int) -> str:
    if isinstance(tok, Slot):
        return f"(?P<s{group}>{tok.spec.regex})"
    lit = re.escape(tok.text)
    return f"(?:{lit})?" if tok.optional else lit


def _compile(form: Form) -> _Compiled:
    toks = form.tokens
    body = "".join(_token_re(t, i) for i, t in enumerate(toks))
    # A field ends at the end of the line, a space, the "(" of the next AI or a CJK label:
    # no 15-digit "GTIN", no 21-character lot, no lot that runs into "_" or ";".
    guard = r"(?=$|[ (]|[^\x00-\x7f])"
    first_slot = next(i for i, t in enumerate(toks) if isinstance(t, Slot))
    label = "".join(
        _token_re(t, i)
        for i, t in enumerate(toks[:first_slot])
        if isinstance(t, Lit) and not t.optional
    )
    values = "".join(_token_re(t, i) for i, t in enumerate(toks) if i >= first_slot)
    return _Compiled(
        form,
        re.compile(body + guard),
        re.compile(label) if label else None,
        re.compile(values),
    )


_COMPILED: tuple[_Compiled, ...] = tuple(_compile(f) for f in FORMS)


def _first_chars(form: Form) -> set[str]:
    first = form.tokens[0]  # no form starts with an optional literal
    return {first.text[0]} if isinstance(first, Lit) else set(first.spec.charset)


# Forms that can start with a given character: the line scanner tries only those.
_BY_FIRST: dict[str, tuple[_Compiled, ...]] = {
    ch: tuple(c for c in _COMPILED if ch in _first_chars(c.form))
    for ch in set().union(*(_first_chars(c.form) for c in _COMPILED))
}


def _parts(c: _Compiled, m: re.Match[str]) -> dict[str, str]:
    return {t.part: m.group(f"s{i}") for i, t in enumerate(c.form.tokens) if isinstance(t, Slot)}


def _describe(field: str) -> str:
    return {
        "gtin": "GTIN: 13 or 14 digits with a valid check digit",
        "sscc": "SSCC: 18 digits with a valid check digit",
        "lot": f"lot: {LOT_MIN}..{LOT_MAX} characters of A-Z 0-9 -",
        "expiry": "expiry: a date such as 2027-08-31, 270831, 08/2027 or AUG 2027",
        "prod_date": "production date: a date such as 2025-08-31 or 250831",
    }[field]


def _parse_line(line: str, n: int, today: date | None) -> tuple[list[FieldMatch], list[CodeIssue]]:
    found: list[FieldMatch] = []
    issues: list[CodeIssue] = []
    pos = 0
    while pos < len(line):
        if line[pos] == " ":
            pos += 1
            continue
        best: tuple[_Compiled, re.Match[str]] | None = None
        for c in _BY_FIRST.get(line[pos], ()):
            m = c.regex.match(line, pos)
            if m and (best is None or m.end() > best[1].end()):
                best = (c, m)
        if best is None:
            rest = line[pos:]
            labelled = [c for c in _COMPILED if c.prefix is not None and c.prefix.match(line, pos)]
            field = labelled[0].form.field if labelled else None
            why = f"expected {_describe(field)}" if field else "not a known field"
            issues.append(
                CodeIssue(_INVALID, f"line {n + 1}: {rest!r}: {why}", field, n, (pos, len(line)))
            )
            break
        c, m = best
        try:
            value = _value(c.form, _parts(c, m), today)
        except _BadValueError as exc:
            issues.append(CodeIssue(_INVALID, f"line {n + 1}: {exc}", c.form.field, n, m.span()))
        else:
            found.append(FieldMatch(c.form.field, value, c.form.name, m.group(0), n, m.span()))
        pos = m.end()
    return found, issues


def _cross_check(found: list[FieldMatch]) -> list[CodeIssue]:
    issues: list[CodeIssue] = []
    seen: dict[str, FieldMatch] = {}
    for m in found:
        prev = seen.setdefault(m.field, m)
        if prev.value != m.value:
            msg = f"{m.field} printed twice with different values: {prev.raw!r} and {m.raw!r}"
            issues.append(CodeIssue(_INVALID, msg, m.field, m.line, m.span))
    exp, prod = seen.get("expiry"), seen.get("prod_date")
    exp_d = exp.value if exp else None
    prod_d = prod.value if prod else None
    if isinstance(exp_d, date) and isinstance(prod_d, date) and prod_d > exp_d and prod:
        msg = f"production date {prod_d} is after expiry {exp_d}"
        issues.append(CodeIssue(_INVALID, msg, "prod_date", prod.line, prod.span))
    return issues


def parse_text(text: str, *, today: date | None = None, max_lines: int = 3) -> ParseResult:
    """Parse printed or typed carton-code text (1..``max_lines`` lines, any mix of forms).

    ``today`` anchors GS1's sliding century for ``YY`` years (default: the system date).
    Never raises for bad input: problems come back as ``CODE_INVALID`` issues.
    """
    norm = normalize(text)
    lines = norm.split("\n") if norm else []
    found: list[FieldMatch] = []
    issues: list[CodeIssue] = []
    if not lines:
        issues.append(CodeIssue(_INVALID, "no code text"))
    if len(lines) > max_lines:
        issues.append(
            CodeIssue(_INVALID, f"{len(lines)} lines; a carton code has at most {max_lines}")
        )
    for n, line in enumerate(lines[:max_lines]):
        f, i = _parse_line(line, n, today)
        found += f
        issues += i
    issues += _cross_check(found)
    unique = {m.field: m for m in reversed(found)}  # first occurrence of each field wins
    ordered = tuple(sorted(unique.values(), key=lambda m: FIELDS.index(m.field)))
    return ParseResult(norm, ordered, tuple(issues))


def validate_field(name: str, value: str, *, today: date | None = None) -> FieldValue:
    """Check one typed field value and return it in canonical form.

    ``gtin`` -> GTIN-14 string (GTIN-8/12/13 are padded), ``sscc`` -> 18 digits, ``lot`` -> upper
    case, ``expiry``/``prod_date`` -> :class:`datetime.date` from ISO ``2027-08-31`` or any printed
    value form (``2027.08.31``, ``270831``, ``08/2027``, ``AUG 2027``). Any field may also be
    typed with its label (``(01)06901234567892``, ``LOT: A24B117``, ``EXP 08/27``).
    Raises :class:`DockgateError` with ``CODE_INVALID`` otherwise.
    """
    if name not in FIELDS:
        raise DockgateError(_INVALID, f"unknown field {name!r}; one of {', '.join(FIELDS)}")
    v = normalize(value).replace("\n", " ")
    direct = _validate_value(name, v, today)
    if direct is not None:
        return direct
    # a labelled form typed in full: "(01)06901234567892", "LOT: A24B117", "EXP 08/27"
    parsed = parse_text(v, today=today)
    if parsed.ok and len(parsed.matches) == 1 and parsed.matches[0].field == name:
        return parsed.matches[0].value
    dated = [e.message for e in parsed.errors if e.field == name and "date" in e.message]
    raise DockgateError(
        _INVALID, dated[0] if dated else f"not a valid {_describe(name)}", field=name
    )


def _validate_value(name: str, v: str, today: date | None) -> FieldValue | None:
    """The bare value (no label) in canonical form, or None if it is not one."""
    if name == "gtin":
        return v.zfill(14) if is_valid_gtin(v) else None
    if name == "sscc":
        return v if len(v) == 18 and has_valid_check_digit(v) else None
    if name == "lot":
        ok = _LOT_RE.fullmatch(v) and any(ch.isalnum() for ch in v)
        return v if ok else None
    for c in _COMPILED:
        m = c.value_only.fullmatch(v)
        if c.form.field == name and m:
            try:
                return _value(c.form, _parts(c, m), today)
            except _BadValueError as exc:
                raise DockgateError(_INVALID, str(exc), field=name) from exc
    return None


def format_field(
    form: str,
    value: FieldValue,
    *,
    colon: bool = False,
    space: bool = True,
    day00: bool = False,
) -> str:
    """Print ``value`` in form ``form`` (a name from :data:`edge.codes.grammar.FORMS`).

    ``colon``/``space`` choose the optional ``:`` and space after a label word (``LOT: X``,
    ``批号X``); ``day00`` prints a last-of-month date as GS1 day ``00`` in ``YYMMDD`` forms.
    Raises ``ValueError`` if the value cannot be printed in that form (a GTIN-14 without a
    leading zero in a 13-digit form, a month-only form for a date that is not a month's end).
    """
    f = FORMS_BY_NAME[form]
    parts = _slot_values(f, value, day00)
    out: list[str] = []
    for tok in f.tokens:
        if isinstance(tok, Slot):
            out.append(parts[tok.part])
        elif not tok.optional or (tok.text == ":" and colon) or (tok.text == " " and space):
            out.append(tok.text)
    return "".join(out)


def _slot_values(f: Form, value: FieldValue, day00: bool) -> dict[str, str]:
    if f.field in ("gtin", "sscc", "lot"):
        if not isinstance(value, str):
            raise ValueError(f"{f.field} must be a string")
        if f.tag == "gtin13":
            if len(value) != 14 or value[0] != "0":
                raise ValueError("a GTIN-13 form needs a GTIN-14 with a leading zero")
            value = value[1:]
        return {f.field: value}
    if not isinstance(value, date):
        raise ValueError(f"{f.field} must be a date")
    end_of_month = value == _last_day(value.year, value.month)
    if f.month_only and not end_of_month:
        raise ValueError(f"form {f.name} prints no day; {value} is not the last day of its month")
    gs1_day00 = day00 and end_of_month and any(t.kind == "day2_00" for t in f.slots)
    day = "00" if gs1_day00 else f"{value.day:02d}"
    return {
        "year": f"{value.year:04d}",
        "yy": f"{value.year % 100:02d}",
        "month": f"{value.month:02d}",
        "day": day,
        "month_name": MONTHS[value.month - 1],
    }


def printable_forms(field: str, value: FieldValue) -> tuple[str, ...]:
    """Names of the forms that can print ``value`` (see :func:`format_field`)."""
    ok: list[str] = []
    for f in forms_for(field):
        try:
            _slot_values(f, value, False)
        except ValueError:
            continue
        ok.append(f.name)
    return tuple(ok)
