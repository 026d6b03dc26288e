"""GS1 mod-10 check digits: known values, every single-digit corruption, recovery."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.codes import (
    gs1_check_digit,
    gtin_check_digit,
    has_valid_check_digit,
    is_valid_gtin,
    is_valid_sscc,
    normalize_gtin,
    recover_digit,
    sscc_check_digit,
)
from edge.contracts.errors import DockgateError, ErrorCode

VALID = [
    "96385074",  # GTIN-8 (GS1 example)
    "614141000036",  # GTIN-12 / UPC-A
    "6901234567892",  # GTIN-13
    "06901234567892",  # the same, padded to GTIN-14
    "10614141000033",  # GTIN-14 with packaging indicator 1
    "4006381333931",
]


@pytest.mark.parametrize("gtin", VALID)
def test_known_gtins_are_valid(gtin: str) -> None:
    assert is_valid_gtin(gtin)
    assert gtin_check_digit(gtin[:-1]) == int(gtin[-1])
    assert normalize_gtin(gtin) == gtin.zfill(14)
    assert len(normalize_gtin(gtin)) == 14


@pytest.mark.parametrize("gtin", VALID)
def test_every_single_digit_corruption_is_caught(gtin: str) -> None:
    for pos, orig in enumerate(gtin):
        for d in "0123456789":
            if d != orig:
                assert not is_valid_gtin(gtin[:pos] + d + gtin[pos + 1 :]), (pos, d)


def test_sscc_check_digit() -> None:
    assert sscc_check_digit("36901234000000001") == 7
    assert is_valid_sscc("369012340000000017")
    # The example printed in issue 4 carries a wrong check digit (it must be 7, not 8).
    assert not is_valid_sscc("369012340000000018")
    assert is_valid_sscc("106141411234567897")
    assert not is_valid_sscc("06901234567892")  # wrong length


@pytest.mark.parametrize(
    "bad", ["", "123", "6901234567892 ", "690123456789X", "６９01234567892", "123456789012345"]
)
def test_rejects_non_gtins(bad: str) -> None:
    assert not is_valid_gtin(bad)
    with pytest.raises(DockgateError) as info:
        normalize_gtin(bad)
    assert info.value.code is ErrorCode.CODE_INVALID


def test_bad_bodies_raise_code_invalid() -> None:
    for call, arg in [
        (gtin_check_digit, "123"),
        (sscc_check_digit, "1234"),
        (gs1_check_digit, "12a"),
        (gs1_check_digit, ""),
    ]:
        with pytest.raises(DockgateError) as info:
            call(arg)
        assert info.value.code is ErrorCode.CODE_INVALID


@given(st.text("0123456789", min_size=7, max_size=17), st.data())
def test_one_erased_digit_is_recoverable(body: str, data: st.DataObject) -> None:
    code = body + str(gs1_check_digit(body))
    assert has_valid_check_digit(code)
    at = data.draw(st.integers(0, len(code) - 1))
    assert recover_digit(code[:at] + "?" + code[at + 1 :]) == code


def test_recover_digit_needs_exactly_one_gap() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        recover_digit("69012345678??")


def test_every_single_digit_corruption_of_an_sscc_is_caught() -> None:
    sscc = "369012340000000017"
    for pos, orig in enumerate(sscc):
        for d in "0123456789":
            if d != orig:
                assert not is_valid_sscc(sscc[:pos] + d + sscc[pos + 1 :]), (pos, d)
