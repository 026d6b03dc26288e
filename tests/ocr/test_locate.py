"""Localiser pieces: histogram percentiles, polarity, line bands."""

from __future__ import annotations

import numpy as np
import pytest

from edge.vision.ocr.locate import _join_halves, _percentiles, dark_background, normalise


def test_histogram_percentiles_equal_numpys() -> None:
    rng = np.random.default_rng(0)
    for shape in ((300, 500), (7, 3), (1, 1)):
        for k in range(20):
            g = rng.integers(0, 256, shape).astype(np.uint8)
            if k % 2:
                g = (g > 250).astype(np.uint8) * 200  # mostly empty, like a black-hat map
            qs = (2.0, 50.0, 98.0, 99.5)
            np.testing.assert_allclose(_percentiles(g, qs), np.percentile(g, qs))


def test_polarity_is_the_callers_choice_for_a_tight_bold_line() -> None:
    # a bold line crop is mostly ink: on its own it looks like a dark ground
    crop = np.full((20, 100), 40, np.uint8)
    crop[:3], crop[-3:] = 220, 220
    assert dark_background(crop)
    assert normalise(crop, invert=False)[10, 50] < 50  # the ink stays dark
    assert normalise(crop)[10, 50] > 200  # deciding on the crop alone flips it


def test_two_halves_of_a_dot_line_join_but_a_sliver_beside_a_line_does_not() -> None:
    # a 30-row line with a dead nozzle row at 14-16, then a full line
    assert _join_halves([(0, 14), (16, 30), (45, 75)]) == [(0, 30), (45, 75)]
    # a thin band under tape next to a full line stays on its own
    assert _join_halves([(0, 30), (34, 40)]) == [(0, 30), (34, 40)]


def test_a_faint_line_beside_the_code_is_found_and_marked() -> None:
    import cv2

    from edge.vision.ocr.locate import locate

    img = np.full((400, 900), 225, np.uint8)
    for i, (text, ink) in enumerate([("(01)06901234567892", 30), ("(10)A24B117", 30)]):
        cv2.putText(img, text, (80, 120 + 60 * i), cv2.FONT_HERSHEY_SIMPLEX, 1.4, ink, 3)
    # the third line under tape: low contrast
    cv2.putText(img, "(11)250831", (80, 240), cv2.FONT_HERSHEY_SIMPLEX, 1.4, 190, 3)
    located = locate(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
    assert len(located.lines) == 3 and located.faint == (2,)
    # the faint crop is stretched to full contrast for the recogniser
    crop = located.lines[2]
    assert int(crop.max()) - int(crop.min()) > 150


def test_each_line_has_its_box_in_the_deskewed_region() -> None:
    from edge.vision.ocr.locate import locate
    from tests.ocr.conftest import label

    img = np.asarray(
        label(["(01)06901234567892", "(17)270831(10)A24B117"], frame=(720, 1280)), np.uint8
    )
    loc = locate(img)
    assert len(loc.boxes) == len(loc.lines) == 2
    r = loc.region
    for (x0, y0, x1, y1), crop in zip(loc.boxes, loc.lines, strict=True):
        assert 0 <= x0 < x1 <= r.w and 0 <= y0 < y1 <= r.h
        assert crop.shape == (y1 - y0, x1 - x0)
    assert loc.boxes[0][3] <= loc.boxes[1][3]  # top to bottom


def test_a_smear_bridging_two_close_lines_does_not_merge_them() -> None:
    from edge.vision.ocr.locate import _bands

    # three lines of ink 20 rows tall with 6-row gaps, 400 columns wide; a blob 80 columns
    # wide fills both gaps (a smudge across the code), and a shorter third line
    ink = np.zeros((100, 400), np.uint8)
    for top, width in ((10, 400), (36, 400), (62, 220)):
        ink[top : top + 20, :width] = 255
    ink[25:70, 150:230] = 255
    bands, _ = _bands(ink)
    assert len(bands) == 3
    for (a, b), top in zip(bands, (10, 36, 62), strict=True):
        # each band holds its own line and nothing of its neighbours (cuts fall in the gaps)
        assert top - 6 <= a <= top and top + 20 <= b <= top + 26


def test_touching_pieces_of_a_faint_line_are_joined_up_to_a_line_height() -> None:
    from edge.vision.ocr.locate import _join_pieces

    # print under tape cut at its dot rows into four thin touching pieces: one line again
    assert _join_pieces([(264, 274), (274, 282), (282, 297), (297, 313)], 60) == [(264, 313)]
    # pieces with a gap, or more than a line's height together, stay apart
    assert _join_pieces([(0, 10), (12, 20)], 60) == [(0, 10), (12, 20)]
    assert _join_pieces([(0, 40), (40, 80)], 60) == [(0, 40), (40, 80)]


def test_a_short_faint_line_under_a_long_code_line_is_found() -> None:
    # '(11)281104' under tape below a 45-character line: its columns are a fifth of the code's
    from edge.vision.ocr.locate import _split_lines

    gray = np.full((120, 900), 200, np.uint8)
    rng = np.random.default_rng(3)
    for x in range(20, 880, 20):  # the code line: dark dot-matrix characters
        gray[30:50, x : x + 12] = np.where(rng.random((20, 12)) < 0.6, 40, 200)
    for x in range(20, 200, 20):  # the faint short line under tape
        gray[70:88, x : x + 12] = np.where(rng.random((18, 12)) < 0.6, 150, 200)
    cut = _split_lines(gray)
    assert len(cut.lines) == 2 and cut.faint == (1,) and not cut.blind
    assert cut.boxes[1][1] <= 70 and cut.boxes[1][3] >= 88 and cut.boxes[1][2] <= 300


def _dot_line(gray: np.ndarray, rows: tuple[int, int], x1: int, ink: int, seed: int) -> None:
    """Dot-matrix-like characters every 20 columns from x = 20 to ``x1``."""
    rng = np.random.default_rng(seed)
    a, b = rows
    for x in range(20, x1, 20):
        gray[a:b, x : x + 12] = np.where(rng.random((b - a, 12)) < 0.6, ink, gray[a:b, x : x + 12])


@pytest.mark.parametrize(
    ("rows", "x1", "height"),
    [
        # tape over the lower half of '(11)240620': only 10 of its 20 rows show, faintly
        ((60, 70), 300, 120),
        # a faded prod date 1.6 line heights below the code line (wider than the code's spacing)
        ((82, 100), 500, 160),
    ],
    ids=["half-under-tape", "a-line-lower"],
)
def test_a_faint_line_beside_the_code_is_found(rows: tuple[int, int], x1: int, height: int) -> None:
    from edge.vision.ocr.locate import _split_lines

    gray = np.full((height, 900), 200, np.uint8)
    _dot_line(gray, (30, 50), 880, 40, 1)
    _dot_line(gray, rows, x1, 150, 2)
    cut = _split_lines(gray)
    assert len(cut.lines) == 2 and cut.faint == (1,)


def test_a_faint_mark_far_below_the_code_is_no_line_of_it() -> None:
    from edge.vision.ocr.locate import _split_lines

    gray = np.full((200, 900), 200, np.uint8)
    _dot_line(gray, (30, 50), 880, 40, 1)
    _dot_line(gray, (130, 148), 500, 150, 2)
    assert _split_lines(gray).faint == ()


def test_texture_beside_the_code_makes_the_faint_search_blind() -> None:
    # coarse board: specks too faint for the line search but dense at the low threshold, so a
    # faint line beside the code could not be told from the board
    from edge.vision.ocr.locate import _split_lines

    rng = np.random.default_rng(5)
    gray = np.where(rng.random((160, 900)) < 0.25, 150, 200).astype(np.uint8)
    _dot_line(gray, (60, 80), 880, 40, 1)
    cut = _split_lines(gray)
    assert len(cut.lines) == 1 and cut.blind
    clean = np.full((160, 900), 200, np.uint8)
    _dot_line(clean, (60, 80), 880, 40, 1)
    assert not _split_lines(clean).blind


def test_the_strips_beside_the_code_are_probes_stretched_like_its_lines() -> None:
    import cv2

    from edge.vision.ocr.locate import locate

    def code(third_ink: int | None) -> np.ndarray:
        img = np.full((400, 900), 225, np.uint8)
        for i, text in enumerate(["(01)06901234567892", "(10)A24B117"]):
            cv2.putText(img, text, (80, 120 + 60 * i), cv2.FONT_HERSHEY_SIMPLEX, 1.4, 30, 3)
        if third_ink is not None:
            # a line so faint (under tape) that the localiser does not cut it out
            cv2.putText(img, "(11)250831", (80, 240), cv2.FONT_HERSHEY_SIMPLEX, 1.4, third_ink, 3)
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)

    clean = locate(code(None))
    assert len(clean.lines) == 2 and len(clean.probes) == 2
    # above the first line and below the last, as wide as the lines' crops; plain board stays
    # plain: stretched like the line beside it, not blown up on its own
    assert all(p.shape[1] == clean.lines[0].shape[1] for p in clean.probes)
    assert all(int(p.min()) > 200 for p in clean.probes)
    ghost = locate(code(205))
    assert len(ghost.lines) == 2 and ghost.faint == ()
    above, below = ghost.probes
    assert int(above.min()) > 200 and int(below.min()) < int(below.max()) - 15


def test_a_code_at_the_edge_of_the_image_has_no_probe_beyond_it() -> None:
    from edge.vision.ocr.locate import locate
    from tests.ocr.conftest import label

    # a tight crop of one line: the strips beyond it are cut to nothing by the image's edges
    located = locate(label(["(01)06901234567892"])[14:-14])
    assert len(located.lines) == 1 and len(located.probes) < 2
