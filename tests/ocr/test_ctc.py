"""CTC decoding on hand-made probability matrices: best path, grammar, check digits, scores."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from edge.vision.ocr import ctc, forms, strings
from edge.vision.ocr.decode import Decoder
from tests.ocr.probs import CHARSET, INDEX, matrix, uniform_digits


@pytest.fixture(scope="module")
def decoder() -> Decoder:
    return Decoder(CHARSET)


def test_greedy_collapses_repeats_and_blanks() -> None:
    probs = matrix("A11B")
    text, spans = ctc.greedy(probs, CHARSET)
    assert text == "A11B"
    assert spans[0] == (0, 1) and spans[1] == (3, 4)


def test_literal_forward_equals_brute_force_sum() -> None:
    rng = np.random.default_rng(0)
    classes = [0, INDEX["A"], INDEX["B"]]
    small = rng.dirichlet(np.ones(3), size=4)  # T=4 over {blank, A, B}
    probs = np.zeros((4, len(CHARSET)))
    probs[:, classes] = small

    def collapse(path: tuple[int, ...]) -> tuple[int, ...]:
        out, prev = [], 0
        for c in path:
            if c != 0 and c != prev:
                out.append(c)
            prev = c
        return tuple(out)

    target = (INDEX["A"], INDEX["A"])
    brute = sum(
        math.prod(probs[t, c] for t, c in enumerate(path))
        for path in itertools.product(classes, repeat=4)
        if collapse(path) == target
    )
    assert math.isclose(math.exp(strings.literal_forward(probs, list(target))), brute, rel_tol=1e-9)


def test_graph_forward_of_a_literal_equals_literal_forward() -> None:
    b = forms.GraphBuilder(CHARSET)
    g = b.compile(b.lit("911"))  # digits: lit() matches letters in either case
    probs = matrix("911", p=0.7)
    labels = [INDEX[c] for c in "911"]
    assert math.isclose(ctc.forward(probs, g), strings.literal_forward(probs, labels), rel_tol=1e-9)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "(01)06901234567892(17)270831(10)A24B117",
            {"gtin": "06901234567892", "expiry": "2027-08-31", "lot": "A24B117"},
        ),
        ("GTIN 06901234567892", {"gtin": "06901234567892"}),
        ("6901234567892", {"gtin": "06901234567892"}),
        ("LOT: A24B117", {"lot": "A24B117"}),
        ("批号:A24B117", {"lot": "A24B117"}),
        ("EXP 2027/08/31", {"expiry": "2027-08-31"}),
        ("有效期至2027-08-31", {"expiry": "2027-08-31"}),
        ("EXP 08/27", {"expiry": "2027-08-31"}),
        ("EXP 02 2028", {"expiry": "2028-02-29"}),
        ("BEST BY AUG 2027", {"expiry": "2027-08-31"}),
        ("(17)270800", {"expiry": "2027-08-31"}),
        ("PROD 2025.08.31 EXP 2027.08.31", {"prod_date": "2025-08-31", "expiry": "2027-08-31"}),
        ("生产日期 2025.08.31", {"prod_date": "2025-08-31"}),
        ("(00)369012340000000017", {"sscc": "369012340000000017"}),
        ("Lot a24b117".upper(), {"lot": "A24B117"}),
    ],
)
def test_every_printed_form_decodes_to_its_fields(
    decoder: Decoder, line: str, expected: dict[str, str]
) -> None:
    read = decoder.line(matrix(line))
    assert read.fits and read.text == line
    got = {f.name: f.value for f in read.fields}
    assert got == expected
    assert all(f.confidence > 0.9 for f in read.fields)


def test_wrong_check_digit_is_never_returned(decoder: Decoder) -> None:
    # the '5' is printed clearly but the check digit says otherwise: the read is repaired to a
    # valid GTIN and its confidence shows that the frames disagree with it
    read = decoder.line(matrix("(01)06901234567893"))
    (gtin,) = read.fields
    assert gtin.value is not None and gtin.value != "06901234567893"
    assert gtin.confidence < 0.1


def test_one_erased_gtin_digit_is_recovered_by_the_check_digit(decoder: Decoder) -> None:
    probs = matrix("(01)06901234567892", overrides={9: uniform_digits()})
    (gtin,) = decoder.line(probs).fields
    assert gtin.value == "06901234567892"
    assert gtin.confidence > 0.9


def test_two_erased_gtin_digits_are_not_confident(decoder: Decoder) -> None:
    probs = matrix("(01)06901234567892", overrides={9: uniform_digits(), 12: uniform_digits()})
    (gtin,) = decoder.line(probs).fields
    assert gtin.confidence < 0.2


def test_smudged_lot_character_lowers_confidence(decoder: Decoder) -> None:
    clean = decoder.line(matrix("LOT A24B117")).fields[0]
    smudged = decoder.line(matrix("LOT A24B117", overrides={7: {"8": 0.5, "B": 0.4}})).fields[0]
    assert clean.confidence > 0.95
    assert smudged.value == "A248117" and smudged.confidence < 0.6


def test_asn_candidates_are_scored_on_the_frames(decoder: Decoder) -> None:
    smudged = decoder.line(matrix("LOT A24B117", overrides={7: {"8": 0.5, "B": 0.4}})).fields[0]
    post = decoder.candidates(smudged, ["A24B117", "C99"], other_weight=0.05)
    assert max(post, key=lambda v: post[v]) == "A24B117"
    assert post["A24B117"] > 0.75 and post["C99"] < 1e-6


def test_asn_does_not_override_a_clear_unlisted_value(decoder: Decoder) -> None:
    clear = decoder.line(matrix("LOT X77Q1")).fields[0]
    post = decoder.candidates(clear, ["A24B117"], other_weight=0.05)
    assert post["X77Q1"] > post["A24B117"]


def test_impossible_calendar_date_is_no_value(decoder: Decoder) -> None:
    (exp,) = decoder.line(matrix("EXP 2027.02.30")).fields
    assert exp.value is None and exp.confidence == 0.0


def test_text_that_is_not_a_code_does_not_fit(decoder: Decoder) -> None:
    read = decoder.line(matrix("HANDLE WITH CARE"))
    assert not read.fits


def test_a_repair_against_a_clear_digit_is_capped_an_erased_digit_is_not() -> None:
    capped = Decoder(CHARSET, repair_cap=0.8)
    # the recogniser is sure of a '3' where the check digit needs its second choice '2': the
    # posterior among valid GTINs is ~1, but the recogniser misread this field
    probs = matrix("(01)06901234567892", overrides={9: {"3": 0.85, "2": 0.14}})
    assert Decoder(CHARSET).line(probs).fields[0].confidence > 0.99
    (gtin,) = capped.line(probs).fields
    assert gtin.value == "06901234567892" and gtin.confidence == pytest.approx(0.8)
    # an erased digit the check digit recovers costs the frames nothing: not capped
    probs = matrix("(01)06901234567892", overrides={9: uniform_digits()})
    (gtin,) = capped.line(probs).fields
    assert gtin.value == "06901234567892" and gtin.confidence > 0.9


def test_a_field_after_a_label_the_recogniser_did_not_see_is_not_read() -> None:
    # 'XXX A24B117': the grammar can only explain it as 'LOT A24B117', with a label the frames
    # barely show (artwork like 'KEEP DRY' read as a lot this way)
    made_up = {i: {"X": 0.8, c: 0.1} for i, c in enumerate("LOT")}
    assert Decoder(CHARSET, label_min=0.0).line(matrix("LOT A24B117", overrides=made_up)).fields
    decoder = Decoder(CHARSET)
    assert decoder.line(matrix("LOT A24B117", overrides=made_up)).fields == ()
    (lot,) = decoder.line(matrix("LOT A24B117")).fields
    assert lot.value == "A24B117"


def test_a_lot_far_from_its_label_has_probably_lost_characters(decoder: Decoder) -> None:
    # '(10)4791363742' with a smear over '4791363': the recogniser sees '(10)', nothing for
    # seven characters' width, then '742', which the grammar alone would take as a lot
    head, tail = matrix("(01)06901234567892(10)"), matrix("742")
    blank = np.repeat(matrix("7")[-1:], 7 * 3, axis=0)  # seven characters of blank frames
    (_, near) = decoder.line(np.vstack([head, tail])).fields
    (_, far) = decoder.line(np.vstack([head, blank, tail])).fields
    assert near.value == far.value == "742"
    assert near.confidence > 0.9 and far.confidence < 0.25
    # a label's own space is no gap
    (spaced,) = decoder.line(matrix("LOT: A24B117")).fields
    assert spaced.confidence > 0.9
