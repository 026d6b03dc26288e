"""Printed-label forms: every form of issue 4, normalisation, several fields per line, rejects."""

from __future__ import annotations

from datetime import date

import pytest

from edge.codes import CartonCode, normalize, parse_text, validate_field
from edge.contracts.errors import DockgateError, ErrorCode

GTIN = "06901234567892"
EXP = date(2027, 8, 31)
PROD = date(2025, 8, 31)


@pytest.mark.parametrize(
    ("text", "field", "value", "form"),
    [
        ("(01)06901234567892", "gtin", GTIN, "ai01"),
        ("GTIN 06901234567892", "gtin", GTIN, "gtin_label"),
        ("GTIN: 6901234567892", "gtin", GTIN, "gtin13_label"),
        ("06901234567892", "gtin", GTIN, "gtin_bare"),
        ("6901234567892", "gtin", GTIN, "gtin13_bare"),
        ("(10)A24B117", "lot", "A24B117", "ai10"),
        ("LOT A24B117", "lot", "A24B117", "lot_label"),
        ("LOT: A24B117", "lot", "A24B117", "lot_label"),
        ("Lot:A24B117", "lot", "A24B117", "lot_label"),
        ("批号 A24B117", "lot", "A24B117", "lot_cn"),
        ("批号:A24B117", "lot", "A24B117", "lot_cn"),
        ("批号：A24B117", "lot", "A24B117", "lot_cn"),
        ("LOT 24-0817-B", "lot", "24-0817-B", "lot_label"),
        ("(17)270831", "expiry", EXP, "ai17"),
        ("(17)270800", "expiry", EXP, "ai17"),  # day 00 = last day of the month
        ("(17)240200", "expiry", date(2024, 2, 29), "ai17"),  # leap year
        ("(15)270831", "expiry", EXP, "ai15"),
        ("EXP 2027-08-31", "expiry", EXP, "exp_dash"),
        ("EXP 2027.08.31", "expiry", EXP, "exp_dot"),
        ("EXP 2027/08/31", "expiry", EXP, "exp_slash"),
        ("EXP: 2027/08/31", "expiry", EXP, "exp_slash"),
        ("有效期至 2027.08.31", "expiry", EXP, "exp_cn_dot"),
        ("有效期至2027-08-31", "expiry", EXP, "exp_cn_dash"),
        ("EXP 08/2027", "expiry", EXP, "exp_month_slash"),
        ("EXP 08/27", "expiry", EXP, "exp_month_slash_yy"),
        ("EXP 08 2027", "expiry", EXP, "exp_month_space"),
        ("EXP 02/2028", "expiry", date(2028, 2, 29), "exp_month_slash"),
        ("BEST BY AUG 2027", "expiry", EXP, "best_by_month"),
        ("best by feb 2027", "expiry", date(2027, 2, 28), "best_by_month"),
        ("PROD 2025-08-31", "prod_date", PROD, "prod_dash"),
        ("生产日期 2025.08.31", "prod_date", PROD, "prod_cn_dot"),
        ("(11)250831", "prod_date", PROD, "ai11"),
        ("(00)369012340000000017", "sscc", "369012340000000017", "ai00"),
        ("SSCC 369012340000000017", "sscc", "369012340000000017", "sscc_label"),
    ],
)
def test_every_form(text: str, field: str, value: object, form: str) -> None:
    r = parse_text(text, today=date(2026, 1, 1))
    assert r.ok, r.errors
    assert r.fields == {field: value}
    assert r.forms == {field: form}


def test_hri_element_string_on_one_line() -> None:
    r = parse_text("(01)06901234567892(17)270831(10)A24B117")
    assert r.carton() == CartonCode(GTIN, "A24B117", EXP)
    assert r.forms == {"gtin": "ai01", "expiry": "ai17", "lot": "ai10"}


def test_three_lines_mixed_forms() -> None:
    text = (
        "GTIN 06901234567892 (00)369012340000000017\n"
        "批号:A24B117  有效期至2027-08-31\n"
        "生产日期 2025.08.31"
    )
    code = parse_text(text).carton()
    assert code == CartonCode(GTIN, "A24B117", EXP, PROD, "369012340000000017")
    assert code.as_dict() == {
        "gtin": GTIN,
        "lot": "A24B117",
        "expiry": "2027-08-31",
        "prod_date": "2025-08-31",
        "sscc": "369012340000000017",
    }


def test_full_width_and_spacing_are_normalised() -> None:
    assert normalize(
        "  （０１）０６９０１２３４５６７８９２ \u3000 lot：a24b117\r\n\n exp  08/27 "
    ) == ("(01)06901234567892 LOT:A24B117\nEXP 08/27")
    r = parse_text("（０１）06901234567892　LOT：a24b117\nEXP\t2027–08–31")
    assert r.ok and r.lot == "A24B117" and r.expiry == EXP and r.gtin == GTIN


def test_same_field_twice_must_agree() -> None:
    assert parse_text("(01)06901234567892 GTIN 06901234567892").ok
    r = parse_text("LOT A24B117 (10)A24B118")
    assert not r.ok and r.errors[0].field == "lot" and "twice" in r.errors[0].message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("(01)06901234567893", "gtin"),  # check digit
        ("06901234567893", "gtin"),
        ("(00)369012340000000018", "sscc"),  # issue 4's example has a wrong check digit
        ("LOT AB", "lot"),  # too short
        ("LOT ABCDEFGHIJKLMNOPQRSTU", "lot"),  # 21 characters
        ("LOT A24_B117", "lot"),  # illegal character
        ("LOT ---", "lot"),
        ("EXP 2027-02-30", "expiry"),  # not a calendar date
        ("EXP 2027-08-00", "expiry"),  # day 00 is GS1's YYMMDD rule only
        ("EXP 2027-13-01", "expiry"),
        ("EXP 13/2027", "expiry"),
        ("(17)271301", "expiry"),
        ("(17)270832", "expiry"),
        ("BEST BY AUX 2027", "expiry"),
        ("EXP 1999-08-31", "expiry"),
        ("PROD 2025-00-10", "prod_date"),
        ("(01)069012345678921", None),  # trailing garbage digit
        ("(10)A24B117 XYZ", None),
        ("LOT A24B117;", None),
        ("HELLO", None),
    ],
)
def test_rejects(text: str, field: str | None) -> None:
    r = parse_text(text)
    assert not r.ok
    assert r.carton() is None
    assert all(e.code is ErrorCode.CODE_INVALID for e in r.errors)
    if field is not None:
        assert field in {e.field for e in r.errors}, r.errors


def test_rejects_structure() -> None:
    assert not parse_text("").ok
    assert not parse_text("   \n ").ok
    assert not parse_text("LOT A1B\nLOT A1B\nLOT A1B\nLOT A1B").ok  # 4 lines
    assert not parse_text("PROD 2028-01-01 EXP 2027-08-31").ok  # produced after expiry
    incomplete = parse_text("LOT A24B117 EXP 08/27")
    assert incomplete.ok and incomplete.carton() is None


def test_errors_name_the_line_and_field() -> None:
    r = parse_text("(01)06901234567892\nLOT AB")
    assert r.gtin == GTIN  # what parsed is still reported
    (issue,) = r.errors
    assert issue.line == 1 and issue.field == "lot" and "line 2" in issue.message
    assert r.as_dict()["errors"] == [issue.as_dict()]


def test_yy_uses_gs1_sliding_century() -> None:
    assert parse_text("(17)760101", today=date(2026, 1, 1)).expiry == date(2076, 1, 1)
    # 77 is more than 50 years ahead of 2026: previous century, out of the accepted range
    assert not parse_text("(17)770101", today=date(2026, 1, 1)).ok


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("gtin", "6901234567892", GTIN),
        ("gtin", "96385074", "00000096385074"),
        ("gtin", " 06901234567892 ", GTIN),
        ("sscc", "369012340000000017", "369012340000000017"),
        ("lot", "a24b117", "A24B117"),
        ("expiry", "2027-08-31", EXP),
        ("expiry", "2027.08.31", EXP),
        ("expiry", "270800", EXP),
        ("expiry", "08/2027", EXP),
        ("expiry", "AUG 2027", EXP),
        ("expiry", "EXP 08/27", EXP),
        ("expiry", "有效期至2027-08-31", EXP),
        ("prod_date", "2025/08/31", PROD),
        ("gtin", "(01)06901234567892", GTIN),
        ("gtin", "GTIN: 6901234567892", GTIN),
        ("lot", "LOT: a24b117", "A24B117"),
        ("lot", "批号A24B117", "A24B117"),
        ("sscc", "(00)369012340000000017", "369012340000000017"),
    ],
)
def test_validate_field(name: str, value: str, expected: object) -> None:
    assert validate_field(name, value) == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("gtin", "06901234567893"),
        ("gtin", "GTIN"),
        ("sscc", "369012340000000018"),
        ("lot", "AB"),
        ("lot", "A" * 21),
        ("lot", "A B C"),
        ("expiry", "2027-02-30"),
        ("expiry", "LOT A24B117"),
        ("expiry", "tomorrow"),
        ("prod_date", "EXP 2027-08-31"),
        ("colour", "red"),
        ("gtin", "(01)06901234567893"),
        ("gtin", "LOT A24B117"),
        ("lot", "(01)06901234567892"),
        ("lot", "LOT A24B117 EXP 08/27"),
    ],
)
def test_validate_field_rejects(name: str, value: str) -> None:
    with pytest.raises(DockgateError) as info:
        validate_field(name, value)
    assert info.value.code is ErrorCode.CODE_INVALID


def test_a_month_name_that_only_fits_the_pattern_is_code_invalid() -> None:
    # the month-name slot is matched column by column, so "MAN" or "JEB" fit it (an OCR misread
    # of RapidOCR's once crashed parse_text here with a ValueError)
    import itertools

    from edge.codes.grammar import MONTHS, SLOT_KINDS

    cols = SLOT_KINDS["month_name"].positions
    assert cols is not None
    for letters in itertools.product(*cols):
        name = "".join(letters)
        result = parse_text(f"BEST BY {name} 2027", today=date(2026, 12, 6))
        if name in MONTHS:
            assert not result.errors, name
        else:
            assert [i.code for i in result.errors] == [ErrorCode.CODE_INVALID], name
