"""The reader end to end on rendered labels and on bad input; read_image; sample store hook."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from edge.vision.ocr.config import NEVER, OPTIONAL_THRESHOLD, OcrConfig
from edge.vision.ocr.locate import locate
from edge.vision.ocr.reader import ASN, JSON_KEYS, CartonRead, Reader
from edge.vision.ocr.samples import SampleStore
from tests.ocr import probs
from tests.ocr.conftest import label, printed_line

CODE = ["(01)06901234567892", "(17)270831(10)A24B117"]
TRUTH = {"gtin": "06901234567892", "lot": "A24B117", "expiry": "2027-08-31"}


def _fields(r: CartonRead) -> dict[str, str | None]:
    return {"gtin": r.gtin, "lot": r.lot, "expiry": r.expiry}


def test_reads_a_clean_label_in_a_frame(reader: Reader) -> None:
    r = reader.read(label(CODE, frame=(720, 1280)))
    assert r.status == "ACCEPTED", r
    assert _fields(r) == TRUTH and r.prod_date is None and r.sscc is None
    assert "(01)06901234567892" in r.text.splitlines()
    assert 0.85 <= r.confidence <= 1.0 and r.latency_ms > 0


def test_reads_a_tight_crop_of_one_line(reader: Reader) -> None:
    r = reader.read(printed_line("(01)06901234567892(17)270831(10)A24B117"))
    assert r.status == "ACCEPTED" and _fields(r) == TRUTH


def test_human_readable_forms(reader: Reader) -> None:
    r = reader.read(label(["GTIN 06901234567892", "LOT: A24B117", "EXP 2027-08-31"]))
    assert _fields(r) == TRUTH and r.status == "ACCEPTED"


def test_missing_expiry_is_unreadable_with_reason(reader: Reader) -> None:
    r = reader.read(printed_line("(01)06901234567892(10)A24B117"))
    assert r.status == "UNREADABLE" and r.expiry is None
    assert r.reason is not None and "expiry" in r.reason and r.reason.startswith("UNREADABLE")


def test_blank_image_is_unreadable(reader: Reader) -> None:
    r = reader.read(np.full((720, 1280, 3), 200, np.uint8))
    assert r.status == "UNREADABLE" and r.gtin is None and r.confidence == 0.0


@pytest.mark.parametrize(
    ("image", "why"),
    [
        (np.zeros((1, 1, 3), np.uint8), "too small"),
        (np.zeros((5, 400), np.uint8), "too small"),
        (np.zeros((100, 100, 2), np.uint8), "shape"),
        (np.zeros((100, 100), np.float32), "pixel type"),
        (np.zeros((8000, 6000), np.uint8), "pixel limit"),
        ("not an array", "not an image"),
    ],
)
def test_bad_arrays_are_error_not_crash(reader: Reader, image: object, why: str) -> None:
    r = reader.read(image)  # type: ignore[arg-type]
    assert r.status == "ERROR" and r.reason is not None and why in r.reason
    assert r.reason.startswith("IMAGE_INVALID")


def test_json_has_exactly_the_issue_keys(reader: Reader) -> None:
    r = reader.read(printed_line("LOT A24B117"), file="x.png")
    assert tuple(r.as_json()) == JSON_KEYS
    assert r.as_json()["file"] == "x.png"


def test_asn_prefers_the_expected_record(reader: Reader) -> None:
    asn = [ASN(**TRUTH), ASN("06901234567885", "B7781", "2026-01-31")]
    r = reader.read(label(CODE), asn)
    assert r.status == "ACCEPTED" and _fields(r) == TRUTH


def test_partial_asn_match_goes_to_review(reader: Reader) -> None:
    asn = [ASN("06901234567892", "ZZ999", "2027-08-31")]
    r = reader.read(label(CODE), asn)
    assert r.status == "REVIEW" and r.reason is not None and "ASN" in r.reason


def test_fusing_frames_of_one_carton(reader: Reader) -> None:
    frames = [label(CODE, frame=(720, 1280), seed=s) for s in range(3)]
    r = reader.read_frames(frames)
    assert r.status == "ACCEPTED" and _fields(r) == TRUTH


def test_review_and_unreadable_reads_are_kept_as_samples(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "samples", max_bytes=10_000_000)
    strict = Reader(OcrConfig(accept_threshold=0.9999), samples=store)
    strict.read(printed_line("(01)06901234567892(10)A24B117"))  # UNREADABLE: no expiry
    ids = store.ids()
    assert len(ids) == 1
    png, meta = store.load(ids[0])
    assert png.startswith(b"\x89PNG") and meta["status"] == "UNREADABLE"
    assert meta["gtin"] == "06901234567892" and "expiry" in meta["reason"]


def test_read_image_function() -> None:
    from edge.vision.ocr.reader import read_image

    r = read_image(printed_line("(01)06901234567892(17)270831(10)A24B117"))
    assert isinstance(r, CartonRead) and r.status == "ACCEPTED" and r.file is None


def test_text_without_digits_does_not_block_a_read(reader: Reader) -> None:
    r = reader.read(label(["KEEP DRY", *CODE]))
    assert r.status == "ACCEPTED" and _fields(r) == TRUTH


def test_unexplained_digits_block_acceptance(reader: Reader) -> None:
    # digits no field accounts for may be a prod date or SSCC the reader could not parse
    r = reader.read(label([*CODE, "NET 3814 7729 0651"]))
    assert r.status == "REVIEW" and _fields(r) == TRUTH
    assert r.reason is not None and "not understood" in r.reason


def test_a_line_read_as_a_stray_mark_blocks_acceptance(reader: Reader) -> None:
    # a prod date under a smear that the recogniser read as 'EO': print it could not read
    from edge.vision.ocr.decode import FieldRead, LineRead
    from edge.vision.ocr.locate import Located, Region
    from edge.vision.ocr.reader import FrameRead

    gtin = FieldRead("gtin", "ai", "06901234567892", "06901234567892", 0.99, np.zeros((0, 1)), 0.0)
    values: dict[str, str | None] = {**TRUTH, "prod_date": None, "sscc": None}
    loc = Located(Region(0, 0, 10, 10, 0.0), ())
    code = LineRead("(01)06901234567892", (gtin,), True)
    for stray, blocks in (("EO", True), ("", True), ("KEEP DRY", False)):
        frame = FrameRead(loc, (code, LineRead(stray, (), False)), (), 0)
        assert reader._unexplained([frame], values) is blocks, stray
    assert not reader._unexplained([FrameRead(loc, (code,), (), 0)], values)
    # and a localiser blind beside the code (texture at the low threshold) blocks it too
    blind = Located(Region(0, 0, 10, 10, 0.0), (), blind=True)
    assert reader._unexplained([FrameRead(blind, (code,), (), 0)], values)


def test_a_second_different_lot_on_the_carton_blocks_acceptance(reader: Reader) -> None:
    # a prod date '(11)260615' whose AI was read as '(10)': a second lot, outvoted by the ASN's
    r = reader.read(label([*CODE, "(10)260615"]), [ASN(**TRUTH)])
    assert r.status == "REVIEW" and _fields(r) == TRUTH
    assert r.reason is not None and "not understood" in r.reason


def test_a_prod_date_label_is_seen_in_the_pieces_a_smear_leaves() -> None:
    from edge.vision.ocr.decode import LineRead
    from edge.vision.ocr.locate import Located, Region
    from edge.vision.ocr.reader import FrameRead, _printed

    def frame(*texts: str) -> FrameRead:
        lines = tuple(LineRead(t, (), True) for t in texts)
        return FrameRead(Located(Region(0, 0, 10, 10, 0.0), ()), lines, (), 0)

    # '生产日期' with its 生 and the date under a smear (PP-OCR, generated frame)
    assert _printed(
        "prod_date", [frame("04004792452128 批号 22P0421", "有效期至：2028/07/30产日期")]
    )
    assert _printed("prod_date", [frame("PR0D 2030-12-22")])  # its O read as a zero
    assert not _printed("prod_date", [frame("有效期至 2028/05/14", "LOT A24B117")])


def test_digit_coverage_skips_ai_labels_and_allows_look_alikes() -> None:
    from edge.vision.ocr.reader import _digit_coverage

    # the AI's digits are a label: a lot line "(10)TD1435P" is fully explained by its lot
    assert _digit_coverage("(10)TD1435P", ["TD1435P"]) == 1.0
    assert _digit_coverage("<10)TD1435P", ["TD1435P"]) == 1.0
    # the opening bracket lost or read as a digit: still the lot's AI, not a number
    assert _digit_coverage("410)B78465-MY", ["B78465-MY"]) == 1.0
    assert _digit_coverage("LOT 10)B78465-MY", ["B78465-MY"]) == 1.0
    assert _digit_coverage("(171270900", ["270900"]) == 1.0  # closing bracket read as '1'
    # but digits that run into it are a number, not a label
    assert _digit_coverage("2510)B78465-MY", ["B78465-MY"]) == 5 / 9
    # 'UH' read for 'VN' (look-alikes on dot-matrix print) still is the lot's copy
    assert _digit_coverage("批号：B39377-UH", ["B39377-VN"]) == 1.0
    # two real differences in a short value are not a copy
    assert _digit_coverage("LOT 123456", ["129956"]) == 0.0
    # a second date stays unexplained
    assert _digit_coverage("(17)300130(11)270719", ["300130"]) == 0.5


def test_a_run_of_digits_no_field_explains_is_ink_not_understood(reader: Reader) -> None:
    from edge.vision.ocr.decode import LineRead
    from edge.vision.ocr.locate import Located, Region
    from edge.vision.ocr.reader import FrameRead, _loose_run

    # an SSCC whose label was lost, glued to the GTIN: the GTIN (two misread digits) covers 13
    # of the line's 18 digits, more than the 0.7 the coverage rule asks, and leaves five
    gtin = "4005220495205"
    assert _loose_run("GTIN 400522849529502961", [gtin]) == 5
    assert _loose_run("GTIN 4005220495205 29", [gtin]) == 2  # a stray digit or two is not
    assert _loose_run("(01)06901234567892", ["06901234567892"]) == 0
    assert _loose_run("(11)250831", []) == 6  # the AI's digits are a label, not a run
    values: dict[str, str | None] = {**TRUTH, "gtin": "0" + gtin, "prod_date": None, "sscc": None}
    loc = Located(Region(0, 0, 10, 10, 0.0), ())
    for text, blocks in (("GTIN 400522849529502961", True), ("GTIN 4005228495205", False)):
        frame = FrameRead(loc, (LineRead(text, (), True),), (), 0)
        assert reader._unexplained([frame], values) is blocks, text


def test_lots_differing_only_by_look_alikes_a_font_draws_alike_are_twins() -> None:
    from edge.vision.ocr.reader import _twins

    assert _twins("1907", "19O7") and _twins("19O7", "1907") and _twins("D90", "090")
    assert _twins("L260704", "1260704") and _twins("A1B", "AIB") and _twins("L0", "1O")
    assert not _twins("IL5", "LI5")  # two letters: the font draws them apart
    assert not _twins("B907", "8907")  # 8/B: the ASN match decides on the pixels
    # 5/S: 'F27S734' matched as its ASN twin 'F275734' at 0.88 (seed 8000000)
    assert _twins("F27S734", "F275734") and not _twins("F27S734", "F276734")
    assert not _twins("1907", "1917") and not _twins("1907", "19070")


def test_a_look_alike_twin_on_the_asn_sends_the_read_to_review(reader: Reader) -> None:
    # 8/B: not twins, the ASN match decides on the pixels
    other = ASN(TRUTH["gtin"], "A24B117".replace("B", "8"), TRUTH["expiry"])
    r = reader.read(label(CODE), [ASN(**TRUTH), other])
    assert r.status == "ACCEPTED" and _fields(r) == TRUTH
    # 1/I (and 1/L): twins, as 0/O are
    twin = ASN(TRUTH["gtin"], "A24B117".replace("1", "I", 1), TRUTH["expiry"])
    r = reader.read(label(CODE), [ASN(**TRUTH), twin])
    assert r.status == "REVIEW" and r.reason is not None and "look-alike" in r.reason
    zero = {**TRUTH, "lot": "A24B1O7"}
    code = [CODE[0], "(17)270831(10)A24B1O7"]
    r = reader.read(label(code), [ASN(**zero), ASN(**{**zero, "lot": "A24B107"})])
    assert r.status == "REVIEW" and r.reason is not None and "look-alike" in r.reason


class _Scripted:
    """A recogniser that 'reads' each located line as the hand-made matrix given for it, and
    the strips beside the code (the reader's second call in a read, if any) as ``beside``
    (default: blank)."""

    charset = probs.CHARSET

    def __init__(self, lines: list[np.ndarray], beside: str = "") -> None:
        self.lines = lines
        self.beside = beside
        self.calls = 0

    def __call__(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        self.calls += 1
        if self.calls > 1:
            return [probs.matrix(self.beside) if self.beside else probs.blank() for _ in crops]
        assert len(crops) == len(self.lines), "the label's lines were not located one by one"
        return list(self.lines)


@pytest.mark.parametrize(
    ("o_column", "margin", "status"),
    [
        ({"O": 0.995}, 5.0, "ACCEPTED"),  # the print draws an O: no doubt about the twin
        ({"O": 0.995}, NEVER, "REVIEW"),  # a look-alike twin always goes to a person
        ({"O": 0.6, "0": 0.35}, 5.0, "REVIEW"),  # a smudged O that may be a zero
    ],
)
def test_a_twin_lot_is_accepted_only_when_the_print_tells_the_twins_apart_by_the_margin(
    o_column: dict[str, float], margin: float, status: str
) -> None:
    lot = "A24B1O7"
    line1 = f"(17)270831(10){lot}"
    at = line1.index("O")
    scripted = _Scripted([probs.matrix(CODE[0]), probs.matrix(line1, overrides={at: o_column})])
    # temperature 1: the hand-made matrices are as peaked as they are meant to be
    config = OcrConfig(recognizer="crnn", temperature=1.0, twin_margin=margin)
    reader = Reader(config, crnn=scripted)
    truth = {**TRUTH, "lot": lot}
    asn = [ASN(**truth), ASN(**{**truth, "lot": "A24B107"})]
    r = reader.read(label([CODE[0], line1]), asn)
    assert r.status == status, r
    assert _fields(r) == truth
    if status == "REVIEW":
        assert r.reason is not None and "look-alike lot (A24B107)" in r.reason


def test_twin_odds_weigh_the_read_lot_against_its_likeliest_twin() -> None:
    reader = Reader(OcrConfig(recognizer="crnn", temperature=1.0), crnn=_Scripted([]))

    def odds(column: dict[str, float], twins: list[str]) -> float:
        # one frame of one line: 'LOT A1O7' with the O's column as given
        return reader._twin_odds([[probs.matrix("LOT A1O7", overrides={6: column})]], "A1O7", twins)

    clear = odds({"O": 0.995}, ["A107"])
    assert clear > 5.0
    assert odds({"O": 0.5, "0": 0.45}, ["A107"]) < 0.5
    # the likeliest twin decides: a clear O against a 0 and an I twin elsewhere
    assert odds({"O": 0.995}, ["A107", "AIO7"]) <= clear
    # a lot no frame shows has no odds either way
    assert odds({"O": 0.995}, ["ZZZZ"]) > 0 and reader._twin_odds([], "A1O7", ["A107"]) == 0.0


def test_text_takes_each_line_from_the_recogniser_the_grammar_explains_best() -> None:
    from edge.vision.ocr.decode import LineRead
    from edge.vision.ocr.locate import Located, Region
    from edge.vision.ocr.reader import FrameRead, _text

    loc = Located(Region(0, 0, 10, 10, 0.0), ())
    good, bad = LineRead("(17)270831", (), True), LineRead("(17)27O83I", (), False)
    first = FrameRead(loc, (bad, good), (), 0)
    second = FrameRead(loc, (good, LineRead("(10)A24", (), True)), (), 1)
    assert _text([first, second]) == "(17)270831\n(17)270831"
    # ties go to the first recogniser; another image with more text wins
    assert _text([FrameRead(loc, (good,), (), 0), FrameRead(loc, (good,), (), 1)]) == good.text
    other = Located(Region(0, 0, 10, 10, 0.0), ())
    assert _text([FrameRead(loc, (good,), (), 0), FrameRead(other, (good, good), (), 0)]) == (
        "(17)270831\n(17)270831"
    )


class _Counting:
    """Wraps a recogniser and counts the crops it was asked to read."""

    def __init__(self, inner: object, blank: bool = False) -> None:
        self.inner = inner
        self.charset = inner.charset  # type: ignore[attr-defined]
        self.blank = blank
        self.crops = 0

    def __call__(self, crops: list[np.ndarray]) -> list[np.ndarray]:
        self.crops += len(crops)
        out: list[np.ndarray] = self.inner(crops)  # type: ignore[operator]
        if self.blank:  # a recogniser that sees nothing: every frame blank
            out = [np.eye(p.shape[1])[np.zeros(p.shape[0], int)] for p in out]
        return out


def test_cascade_reads_with_the_second_recogniser_only_when_the_first_is_not_sure(
    reader: Reader,
) -> None:
    cascade = Reader(OcrConfig(recognizer="ppocr"))
    cascade.config = cascade.config.model_copy(update={"recognizer": "cascade"})
    pp = cascade.recognizers[0]
    sure, second = _Counting(pp), _Counting(pp)
    cascade.recognizers = [sure, second]
    r = cascade.read(label(CODE))
    assert r.status == "ACCEPTED" and _fields(r) == TRUTH
    # the first recogniser read the two lines, then the strips beside them (no SSCC read)
    beside = len(locate(label(CODE)).probes)
    assert sure.crops == 2 + beside and second.crops == 0
    blind, second = _Counting(pp, blank=True), _Counting(pp)
    cascade.recognizers = [blind, second]
    r = cascade.read(label(CODE))
    assert blind.crops == 2 and second.crops == 2 + beside
    assert r.status == "ACCEPTED" and _fields(r) == TRUTH
    assert r.text == "\n".join(CODE)  # the line text comes from the recogniser that read it


def test_each_recogniser_gets_its_calibrated_temperature_unless_one_is_set() -> None:
    from edge.vision.ocr.config import TEMPERATURE

    assert OcrConfig().calibrated_temperature == TEMPERATURE["ppocr"] == 1.9
    assert OcrConfig(recognizer="crnn").calibrated_temperature == TEMPERATURE["crnn"] == 1.6
    assert OcrConfig(recognizer="crnn", temperature=2.0).calibrated_temperature == 2.0


def test_each_recogniser_gets_its_calibrated_twin_margin_unless_one_is_set() -> None:
    from edge.vision.ocr.config import TWIN_MARGIN

    assert OcrConfig().calibrated_twin_margin == TWIN_MARGIN["ppocr"] == 9.2
    assert OcrConfig(recognizer="crnn").calibrated_twin_margin == TWIN_MARGIN["crnn"] == 7.2
    # two recognisers' evidence adds up and was not fitted: their twins always go to REVIEW
    assert OcrConfig(recognizer="both").calibrated_twin_margin == NEVER
    assert OcrConfig(recognizer="cascade").calibrated_twin_margin == NEVER
    assert OcrConfig(recognizer="crnn", twin_margin=3.0).calibrated_twin_margin == 3.0


@pytest.mark.parametrize("with_asn", [False, True])
@pytest.mark.parametrize(("bar", "status"), [(0.85, "ACCEPTED"), (0.95, "REVIEW")])
def test_a_prod_date_must_reach_its_own_bar_whatever_the_asn_confirms(
    with_asn: bool, bar: float, status: str
) -> None:
    prod = "(11)250831"
    # the prod date's '5' is a little smudged (a '6' is possible): its own confidence ~0.86,
    # while an ASN confirms GTIN, lot and expiry at ~1.0
    smudged = probs.matrix(prod, overrides={5: {"5": 0.9, "6": 0.09}})
    scripted = _Scripted([probs.matrix(CODE[0]), probs.matrix(CODE[1]), smudged])
    config = OcrConfig(recognizer="crnn", temperature=1.0, optional_threshold=bar)
    r = Reader(config, crnn=scripted).read(
        label([*CODE, prod]), [ASN(**TRUTH)] if with_asn else None
    )
    assert r.status == status, r
    assert _fields(r) == TRUTH and r.prod_date == "2025-08-31"
    assert 0.85 < r.field_confidence["prod_date"] < 0.95
    if with_asn:
        assert r.field_confidence["lot"] > 0.99
    if status == "REVIEW":
        assert r.reason is not None and r.reason.startswith("UNREADABLE: prod_date confidence")
        assert "no ASN confirms it" in r.reason
    assert "field_confidence" not in r.as_json()


@pytest.mark.parametrize("with_asn", [False, True])
@pytest.mark.parametrize(("beside", "status"), [("", "ACCEPTED"), ("2.10", "REVIEW")])
def test_print_beside_the_code_blocks_a_read_without_its_prod_date(
    with_asn: bool, beside: str, status: str
) -> None:
    # the prod date's line is under tape: the localiser cuts out two lines, and only the strip
    # below them shows what is left of it
    scripted = _Scripted([probs.matrix(CODE[0]), probs.matrix(CODE[1])], beside=beside)
    reader = Reader(OcrConfig(recognizer="crnn", temperature=1.0), crnn=scripted)
    r = reader.read(label(CODE), [ASN(**TRUTH)] if with_asn else None)
    assert r.status == status, r
    assert _fields(r) == TRUTH and r.prod_date is None
    assert scripted.calls == 2  # the strips were read once, after the lines
    if status == "REVIEW":
        assert r.reason == "UNREADABLE: print beside the code not understood ('2.10')"


def test_the_strips_beside_the_code_are_not_read_when_nothing_is_missing() -> None:
    code = [*CODE, "(11)250831", "(00)369012340000000017"]
    scripted = _Scripted([probs.matrix(line) for line in code], beside="2.10")
    reader = Reader(OcrConfig(recognizer="crnn", temperature=1.0), crnn=scripted)
    r = reader.read(label(code))
    assert r.status == "ACCEPTED", r
    assert r.prod_date == "2025-08-31" and r.sscc is not None
    assert scripted.calls == 1


def test_the_optional_fields_bar_is_calibrated_and_never_below_the_accept_threshold() -> None:
    for name in ("ppocr", "crnn", "both", "cascade"):
        bar = OcrConfig(recognizer=name).calibrated_optional_threshold
        assert bar == max(OPTIONAL_THRESHOLD[name], 0.85)
    assert OcrConfig(optional_threshold=0.9).calibrated_optional_threshold == 0.9
    # a bar under the general threshold would not lower it
    lowered = OcrConfig(accept_threshold=0.9, optional_threshold=0.86)
    assert lowered.calibrated_optional_threshold == 0.9


def test_a_production_date_not_before_the_expiry_is_review(reader: Reader) -> None:
    # one of the two dates is misread, or the expiry's line (label lost) read as a prod date
    r = reader.read(label([*CODE, "(11)280101"]))
    assert r.status == "REVIEW" and r.prod_date == "2028-01-01"
    assert r.reason is not None and "not before expiry" in r.reason


def test_a_lot_read_as_near_two_asn_lots_is_not_decided_by_the_match() -> None:
    from edge.vision.ocr.reader import _edits, _rival_lot

    assert _edits("22009-1", "220409-1") == _edits("22009-1", "220109-1") == 1
    assert _edits("", "abc") == 3 and _edits("kitten", "sitting") == 3 and _edits("ab", "ab") == 0
    got = {"gtin": TRUTH["gtin"], "lot": "220109-1", "expiry": TRUTH["expiry"]}
    truck = [ASN(TRUTH["gtin"], lot, TRUTH["expiry"]) for lot in ("220109-1", "220409-1")]
    # the print lost a digit ('22009-1'): both lots are one edit away
    assert _rival_lot("22009-1", dict(got), truck) == "220409-1"
    # the read is the reported lot, or nearer to it than to the other: no rival
    assert _rival_lot("220109-1", dict(got), truck) is None
    assert _rival_lot("22O109-1", dict(got), truck) is None
    # look-alike swaps cost half an edit: 'UH' is nearer 'VN' than 'V1'
    assert _edits("B39377-UH", "B39377-VN") < _edits("B39377-UH", "B39377-V1")
    vn = {**got, "lot": "B39377-VN"}
    twin = [ASN(TRUTH["gtin"], lot, TRUTH["expiry"]) for lot in ("B39377-VN", "B39377-V1")]
    assert _rival_lot("B39377-UH", vn, twin) is None
    # a read too garbled to be near any lot decides nothing
    assert _rival_lot("IN08806901", dict(got), truck) is None
    # but a read far from the reported lot and near another one speaks against the match (the
    # CRNN read 'JBNW' under a smear, the ASN listed 'JBDW', the match found 'L220228')
    jb = [ASN(TRUTH["gtin"], lot, TRUTH["expiry"]) for lot in ("JBDW", "L220228")]
    assert _rival_lot("JBNW", {**got, "lot": "L220228"}, jb) == "JBDW"
    assert _rival_lot("JBNW", {**got, "lot": "JBDW"}, jb) is None
    # an ASN line for another product or date is told apart by those fields
    other = [truck[0], ASN("09506000134352", "220409-1", TRUTH["expiry"])]
    assert _rival_lot("22009-1", dict(got), other) is None


def test_a_garbled_copy_after_its_own_label_is_explained() -> None:
    from edge.vision.ocr.asn import value_forms
    from edge.vision.ocr.reader import _digit_coverage

    labelled = {
        "expiry": value_forms("expiry", "2030-08-15"),
        "gtin": value_forms("gtin", "06916050757624"),
    }
    # three edits in ten characters: too garbled to count anywhere else, but after the
    # expiry's own label (PP-OCR on a 30 % smudged frame) those digits are the expiry's
    assert _digit_coverage("2030/65-15", list(labelled["expiry"])) == 0.0
    assert _digit_coverage("有效期至 2030/65-15", [], labelled) == 1.0
    assert _digit_coverage("有效期 2030/65-15", [], labelled) == 1.0  # 至 lost
    # the same digits without a label, or after another field's label, stay unexplained
    assert _digit_coverage("2030/65-15", [], labelled) == 0.0
    assert _digit_coverage("PROD 2030/65-15", [], labelled) == 0.0
    assert _digit_coverage("LOT 2030/65-15", [], labelled) == 0.0
    # one copy per label: a second date after the expiry's is not covered by it
    assert _digit_coverage("EXP 2030/08/15 2025/03/14", [], labelled) == 0.5
    # and the looser match still needs most of the value: four edits in ten is not a copy
    assert _digit_coverage("EXP 2025/03/14", [], labelled) == 0.0
    # a label of a field with no reported value explains nothing
    assert _digit_coverage("SSCC 369767920455256394", [], labelled) == 0.0
    # labels as the recogniser bends them; the zero of 'L0T' is no digit of a value
    assert _digit_coverage("L0T A24B117", ["A24B117"]) == 1.0
    assert _digit_coverage("L0T 2030/65-15", [], {"lot": ("2030-08-15",)}) == 1.0
    assert _digit_coverage("<17)300S15", [], {"expiry": ("300815",)}) == 1.0
