"""Code normalisation on the way in: one form, or CODE_INVALID; never half-clean."""

from __future__ import annotations

import pytest

from edge.contracts.errors import DockgateError, ErrorCode
from edge.ledger import codes


@pytest.mark.parametrize(
    ("kind", "raw", "want"),
    [
        ("sku", "  abc-1 ", "ABC-1"),
        ("sku", "ＡＢＣ－１", "ABC-1"),  # full-width letters, digits and dash
        ("sku", "abc\u20131", "ABC-1"),  # en dash looks like a dash on a label
        ("lot", "\u3000l24b117\t", "L24B117"),  # ideographic space, tab
        ("location", "a-01", "A-01"),
        ("unit", "cs", "CS"),
    ],
)
def test_normalised(kind: str, raw: str, want: str) -> None:
    assert codes.normalise(kind, raw) == want


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("sku", "AB C"),
        ("sku", ""),
        ("lot", "L1\nL2"),
        ("lot", "X" * 21),
        ("location", "A/1"),
        ("sku", 42),
        ("unit", "1CS"),
    ],
)
def test_rejected(kind: str, raw: object) -> None:
    with pytest.raises(DockgateError) as exc:
        codes.normalise(kind, raw)
    assert exc.value.code == ErrorCode.CODE_INVALID


def test_gtin() -> None:
    assert codes.normalise_gtin("４００６３８１３３３９３１") == "04006381333931"
    assert codes.normalise_gtin("96385074") == "00000096385074"
    for bad in ("4006381333932", "40063813339", "ABCDEFGH", "0400638133393１2"):
        with pytest.raises(DockgateError) as exc:
            codes.normalise_gtin(bad)
        assert exc.value.code == ErrorCode.CODE_INVALID


def test_expiry_and_actor() -> None:
    assert codes.normalise_expiry("２０２７-０１-３１") == "2027-01-31"
    assert codes.normalise_expiry(None) is None
    with pytest.raises(DockgateError):
        codes.normalise_expiry("2027-02-30")
    assert codes.check_actor("cloud:edge-07") == "cloud:edge-07"
    for bad in ("anna", "user:", "user:a b", ":x"):
        with pytest.raises(DockgateError):
            codes.check_actor(bad)
