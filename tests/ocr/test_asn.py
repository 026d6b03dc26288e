"""Closed-vocabulary (ASN) scoring on hand-made probability matrices."""

from __future__ import annotations

from edge.vision.ocr import strings
from edge.vision.ocr.asn import AsnMatcher, value_forms
from tests.ocr.probs import INDEX, matrix

LINE = "(01)06901234567892(17)270831(10)A24B117"
TRUE = {"gtin": "06901234567892", "lot": "A24B117", "expiry": "2027-08-31"}


def _lab(text: str) -> list[int]:
    return [INDEX[c] for c in text]


def test_spot_finds_a_value_anywhere_and_ranks_look_alikes_below() -> None:
    probs = matrix(LINE)
    clean, lookalike, absent = strings.spot(probs, [_lab("A24B117"), _lab("A248117"), _lab("XQ9")])
    assert clean > -1.0 and lookalike < clean - 5 and absent < clean - 10


def test_spot_survives_a_smudged_label() -> None:
    # the "(10)" label is smeared into noise: no parse finds the lot, spotting still does
    smeared = {i: {"#": 0.3, "%": 0.3} for i in range(28, 32)}
    probs = matrix(LINE, overrides=smeared)
    (score,) = strings.spot(probs, [_lab("A24B117")])
    assert score > -1.0


def test_value_forms_of_an_expiry() -> None:
    forms = value_forms("expiry", "2027-08-31")
    assert {"270831", "270800", "2027.08.31", "08/2027", "08/27", "AUG 2027"} <= set(forms)
    assert set(value_forms("expiry", "2027-08-30")) == {
        "270830",
        "2027-08-30",
        "2027.08.30",
        "2027/08/30",
    }
    assert value_forms("expiry", "2027-08-31", frozenset({"exp.yymmdd"})) == ("270831", "270800")
    assert value_forms("gtin", "06901234567892") == ("06901234567892", "6901234567892")


def test_record_with_a_smudged_lot_wins_over_decoys() -> None:
    probs = matrix(LINE, overrides={35: {"B": 0.5, "8": 0.45}})
    expect = [
        TRUE,
        {**TRUE, "lot": "Q77X1"},  # same GTIN, other lot
        {**TRUE, "expiry": "2028-01-31"},  # same lot, other expiry
        {"gtin": "06901234567885", "lot": "C1234", "expiry": "2027-08-31"},
    ]
    m = AsnMatcher(INDEX).match([[probs]], expect, {}, other_weight=0.1)
    assert m is not None and m.values == TRUE and m.probability > 0.85


def test_near_miss_decoy_on_the_smudged_character_is_not_decided() -> None:
    probs = matrix(LINE, overrides={35: {"B": 0.48, "8": 0.48}})
    expect = [TRUE, {**TRUE, "lot": "A248117"}]
    m = AsnMatcher(INDEX).match([[probs]], expect, {}, other_weight=0.1)
    assert m is not None and m.probability < 0.6 and m.runner_up > 0.35


def test_a_clear_unlisted_read_beats_the_list() -> None:
    probs = matrix("(01)06901234567892(17)270831(10)Z99Q1")
    expect = [TRUE]
    open_reads = {"lot": ("Z99Q1", 0.99, frozenset({"lot"}))}
    m = AsnMatcher(INDEX).match([[probs]], expect, open_reads, other_weight=0.1)
    assert m is not None and m.probability < 0.01
