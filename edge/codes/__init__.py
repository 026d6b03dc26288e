"""The carton-code grammar: GS1 element strings, printed-label forms and check digits.

One module for every way a code reaches Dockgate: OCR text of a printed label
(:func:`parse_text`), a barcode scanner frame (:func:`parse_scan`), a value typed in the panel
(:func:`validate_field`). The printed forms are data (:data:`FORMS`, :data:`CHARSET`,
:data:`SLOT_KINDS`) so the OCR decoder can constrain itself to exactly what parses here, and
:func:`format_field` prints any value in any form (fixtures and property tests use it).

Quick use::

    >>> from edge.codes import parse_text
    >>> r = parse_text("(01)06901234567892(17)270831(10)A24B117")
    >>> r.carton().as_dict()["expiry"], r.forms["lot"]
    ('2027-08-31', 'ai10')
"""

from edge.codes.checkdigit import (
    gs1_check_digit,
    gtin_check_digit,
    has_valid_check_digit,
    is_valid_gtin,
    is_valid_sscc,
    normalize_gtin,
    recover_digit,
    sscc_check_digit,
)
from edge.codes.grammar import (
    CHARSET,
    FIELDS,
    FORMS,
    FORMS_BY_NAME,
    LOT_CHARS,
    LOT_MAX,
    LOT_MIN,
    MONTHS,
    SLOT_KINDS,
    Form,
    Lit,
    Slot,
    SlotKind,
    forms_for,
)
from edge.codes.model import CartonCode, CodeIssue, FieldMatch, ParseResult
from edge.codes.normalize import normalize
from edge.codes.scan import format_scan, parse_scan
from edge.codes.text import format_field, gs1_year, parse_text, printable_forms, validate_field

__all__ = [
    "CHARSET",
    "FIELDS",
    "FORMS",
    "FORMS_BY_NAME",
    "LOT_CHARS",
    "LOT_MAX",
    "LOT_MIN",
    "MONTHS",
    "SLOT_KINDS",
    "CartonCode",
    "CodeIssue",
    "FieldMatch",
    "Form",
    "Lit",
    "ParseResult",
    "Slot",
    "SlotKind",
    "format_field",
    "format_scan",
    "forms_for",
    "gs1_check_digit",
    "gs1_year",
    "gtin_check_digit",
    "has_valid_check_digit",
    "is_valid_gtin",
    "is_valid_sscc",
    "normalize",
    "normalize_gtin",
    "parse_scan",
    "parse_text",
    "printable_forms",
    "recover_digit",
    "sscc_check_digit",
    "validate_field",
]
