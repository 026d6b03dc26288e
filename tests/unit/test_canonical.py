"""canonical_json's fast path (the C JSON encoder) writes exactly the bytes of the reference
RFC 8785 implementation, or fails the same way, for any JSON-like value."""

from __future__ import annotations

import math
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.contracts.event import canonical_json

# every character class that matters: ASCII controls and quotes, non-BMP (sorts differently in
# UTF-16), lone surrogates (not encodable), CJK as printed on cartons
TEXT = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0, max_codepoint=0x7F),
        st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010),
        st.characters(min_codepoint=0xFFF0, max_codepoint=0x1F600),
        st.sampled_from("批号有效期至生产日\u2028\u2029\x7f"),
    ),
    max_size=12,
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**60), max_value=2**60),
    st.sampled_from([2**53 - 1, 2**53, -(2**53) + 1, -(2**53), 0, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(
            st.one_of(TEXT, st.sampled_from(["a", "B", "_", "é", "\U0001f600"])), inner, max_size=5
        ),
    ),
    max_leaves=25,
)


def _reference(value: Any) -> bytes | type[BaseException]:
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as e:
        return type(e)


def _fast(value: Any) -> bytes | type[BaseException]:
    try:
        return canonical_json(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as e:
        return type(e)


@settings(max_examples=3000, deadline=None)
@given(VALUES)
def test_fast_path_equals_rfc8785(value: Any) -> None:
    assert _fast(value) == _reference(value)


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [True, False, None], "c": {"\u00e9": "x", "z": '\x00\x1f"\\/'}},
        {"\U0001f600": 1, "\uffff": 2},  # UTF-16 order puts the emoji first
        [1.0, 1e21, 1e-7, -0.0, 5e-324],
        {"n": 2**53},
        ("tuple", 1),
        "\ud800",
        {1: "int key"},
        math.inf,
    ],
)
def test_edge_cases_match_the_reference(value: Any) -> None:
    assert _fast(value) == _reference(value)


def test_deep_nesting_fails_like_the_reference() -> None:
    deep: Any = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(RecursionError):
        rfc8785.dumps(deep)
    with pytest.raises(RecursionError):
        canonical_json(deep)
