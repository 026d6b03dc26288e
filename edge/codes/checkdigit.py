"""GS1 mod-10 check digits for GTIN-8/12/13/14 and SSCC-18.

Weights 3, 1, 3, ... are counted from the digit next to the check digit. Because 3 and 10
are coprime, every single-digit substitution changes the sum, so it is always caught, and a
single erased digit can be recovered from the others (:func:`recover_digit`): the OCR decoder
relies on both.
"""

from __future__ import annotations

from edge.contracts.errors import DockgateError, ErrorCode

GTIN_LENGTHS = (8, 12, 13, 14)
SSCC_LENGTH = 18


def gs1_check_digit(body: str) -> int:
    """Check digit that completes ``body`` (all digits but the last) under the GS1 mod-10 rule."""
    if not body or not body.isascii() or not body.isdigit():
        raise DockgateError(
            ErrorCode.CODE_INVALID, "check-digit body must be ASCII digits", value=body
        )
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def has_valid_check_digit(code: str) -> bool:
    """True if ``code`` is all ASCII digits (at least two) and its last digit checks."""
    if len(code) < 2 or not code.isascii() or not code.isdigit():
        return False
    return gs1_check_digit(code[:-1]) == int(code[-1])


def gtin_check_digit(gtin_without_check: str) -> int:
    """Check digit for a GTIN body of 7, 11, 12 or 13 digits (GTIN-8/12/13/14 minus the last)."""
    if len(gtin_without_check) + 1 not in GTIN_LENGTHS:
        raise DockgateError(
            ErrorCode.CODE_INVALID,
            "a GTIN body has 7, 11, 12 or 13 digits",
            value=gtin_without_check,
        )
    return gs1_check_digit(gtin_without_check)


def is_valid_gtin(gtin: str) -> bool:
    """True for a GTIN-8, -12, -13 or -14 with a correct check digit."""
    return len(gtin) in GTIN_LENGTHS and has_valid_check_digit(gtin)


def normalize_gtin(gtin: str) -> str:
    """The GTIN-14 form (left-padded with zeros) of a valid GTIN-8/12/13/14.

    Raises :class:`DockgateError` (``CODE_INVALID``) for anything else.
    """
    if not is_valid_gtin(gtin):
        raise DockgateError(
            ErrorCode.CODE_INVALID, "not a GTIN with a valid check digit", value=gtin
        )
    return gtin.zfill(14)


def is_valid_sscc(sscc: str) -> bool:
    """True for an 18-digit SSCC with a correct check digit."""
    return len(sscc) == SSCC_LENGTH and has_valid_check_digit(sscc)


def sscc_check_digit(sscc_without_check: str) -> int:
    """Check digit for the 17-digit body of an SSCC."""
    if len(sscc_without_check) != SSCC_LENGTH - 1:
        raise DockgateError(
            ErrorCode.CODE_INVALID, "an SSCC body has 17 digits", value=sscc_without_check
        )
    return gs1_check_digit(sscc_without_check)


def recover_digit(code: str, missing: str = "?") -> str:
    """Fill the one unknown position (marked ``missing``) of a mod-10 code so it checks.

    Works for any position, the check digit included; exactly one position may be unknown.
    """
    if code.count(missing) != 1:
        raise ValueError("exactly one position must be unknown")
    at = code.index(missing)
    for d in "0123456789":
        candidate = code[:at] + d + code[at + 1 :]
        if has_valid_check_digit(candidate):
            return candidate
    raise AssertionError("unreachable: weights 1 and 3 are coprime with 10")  # pragma: no cover
