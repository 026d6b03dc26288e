"""Result types of the code grammar: a complete carton code and the outcome of one parse."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from edge.contracts.errors import ErrorCode

FieldValue = str | date


@dataclass(frozen=True)
class CartonCode:
    """What a carton's printed code says: the keys the ledger books stock under."""

    gtin: str  # GTIN-14 (a GTIN-13 is left-padded with one zero)
    lot: str  # A-Z 0-9 -, 3..20 characters
    expiry: date  # month-only prints give the last day of the month
    prod_date: date | None = None
    sscc: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """JSON form with ISO dates."""
        return {
            "gtin": self.gtin,
            "lot": self.lot,
            "expiry": self.expiry.isoformat(),
            "prod_date": self.prod_date.isoformat() if self.prod_date else None,
            "sscc": self.sscc,
        }


@dataclass(frozen=True)
class FieldMatch:
    """One field found in the input: its typed value, the form it was printed in, where."""

    field: str  # one of edge.codes.grammar.FIELDS
    value: FieldValue
    form: str  # a name from edge.codes.grammar.FORMS, or "gs1:<AI>" for scanner element strings
    raw: str  # the exact normalised text of the match (label included)
    line: int = 0
    span: tuple[int, int] = (0, 0)  # character offsets in the normalised line


@dataclass(frozen=True)
class CodeIssue:
    """A problem with stable code (``CODE_INVALID`` for bad patterns and check digits)."""

    code: ErrorCode
    message: str
    field: str | None = None
    line: int | None = None
    span: tuple[int, int] | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code.value,
            "message": self.message,
            "field": self.field,
            "line": self.line,
        }


@dataclass(frozen=True)
class ParseResult:
    """Everything one parse found. ``ok`` means no issues; :meth:`carton` needs the key fields."""

    text: str  # the normalised input (printed text) or the scanner payload
    matches: tuple[FieldMatch, ...] = ()
    errors: tuple[CodeIssue, ...] = ()
    symbology: str | None = None  # AIM identifier (``]C1``...) for scanner input
    extras: dict[str, str] = field(default_factory=dict)  # other GS1 AIs, e.g. {"21": "SER1"}

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def fields(self) -> dict[str, FieldValue]:
        """Field name -> value (fields found more than once agree, or there is an issue)."""
        return {m.field: m.value for m in self.matches}

    @property
    def forms(self) -> dict[str, str]:
        """Field name -> the form it came from."""
        return {m.field: m.form for m in self.matches}

    def _str(self, name: str) -> str | None:
        v = self.fields.get(name)
        return v if isinstance(v, str) else None

    def _date(self, name: str) -> date | None:
        v = self.fields.get(name)
        return v if isinstance(v, date) else None

    @property
    def gtin(self) -> str | None:
        return self._str("gtin")

    @property
    def lot(self) -> str | None:
        return self._str("lot")

    @property
    def sscc(self) -> str | None:
        return self._str("sscc")

    @property
    def expiry(self) -> date | None:
        return self._date("expiry")

    @property
    def prod_date(self) -> date | None:
        return self._date("prod_date")

    def carton(self) -> CartonCode | None:
        """The complete code, or None if there are issues or gtin, lot or expiry is missing."""
        if not self.ok or self.gtin is None or self.lot is None or self.expiry is None:
            return None
        return CartonCode(self.gtin, self.lot, self.expiry, self.prod_date, self.sscc)

    def as_dict(self) -> dict[str, object]:
        """JSON form: fields (ISO dates), their forms, and issues."""
        return {
            "fields": {
                k: v.isoformat() if isinstance(v, date) else v for k, v in self.fields.items()
            },
            "forms": self.forms,
            "errors": [e.as_dict() for e in self.errors],
            "symbology": self.symbology,
            "extras": self.extras,
        }
