"""The printed carton-code grammar as data: line templates of literal tokens and typed slots.

One table (:data:`FORMS`) drives three consumers, so they cannot drift apart:

- the text parser (:mod:`edge.codes.text`) compiles each form to a regular expression;
- the label formatter (:func:`edge.codes.text.format_field`) fills a form's slots (fixtures and
  property tests print codes with it);
- the OCR engineer's grammar-constrained CTC decoder walks the tokens: a :class:`Lit` is a fixed
  character sequence (``optional`` ones may be skipped), a :class:`Slot` says which characters
  may stand at each position (:meth:`SlotKind.allowed`), how long it may be, whether its last
  digit is a GS1 mod-10 check digit, and, where the set is small, every legal value
  (:attr:`SlotKind.choices`, e.g. the 12 months) so a decoder can score whole values.

A *line* of a carton code is one or more forms, optionally separated by single spaces
(``(01)06901234567892(17)270831(10)A24B117``, ``LOT A24B117 EXP 2027-08-31``). The character set
every form can print is :data:`CHARSET`.
"""

from __future__ import annotations

from dataclasses import dataclass

DIGITS = "0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
LOT_CHARS = LETTERS + DIGITS + "-"
LOT_MIN, LOT_MAX = 3, 20
# spelled out: calendar.month_abbr follows the process locale (a zh_CN box would say "1月")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DATE_SEPARATORS = {"dash": "-", "dot": ".", "slash": "/"}

FIELDS = ("gtin", "lot", "expiry", "prod_date", "sscc")
"""Fields of a :class:`edge.codes.model.CartonCode`, in print order."""


@dataclass(frozen=True)
class SlotKind:
    """A typed value position.

    ``positions`` gives the allowed characters at each index (for fixed-length kinds, exact per
    position; a kind with ``min_len != max_len`` allows ``charset`` everywhere). ``choices``
    lists every legal value when there are few (the decoder may score them as literals);
    ``check_digit`` marks a GS1 mod-10 code whose last digit checks the rest.
    """

    name: str
    min_len: int
    max_len: int
    charset: str
    positions: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    check_digit: bool = False

    def allowed(self, index: int) -> str:
        """Characters allowed at ``index`` (0-based) of the value."""
        return self.positions[index] if self.positions else self.charset

    @property
    def regex(self) -> str:
        """Loose pattern used by the parser (semantic checks give precise error messages)."""
        cls = "".join("\\" + c if c in "-]\\^" else c for c in self.charset)
        if self.min_len == self.max_len:
            return f"[{cls}]{{{self.min_len}}}"
        return f"[{cls}]{{{self.min_len},{self.max_len}}}"


def _digits(name: str, n: int, *, check: bool = False) -> SlotKind:
    return SlotKind(name, n, n, DIGITS, (DIGITS,) * n, check_digit=check)


def _fixed(name: str, values: tuple[str, ...]) -> SlotKind:
    n = len(values[0])
    cols = tuple("".join(sorted({v[i] for v in values})) for i in range(n))
    charset = "".join(sorted(set("".join(cols))))
    return SlotKind(name, n, n, charset, cols, values)


SLOT_KINDS: dict[str, SlotKind] = {
    k.name: k
    for k in (
        _digits("gtin14", 14, check=True),
        _digits("gtin13", 13, check=True),
        _digits("sscc18", 18, check=True),
        SlotKind("lot", LOT_MIN, LOT_MAX, LOT_CHARS),
        _fixed("year4", tuple(f"20{y:02d}" for y in range(100))),
        _fixed("yy", tuple(f"{y:02d}" for y in range(100))),
        _fixed("month2", tuple(f"{m:02d}" for m in range(1, 13))),
        _fixed("day2", tuple(f"{d:02d}" for d in range(1, 32))),
        _fixed("day2_00", tuple(f"{d:02d}" for d in range(0, 32))),  # GS1: 00 = end of month
        _fixed("month_name", MONTHS),
    )
}


@dataclass(frozen=True)
class Lit:
    """Literal text printed as is (after :func:`edge.codes.normalize.normalize`)."""

    text: str
    optional: bool = False


@dataclass(frozen=True)
class Slot:
    """A value position; ``part`` names its role when the form's value is built."""

    kind: str
    part: str

    @property
    def spec(self) -> SlotKind:
        return SLOT_KINDS[self.kind]


Token = Lit | Slot


@dataclass(frozen=True)
class Form:
    """One printed form of one field, e.g. ``LOT A24B117`` or ``(17)270831``.

    ``tag`` is the decoder-facing value shape (``gtin``, ``gtin13``, ``sscc``, ``lot``,
    ``exp.yymmdd``, ``exp.ymd``, ``exp.my``, ``exp.mon``, ``prod.yymmdd``, ``prod.ymd``).
    ``month_only`` forms print no day: the value is the last day of the month.
    """

    name: str
    field: str
    tag: str
    tokens: tuple[Token, ...]

    @property
    def slots(self) -> tuple[Slot, ...]:
        return tuple(t for t in self.tokens if isinstance(t, Slot))

    @property
    def month_only(self) -> bool:
        return self.tag in ("exp.my", "exp.mon")

    @property
    def example(self) -> str:
        """A printable example of the form (mainly for docs and error messages)."""
        from edge.codes.text import EXAMPLE_VALUES, format_field  # here: text imports this module

        return format_field(self.name, EXAMPLE_VALUES[self.field])


def _label(word: str) -> tuple[Token, ...]:
    """A label word with its optional colon and optional space (``LOT: X``, ``批号X``)."""
    return (Lit(word), Lit(":", optional=True), Lit(" ", optional=True))


def _ymd(sep: str) -> tuple[Token, ...]:
    return (Slot("year4", "year"), Lit(sep), Slot("month2", "month"), Lit(sep), Slot("day2", "day"))


def _yymmdd() -> tuple[Token, ...]:
    return (Slot("yy", "yy"), Slot("month2", "month"), Slot("day2_00", "day"))


def _build_forms() -> tuple[Form, ...]:
    forms = [
        Form("ai01", "gtin", "gtin", (Lit("(01)"), Slot("gtin14", "gtin"))),
        Form("gtin_label", "gtin", "gtin", (*_label("GTIN"), Slot("gtin14", "gtin"))),
        Form("gtin13_label", "gtin", "gtin13", (*_label("GTIN"), Slot("gtin13", "gtin"))),
        Form("gtin_bare", "gtin", "gtin", (Slot("gtin14", "gtin"),)),
        Form("gtin13_bare", "gtin", "gtin13", (Slot("gtin13", "gtin"),)),
        Form("ai00", "sscc", "sscc", (Lit("(00)"), Slot("sscc18", "sscc"))),
        Form("sscc_label", "sscc", "sscc", (*_label("SSCC"), Slot("sscc18", "sscc"))),
        Form("ai10", "lot", "lot", (Lit("(10)"), Slot("lot", "lot"))),
        Form("lot_label", "lot", "lot", (*_label("LOT"), Slot("lot", "lot"))),
        Form("lot_cn", "lot", "lot", (*_label("批号"), Slot("lot", "lot"))),
        Form("ai17", "expiry", "exp.yymmdd", (Lit("(17)"), *_yymmdd())),
        Form("ai15", "expiry", "exp.yymmdd", (Lit("(15)"), *_yymmdd())),
        Form("ai11", "prod_date", "prod.yymmdd", (Lit("(11)"), *_yymmdd())),
    ]
    for sep_name, sep in DATE_SEPARATORS.items():
        forms += [
            Form(f"exp_{sep_name}", "expiry", "exp.ymd", (*_label("EXP"), *_ymd(sep))),
            Form(f"exp_cn_{sep_name}", "expiry", "exp.ymd", (*_label("有效期至"), *_ymd(sep))),
            Form(f"prod_{sep_name}", "prod_date", "prod.ymd", (*_label("PROD"), *_ymd(sep))),
            Form(f"prod_cn_{sep_name}", "prod_date", "prod.ymd", (*_label("生产日期"), *_ymd(sep))),
        ]
    month, year, yy = Slot("month2", "month"), Slot("year4", "year"), Slot("yy", "yy")
    forms += [
        Form("exp_month_slash", "expiry", "exp.my", (*_label("EXP"), month, Lit("/"), year)),
        Form("exp_month_slash_yy", "expiry", "exp.my", (*_label("EXP"), month, Lit("/"), yy)),
        Form("exp_month_space", "expiry", "exp.my", (*_label("EXP"), month, Lit(" "), year)),
        Form(
            "best_by_month",
            "expiry",
            "exp.mon",
            (Lit("BEST BY "), Slot("month_name", "month_name"), Lit(" "), year),
        ),
    ]
    return tuple(forms)


FORMS: tuple[Form, ...] = _build_forms()
FORMS_BY_NAME: dict[str, Form] = {f.name: f for f in FORMS}


def forms_for(field: str) -> tuple[Form, ...]:
    """Every form that prints ``field`` (one of :data:`FIELDS`)."""
    return tuple(f for f in FORMS if f.field == field)


def _charset() -> str:
    chars: set[str] = {" "}
    for form in FORMS:
        for tok in form.tokens:
            chars.update(tok.text if isinstance(tok, Lit) else tok.spec.charset)
    return "".join(sorted(chars))


CHARSET: str = _charset()
"""Every character a printed form can contain (ASCII subset plus the CJK label characters)."""
