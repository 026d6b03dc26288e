"""The printed carton-code forms as a CTC graph: what a line of a carton code may spell.

This is the *decoding* form of the code grammar: an automaton over the recogniser's classes, so
the decoder only ever proposes strings that parse, with GS1 mod-10 check digits built into the
states (a GTIN that fails its check digit is not a path). Parsing and validating the decoded
field values (calendar dates, ISO forms) stays in :mod:`edge.vision.ocr.fields`.

Nodes carry a field tag; consecutive characters with the same tag form one field:

=============  =================================================  ==============================
tag            forms                                              example value
=============  =================================================  ==============================
gtin           ``(01)``, ``GTIN``, bare 14 digits                 ``06901234567892``
gtin13         bare 13 digits (padded to 14 when read)            ``6901234567892``
sscc           ``(00)``                                           ``369012340000000018``
lot            ``(10)``, ``LOT``, ``LOT:``, ``批号``, ``批号:``      ``A24B117``
exp.yymmdd     ``(17)`` (``(15)`` best-before)                    ``270831``
exp.ymd        ``EXP``, ``EXP:``, ``有效期至`` + YYYY[-./]MM[-./]DD  ``2027.08.31``
exp.my         ``EXP`` + MM/YYYY, MM/YY, MM YYYY                  ``08/2027``
exp.mon        ``BEST BY`` + MON YYYY                             ``AUG 2027``
prod.yymmdd    ``(11)``                                           ``250831``
prod.ymd       ``PROD``, ``生产日期`` + YYYY[-./]MM[-./]DD          ``2025-08-31``
=============  =================================================  ==============================

Several fields may share a line, in any order, with or without spaces between them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from edge.vision.ocr.ctc import CtcGraph

DIGITS = "0123456789"
LOT_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
LOT_MIN, LOT_MAX = 3, 20


@dataclass(frozen=True)
class Frag:
    """A Glushkov fragment: nodes that may come first and last, and whether it may be empty."""

    first: frozenset[int]
    last: frozenset[int]
    nullable: bool


class GraphBuilder:
    """Builds a :class:`CtcGraph` from fragments (literal, class, sequence, choice, repeat)."""

    def __init__(self, charset: Sequence[str]) -> None:
        self.index = {ch: i for i, ch in enumerate(charset) if i > 0}
        self.masks: list[tuple[int, ...]] = []
        self.tags: list[str] = []
        # (src node, src class or -1 for any class of the node, dst node)
        self.edges: set[tuple[int, int, int]] = set()

    def chars(self, allowed: str, tag: str = "") -> Frag:
        """One character from ``allowed`` (characters the recogniser lacks are dropped)."""
        classes = tuple(sorted({self.index[c] for c in allowed if c in self.index}))
        if not classes:
            raise ValueError(f"no recogniser class for any of {allowed!r}")
        self.masks.append(classes)
        self.tags.append(tag)
        n = len(self.masks) - 1
        return Frag(frozenset({n}), frozenset({n}), False)

    def lit(self, text: str, tag: str = "") -> Frag:
        """A literal; letters match either case (prints say ``Lot`` as often as ``LOT``)."""
        return self.seq(*(self.chars(c + c.lower() if c.isalpha() else c, tag) for c in text))

    def seq(self, *frags: Frag) -> Frag:
        out = frags[0]
        for f in frags[1:]:
            self._link(out.last, f.first)
            out = Frag(
                out.first | (f.first if out.nullable else frozenset()),
                f.last | (out.last if f.nullable else frozenset()),
                out.nullable and f.nullable,
            )
        return out

    def alt(self, *frags: Frag) -> Frag:
        return Frag(
            frozenset().union(*(f.first for f in frags)),
            frozenset().union(*(f.last for f in frags)),
            any(f.nullable for f in frags),
        )

    def opt(self, f: Frag) -> Frag:
        return Frag(f.first, f.last, True)

    def plus(self, f: Frag) -> Frag:
        """One or more repetitions of ``f`` (the same nodes, looped)."""
        self._link(f.last, f.first)
        return f

    def rep(self, make: Callable[[], Frag], lo: int, hi: int) -> Frag:
        """``lo`` to ``hi`` copies of the fragment ``make()`` builds."""
        parts = [make() for _ in range(lo)]
        tail: Frag | None = None
        for _ in range(hi - lo):
            f = make()
            tail = self.opt(f if tail is None else self.seq(f, tail))
        return self.seq(*parts, tail) if tail is not None else self.seq(*parts)

    def check_digits(self, length: int, tag: str) -> Frag:
        """``length`` digits whose last is the GS1 mod-10 check digit of the others.

        Node ``(i, s)`` holds the weighted sum ``s`` of the digits before position ``i``;
        digit ``d`` leads to ``(i + 1, (s + w_i * d) % 10)``. Weights are 3, 1, 3, ... counted
        from the digit next to the check digit.
        """
        digit = {d: self.index[str(d)] for d in range(10)}
        layer = {0: self.chars(DIGITS, tag)}
        first = layer[0].first
        for i in range(length - 1):
            weight = 3 if (length - 1 - i) % 2 == 1 else 1
            nxt: dict[int, Frag] = {}
            for s, f in layer.items():
                (src,) = f.first
                for d in range(10):
                    s2 = (s + weight * d) % 10
                    if s2 not in nxt:
                        last_pos = i + 1 == length - 1
                        allowed = str((10 - s2) % 10) if last_pos else DIGITS
                        nxt[s2] = self.chars(allowed, tag)
                    (dst,) = nxt[s2].first
                    self.edges.add((src, digit[d], dst))
            layer = nxt
        return Frag(first, frozenset().union(*(f.last for f in layer.values())), False)

    def _link(self, srcs: frozenset[int], dsts: frozenset[int]) -> None:
        self.edges.update((s, -1, d) for s in srcs for d in dsts)

    def compile(self, f: Frag) -> CtcGraph:
        node_of: list[int] = []
        cls: list[int] = []
        states_of: list[list[int]] = []
        for n, mask in enumerate(self.masks):
            states_of.append(list(range(len(cls), len(cls) + len(mask))))
            node_of += [n] * len(mask)
            cls += list(mask)
        src: list[int] = []
        dst: list[int] = []
        for s_node, s_cls, d_node in sorted(self.edges):
            for k in states_of[s_node]:
                if s_cls in (-1, cls[k]):
                    src.append(k)
                    dst.append(d_node)
        node_arr = np.asarray(node_of, dtype=np.intp)
        return CtcGraph(
            cls=np.asarray(cls, dtype=np.intp),
            node=node_arr,
            start=np.isin(node_arr, sorted(f.first)),
            accept=np.isin(node_arr, sorted(f.last)),
            node_tags=tuple(self.tags),
            pair_src=np.asarray(src, dtype=np.intp),
            pair_dst=np.asarray(dst, dtype=np.intp),
            n_nodes=len(self.masks),
        )


# --- field bodies -----------------------------------------------------------------------------


def _year4(b: GraphBuilder, tag: str) -> Frag:
    return b.seq(b.chars("2", tag), b.chars("0", tag), b.chars(DIGITS, tag), b.chars(DIGITS, tag))


def _month(b: GraphBuilder, tag: str) -> Frag:
    return b.alt(
        b.seq(b.chars("0", tag), b.chars("123456789", tag)),
        b.seq(b.chars("1", tag), b.chars("012", tag)),
    )


def _day(b: GraphBuilder, tag: str, zero: bool = False) -> Frag:
    return b.alt(
        b.seq(b.chars("0", tag), b.chars(DIGITS if zero else "123456789", tag)),
        b.seq(b.chars("12", tag), b.chars(DIGITS, tag)),
        b.seq(b.chars("3", tag), b.chars("01", tag)),
    )


def body(b: GraphBuilder, tag: str, exact: bool = True) -> Frag:
    """The value part of field ``tag`` (no label).

    ``exact=False`` gives the looser, much smaller form used inside a whole-line graph: digit
    runs without check-digit states and a lot of 3 or more characters. The decoder then checks
    and repairs those fields against their exact body graph on the field's own frames, which
    keeps the per-frame work of the line search about five times smaller.
    """
    kind = tag.split(".")[-1]
    lengths = {"gtin": 14, "gtin13": 13, "sscc": 18}
    if tag in lengths:
        if exact:
            return b.check_digits(lengths[tag], tag)
        return b.seq(*(b.chars(DIGITS, tag) for _ in range(lengths[tag])))
    if tag == "lot":
        if exact:
            return b.rep(lambda: b.chars(LOT_CHARS, tag), LOT_MIN, LOT_MAX)
        head = [b.chars(LOT_CHARS, tag) for _ in range(LOT_MIN)]
        return b.seq(*head, b.opt(b.plus(b.chars(LOT_CHARS, tag))))
    if kind == "yymmdd":
        yy = b.seq(b.chars(DIGITS, tag), b.chars(DIGITS, tag))
        return b.seq(yy, _month(b, tag), _day(b, tag, zero=True))
    if kind == "ymd":
        sep = "-./"
        return b.seq(
            _year4(b, tag), b.chars(sep, tag), _month(b, tag), b.chars(sep, tag), _day(b, tag)
        )
    if kind == "my":
        yy = b.seq(b.chars(DIGITS, tag), b.chars(DIGITS, tag))
        return b.seq(_month(b, tag), b.chars("/ ", tag), b.alt(_year4(b, tag), yy))
    if kind == "mon":
        months = b.alt(*(b.lit(m, tag) for m in MONTHS))
        return b.seq(months, b.chars(" ", tag), _year4(b, tag))
    raise ValueError(f"unknown field tag {tag!r}")


def _label(b: GraphBuilder, *words: str) -> Frag:
    """A label word, then an optional colon (ASCII or full-width) and an optional space."""
    colon = b.opt(b.chars(":："))
    return b.seq(b.alt(*(b.lit(w) for w in words)), colon, b.opt(b.chars(" ")))


def _elements(b: GraphBuilder) -> Frag:
    gtin = body(b, "gtin", exact=False)
    lot = body(b, "lot", exact=False)
    return b.alt(
        b.seq(b.alt(b.lit("(01)"), _label(b, "GTIN")), gtin),
        gtin,
        b.seq(b.lit("(10)"), lot),
        b.seq(b.alt(b.lit("(17)"), b.lit("(15)")), body(b, "exp.yymmdd")),
        b.seq(b.lit("(11)"), body(b, "prod.yymmdd")),
        b.seq(b.lit("(00)"), body(b, "sscc", exact=False)),
        body(b, "gtin13", exact=False),
        b.seq(_label(b, "LOT", "批号"), lot),
        b.seq(_label(b, "EXP", "有效期至"), body(b, "exp.ymd")),
        b.seq(_label(b, "EXP"), body(b, "exp.my")),
        b.seq(b.lit("BEST BY "), body(b, "exp.mon")),
        b.seq(_label(b, "PROD", "生产日期"), body(b, "prod.ymd")),
    )


@functools.lru_cache(maxsize=8)
def line_graph(charset: tuple[str, ...]) -> CtcGraph:
    """Any line of a carton code: one or more elements, optionally separated by spaces."""
    b = GraphBuilder(charset)
    element = b.seq(b.opt(b.chars(" ")), _elements(b))
    return b.compile(b.plus(element))


@functools.lru_cache(maxsize=64)
def body_graph(charset: tuple[str, ...], tag: str) -> CtcGraph:
    """The value grammar of one field alone: the normaliser of that field's confidence."""
    b = GraphBuilder(charset)
    return b.compile(body(b, tag))
