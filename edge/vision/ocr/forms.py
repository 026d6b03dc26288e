"""The printed carton-code forms as a CTC graph: what a line of a carton code may spell.

This is the *decoding* form of the one code grammar, :data:`edge.codes.grammar.FORMS`: every
form there (literal tokens and typed slots) becomes a fragment of an automaton over the
recogniser's classes, so the decoder only proposes strings that parse. In the exact field
graphs GS1 mod-10 check digits are states (a GTIN that fails its check digit is not a path)
and small value sets (months, days) are tries of their legal values.

Nodes carry the form's tag (``gtin``, ``gtin13``, ``sscc``, ``lot``, ``exp.yymmdd``,
``exp.ymd``, ``exp.my``, ``exp.mon``, ``prod.yymmdd``, ``prod.ymd``) from the form's first
value slot to its last, separators included; labels (``(17)``, ``LOT:``, ``有效期至``) carry
none. Consecutive characters with the same tag are one field. Several forms may share a line,
in any order, with or without a space between them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from edge.codes.grammar import (
    FORMS,
    LOT_CHARS,
    LOT_MAX,
    LOT_MIN,
    MONTHS,
    SLOT_KINDS,
    Form,
    Lit,
    Slot,
)
from edge.vision.ocr.ctc import CtcGraph

__all__ = ["LOT_CHARS", "LOT_MAX", "LOT_MIN", "MONTHS", "GraphBuilder", "body_graph", "line_graph"]
DIGITS = "0123456789"


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


# --- from the code grammar (edge.codes.grammar.FORMS) to graph fragments -------------------


def _slot(b: GraphBuilder, kind: str, tag: str, exact: bool) -> Frag:
    spec = SLOT_KINDS[kind]
    if spec.check_digit:
        if exact:
            return b.check_digits(spec.max_len, tag)
        return b.seq(*(b.chars(spec.allowed(i), tag) for i in range(spec.max_len)))
    if spec.min_len != spec.max_len:  # the lot
        if exact:
            return b.rep(lambda: b.chars(spec.charset, tag), spec.min_len, spec.max_len)
        head = [b.chars(spec.charset, tag) for _ in range(spec.min_len)]
        return b.seq(*head, b.opt(b.plus(b.chars(spec.charset, tag))))
    if spec.choices and len(spec.choices) <= 40:
        return _trie(b, spec.choices, tag)
    return b.seq(*(b.chars(spec.allowed(i), tag) for i in range(spec.max_len)))


def _trie(b: GraphBuilder, words: tuple[str, ...], tag: str) -> Frag:
    """Exactly ``words`` (same length), sharing common prefixes."""
    if len(words[0]) == 1:
        return b.chars("".join(sorted({w for w in words})), tag)
    heads: dict[str, list[str]] = {}
    for w in words:
        heads.setdefault(w[0], []).append(w[1:])
    return b.alt(
        *(b.seq(b.lit(h, tag), _trie(b, tuple(rest), tag)) for h, rest in sorted(heads.items()))
    )


def _value_range(form: Form) -> tuple[int, int]:
    """Indices of the form's first and last slot: the tokens between are the printed value."""
    idx = [i for i, t in enumerate(form.tokens) if not isinstance(t, Lit)]
    return idx[0], idx[-1]


Key = tuple[Lit | Slot, str]  # a token and the tag it carries


def form_keys(form: Form) -> tuple[Key, ...]:
    """The form's tokens with their tags: labels untagged, the value part tagged ``form.tag``."""
    first, last = _value_range(form)
    return tuple((t, form.tag if first <= i <= last else "") for i, t in enumerate(form.tokens))


def forms_fragment(b: GraphBuilder, forms: Sequence[Form], exact: bool) -> Frag:
    """Any one of ``forms``; forms that start with the same tokens share those nodes (all
    ``EXP`` forms share one ``EXP`` label and one year), which keeps the line graph small."""
    return _token_trie(b, [form_keys(f) for f in forms], exact, {})


def _token_trie(
    b: GraphBuilder,
    seqs: list[tuple[Key, ...]],
    exact: bool,
    memo: dict[tuple[tuple[Key, ...], ...], Frag],
) -> Frag:
    # Every sequence runs to the end of its form, so two places with the same set of remaining
    # sequences may share one fragment (suffix sharing: '(01)', 'GTIN ' and a bare GTIN all
    # lead into one 14-digit run).
    key = tuple(sorted(seqs, key=repr))
    if key in memo:
        return memo[key]
    groups: dict[Key, list[tuple[Key, ...]]] = {}
    for seq in seqs:
        groups.setdefault(seq[0], []).append(seq[1:])
    branches = []
    for (tok, tag), rests in groups.items():
        if isinstance(tok, Lit):
            head = b.lit(tok.text, tag)
            head = b.opt(head) if tok.optional else head
        else:
            head = _slot(b, tok.kind, tag, exact)
        more = [r for r in rests if r]
        if not more:
            branches.append(head)
            continue
        tail = _token_trie(b, more, exact, memo)
        branches.append(b.seq(head, b.opt(tail) if len(more) < len(rests) else tail))
    memo[key] = b.alt(*branches)
    return memo[key]


def _value_fragment(b: GraphBuilder, tag: str) -> Frag:
    """The value part of any form with this tag (exact), for a field's confidence normaliser."""
    variants = []
    seen: set[tuple[object, ...]] = set()
    for form in FORMS:
        if form.tag != tag:
            continue
        first, last = _value_range(form)
        tokens = form.tokens[first : last + 1]
        if tokens in seen:
            continue
        seen.add(tokens)
        parts = [
            b.lit(t.text, tag) if isinstance(t, Lit) else _slot(b, t.kind, tag, True)
            for t in tokens
        ]
        variants.append(b.seq(*parts))
    if not variants:
        raise ValueError(f"unknown field tag {tag!r}")
    return b.alt(*variants)


@functools.lru_cache(maxsize=8)
def line_graph(charset: tuple[str, ...]) -> CtcGraph:
    """Any line of a carton code: one or more forms, optionally separated by spaces.

    Value slots are loose here (see :func:`form_fragment` with ``exact=False``): digit runs
    without check-sum states and an open-ended lot. That keeps the per-frame search about five
    times smaller; the decoder checks and repairs each field against its exact graph.
    """
    b = GraphBuilder(charset)
    element = b.seq(b.opt(b.chars(" ")), forms_fragment(b, FORMS, exact=False))
    return b.compile(b.plus(element))


@functools.lru_cache(maxsize=64)
def body_graph(charset: tuple[str, ...], tag: str) -> CtcGraph:
    """Every value a field of form ``tag`` may print (exact: check digits, calendar ranges)."""
    b = GraphBuilder(charset)
    return b.compile(_value_fragment(b, tag))
