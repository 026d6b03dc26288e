"""Fuzzing the carton-code parsers (edge/codes): printed text, scanner frames, typed fields.

Criterion: never a traceback, never a hang; a bad input comes back as ``CODE_INVALID`` (an issue
in the result, or a DockgateError from ``validate_field``).
"""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.codes import (
    FIELDS,
    CartonCode,
    ParseResult,
    format_scan,
    parse_scan,
    parse_text,
    validate_field,
)
from edge.contracts.errors import DockgateError, ErrorCode
from tests.fuzz.budget import budget, timed

TODAY = date(2026, 11, 22)
GS = "\x1d"
# characters that matter to the grammars, so random strings reach deep branches
GS1_ALPHABET = "0123456789()" + GS + "]CdQe1ABLOTEXPMFGJANAUGlot:/.- \n\r\x04"
gs1ish = st.text(alphabet=GS1_ALPHABET, max_size=120)
anything = st.text(max_size=200)


def _check_result(result: ParseResult) -> None:
    for issue in result.errors:
        assert issue.code is ErrorCode.CODE_INVALID, issue
        assert issue.message


def _mutate(base: str, data: st.DataObject) -> str:
    chars = list(base)
    for _ in range(data.draw(st.integers(0, 6))):
        op = data.draw(st.sampled_from(["flip", "drop", "insert", "dup"]))
        pos = data.draw(st.integers(0, max(0, len(chars) - 1)))
        if op == "flip" and chars:
            chars[pos] = data.draw(st.sampled_from(GS1_ALPHABET))
        elif op == "drop" and chars:
            del chars[pos]
        elif op == "insert":
            chars.insert(pos, data.draw(st.sampled_from(GS1_ALPHABET)))
        elif op == "dup" and chars:
            chars[pos:pos] = chars[pos : pos + data.draw(st.integers(1, 20))]
    return "".join(chars)


VALID = CartonCode(
    gtin="06901234567892", lot="A24B117", expiry=date(2027, 8, 31), sscc="106141411234567897"
)


@budget(400)
@given(st.one_of(anything, gs1ish))
def test_parse_text_never_raises(text: str) -> None:
    _check_result(parse_text(text, today=TODAY))


def _scan(raw: bytes | str) -> None:
    """parse_scan must never raise, whatever the bytes."""
    _check_result(parse_scan(raw))


@pytest.mark.parametrize("frame", ["]", "]1", "]10010614141123456789701069012345678921"])
def test_bracket_without_aim_identifier(frame: str) -> None:
    """Found by this fuzzer: such a frame reached biip.parse, which raised."""
    result = parse_scan(frame)
    _check_result(result)
    assert result.errors and result.errors[0].code.value == "CODE_INVALID"


@budget(400)
@given(st.one_of(st.binary(max_size=200), anything, gs1ish))
def test_parse_scan_never_raises(raw: bytes | str) -> None:
    _scan(raw)


@budget(300)
@given(st.data())
def test_mutated_scanner_frames(data: st.DataObject) -> None:
    order = data.draw(st.permutations(["sscc", "gtin", "expiry", "prod_date", "lot"]))
    sym = data.draw(st.sampled_from(["]C1", "]d2", "]Q3", "]e0", None]))
    frame = _mutate(format_scan(VALID, symbology=sym, order=order), data)
    _scan(frame)
    _check_result(parse_text(frame.replace(GS, ""), today=TODAY))


@budget(400)
@given(st.sampled_from(FIELDS), st.one_of(anything, gs1ish))
def test_validate_field_raises_only_code_invalid(name: str, value: str) -> None:
    try:
        validate_field(name, value, today=TODAY)
    except DockgateError as exc:
        assert exc.code is ErrorCode.CODE_INVALID


def test_huge_inputs_are_bounded() -> None:
    """A stuck scanner or a garbage OCR line of megabytes must not stall the gate."""
    big = "(01)06901234567892(10)" + "A" * 1_000_000
    timed(lambda: _check_result(parse_text(big, today=TODAY)), 5.0)
    # scanner frames are capped by the framer (max_frame_bytes <= 8192): bound that size
    timed(lambda: _check_result(parse_scan("]C1" + "0" * 8192)), 2.0)
    timed(lambda: _check_result(parse_scan(("]C1" + "10A" + GS) * 50_000)), 5.0)
    timed(lambda: _check_result(parse_text("(10)\n" * 100_000, today=TODAY)), 5.0)
    try:
        timed(lambda: validate_field("lot", "A" * 1_000_000, today=TODAY), 5.0)
    except DockgateError as exc:
        assert exc.code is ErrorCode.CODE_INVALID
