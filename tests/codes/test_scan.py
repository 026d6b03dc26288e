"""Scanner frames: AIM identifiers, FNC1 as GS, HRI, plain EAN/UPC, bad frames."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.codes import LOT_CHARS, CartonCode, format_scan, gs1_check_digit, parse_scan, parse_text

GS = "\x1d"
CODE = CartonCode("06901234567892", "A24B117", date(2027, 8, 31), date(2025, 8, 31))


@pytest.mark.parametrize(
    "frame",
    [
        # GS1-128: fixed-length AIs need no separator; the variable-length lot ends with GS.
        "]C1010690123456789210A24B117" + GS + "1727083111250831\r\n",
        # GS1 DataMatrix with a leading FNC1 sent as GS, lot last (no trailing separator).
        "]d2" + GS + "01069012345678921727083111250831" + GS + "10A24B117",
        "]Q3" + "0106901234567892" + GS + "10A24B117" + GS + "17270831" + GS + "11250831",
        # DataBar expanded, day 00 (= last day of August)
        "]e0" + "01069012345678921727080011250831" + "10A24B117",
        # no AIM prefix, as many scanners are configured
        "0106901234567892" + "17270831" + "11250831" + "10A24B117",
        # human-readable form
        "(01)06901234567892(17)270831(11)250831(10)A24B117",
    ],
)
def test_gs1_frames(frame: str) -> None:
    r = parse_scan(frame.encode("ascii"))
    assert r.ok, r.errors
    assert r.carton() == CODE
    assert set(r.forms.values()) <= {"gs1:01", "gs1:10", "gs1:17", "gs1:11"}


def test_symbology_is_reported_and_extras_kept() -> None:
    r = parse_scan("]C1" + "0106901234567892" + "21SER-77" + GS + "10A24B117" + GS + "37" + "12")
    assert r.symbology == "]C1"
    assert r.extras == {"21": "SER-77", "37": "12"}
    assert r.lot == "A24B117"


def test_scan_and_print_of_the_same_code_agree() -> None:
    printed = parse_text("(01)06901234567892\nLOT A24B117 EXP 2027-08-31\nPROD 2025-08-31")
    scanned = parse_scan("]C10106901234567892172708311125083110A24B117")
    assert printed.carton() == scanned.carton() == CODE


@pytest.mark.parametrize(
    ("frame", "gtin"),
    [
        ("]E06901234567892", "06901234567892"),  # EAN-13
        ("]E496385074", "00000096385074"),  # EAN-8
        ("614141000036", "00614141000036"),  # UPC-A without prefix
        ("10614141000033", "10614141000033"),
    ],
)
def test_plain_gtins(frame: str, gtin: str) -> None:
    r = parse_scan(frame)
    assert r.ok and r.gtin == gtin


def test_sscc_alone() -> None:
    assert parse_scan("369012340000000017").sscc == "369012340000000017"
    assert parse_scan("]C100369012340000000017").sscc == "369012340000000017"
    assert not parse_scan("369012340000000018").ok


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\r\n",
        b"]C1",
        b"\xff\xfe",
        b"hello",
        b"]C10106901234567893",  # GTIN check digit
        b"]C10106901234567892" + b"17271331",  # month 13
        b"]C10106901234567892" + b"10a24b117",  # lot outside A-Z 0-9 -
        b"]C10106901234567892" + b"10AB",  # lot too short
        b"]E06901234567893",
        b"(17)271301",
    ],
)
def test_bad_frames(frame: bytes) -> None:
    r = parse_scan(frame)
    assert not r.ok
    assert r.carton() is None
    assert all(e.code.value == "CODE_INVALID" for e in r.errors)


@st.composite
def _codes(draw: st.DrawFn) -> CartonCode:
    def mod10(n: int) -> str:
        body = draw(st.text("0123456789", min_size=n - 1, max_size=n - 1))
        return body + str(gs1_check_digit(body))

    expiry = draw(st.dates(date(2000, 1, 1), date(2049, 12, 31)))
    prod = draw(st.none() | st.dates(date(2000, 1, 1), expiry))
    lot = draw(
        st.text(LOT_CHARS, min_size=3, max_size=20).filter(lambda s: any(c.isalnum() for c in s))
    )
    return CartonCode(mod10(14), lot, expiry, prod, draw(st.none() | st.just(mod10(18))))


@settings(max_examples=200, deadline=None)
@given(
    _codes(),
    st.permutations(["sscc", "gtin", "expiry", "prod_date", "lot"]),
    st.sampled_from(["]C1", "]d2", "]Q3", "]e0", None]),
    st.booleans(),
    st.sampled_from(["", "\r\n", "\r", "\n"]),
)
def test_scan_round_trip(
    code: CartonCode, order: list[str], sym: str | None, day00: bool, end: str
) -> None:
    """Any field order (the lot mid-string needs its GS), any GS1 symbology, terminators."""
    frame = format_scan(code, symbology=sym, order=order, day00=day00) + end
    r = parse_scan(frame.encode("ascii"))
    assert r.ok, (frame, r.errors)
    assert r.carton() == code
    assert r.symbology == sym


def test_format_scan_example() -> None:
    assert format_scan(CODE) == "]C1010690123456789217270831112508311" + "0A24B117"
    assert format_scan(CODE, order=("lot", "gtin"), symbology=None) == (
        "10A24B117" + GS + "0106901234567892"
    )
