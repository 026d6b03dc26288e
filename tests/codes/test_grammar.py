"""The grammar as data (templates for the OCR decoder) and print -> parse round-trips."""

from __future__ import annotations

import re
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.codes import (
    CHARSET,
    FIELDS,
    FORMS,
    LOT_CHARS,
    SLOT_KINDS,
    CartonCode,
    Lit,
    Slot,
    format_field,
    forms_for,
    gs1_check_digit,
    parse_text,
    printable_forms,
)

TODAY = date(2026, 1, 1)


def test_slot_kinds_are_consistent() -> None:
    for kind in SLOT_KINDS.values():
        assert 1 <= kind.min_len <= kind.max_len
        assert set("".join(kind.positions)) <= set(kind.charset)
        if kind.positions:
            assert kind.min_len == kind.max_len == len(kind.positions)
        for value in kind.choices:
            assert re.fullmatch(kind.regex, value)
            assert all(ch in kind.allowed(i) for i, ch in enumerate(value))
    assert SLOT_KINDS["month2"].choices[0] == "01" and len(SLOT_KINDS["month2"].choices) == 12
    assert SLOT_KINDS["gtin14"].check_digit and not SLOT_KINDS["lot"].check_digit
    assert SLOT_KINDS["lot"].allowed(7) == LOT_CHARS


def test_every_form_prints_and_parses_back_to_itself() -> None:
    assert {f.field for f in FORMS} == set(FIELDS)
    for form in FORMS:
        text = form.example
        assert set(text) <= set(CHARSET), text
        r = parse_text(text, today=TODAY)
        assert r.ok and r.forms == {form.field: form.name}, (form.name, text, r.errors)
        assert any(isinstance(t, Slot) for t in form.tokens)
        first = form.tokens[0]
        assert not (isinstance(first, Lit) and first.optional)  # the parser indexes first chars
        assert all(isinstance(t, Lit | Slot) for t in form.tokens)


def test_charset_is_small_and_covers_labels() -> None:
    assert set("批号有效期至生产日") <= set(CHARSET)
    assert set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ()-./: ") <= set(CHARSET)
    assert len(CHARSET) < 60


def test_format_options() -> None:
    exp = date(2027, 8, 31)
    assert format_field("lot_cn", "A24B117", colon=True, space=False) == "批号:A24B117"
    assert format_field("exp_cn_dot", exp) == "有效期至 2027.08.31"
    assert format_field("ai17", exp, day00=True) == "(17)270800"
    assert format_field("exp_dash", exp, day00=True) == "EXP 2027-08-31"
    assert format_field("gtin13_bare", "06901234567892") == "6901234567892"
    assert "best_by_month" not in printable_forms("expiry", date(2027, 8, 30))
    assert "gtin13_bare" not in printable_forms("gtin", "10614141000033")
    assert len(forms_for("expiry")) == len(printable_forms("expiry", exp))


# --- property: print a random valid code in random forms, parse it back --------------------


@st.composite
def gtins(draw: st.DrawFn) -> str:
    body = draw(st.text("0123456789", min_size=13, max_size=13))
    return body + str(gs1_check_digit(body))


@st.composite
def ssccs(draw: st.DrawFn) -> str:
    body = draw(st.text("0123456789", min_size=17, max_size=17))
    return body + str(gs1_check_digit(body))


lots = st.text(LOT_CHARS, min_size=3, max_size=20).filter(lambda s: any(c.isalnum() for c in s))
days = st.dates(date(2000, 1, 1), date(2075, 12, 31))


@st.composite
def codes(draw: st.DrawFn) -> CartonCode:
    expiry = draw(days)
    if draw(st.booleans()):  # month-only prints need the month's last day
        expiry = (expiry.replace(day=1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    prod = draw(st.none() | st.dates(date(2000, 1, 1), expiry))
    return CartonCode(draw(gtins()), draw(lots), expiry, prod, draw(st.none() | ssccs()))


@settings(max_examples=300, deadline=None)
@given(codes(), st.data())
def test_round_trip(code: CartonCode, data: st.DataObject) -> None:
    pieces: list[str] = []
    for field in FIELDS:
        value = getattr(code, field)
        if value is None:
            continue
        form = data.draw(st.sampled_from(printable_forms(field, value)))
        opts = data.draw(st.fixed_dictionaries({"colon": st.booleans(), "space": st.booleans()}))
        pieces.append(format_field(form, value, day00=data.draw(st.booleans()), **opts))
    order = data.draw(st.permutations(pieces))
    n_lines = data.draw(st.integers(1, min(3, len(order))))
    cuts = sorted(
        data.draw(
            st.sets(st.integers(1, len(order) - 1), min_size=n_lines - 1, max_size=n_lines - 1)
        )
        if len(order) > 1
        else []
    )
    lines: list[str] = []
    for lo, hi in zip([0, *cuts], [*cuts, len(order)], strict=True):
        line = ""
        for piece in order[lo:hi]:
            glue = (
                ""
                if piece.startswith("(") and data.draw(st.booleans())
                else " " * data.draw(st.integers(1, 2))
            )
            line = piece if not line else line + glue + piece
        lines.append(line)
    text = "\n".join(lines)
    r = parse_text(text, today=TODAY)
    assert r.ok, (text, r.errors)
    assert r.carton() == code, text
