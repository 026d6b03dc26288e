"""CRNN recogniser parts without a trained model: charset, preprocessing, data, metrics."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.vision.ocr.crnn.charset import CHARACTERS, CHARSET, INDEX, encode, from_metadata
from edge.vision.ocr.crnn.data import (
    RENDER_HEIGHT,
    LineSet,
    LineSpec,
    _board_margins,
    augment,
    blank_lines,
    build_lines,
    holdout_specs,
    load_labelled,
    plain,
    render_line,
    train_specs,
)
from edge.vision.ocr.crnn.metrics import edit_distance, greedy_text, score_lines
from edge.vision.ocr.crnn.prep import HEIGHT, PAD_VALUE, STRIDE, batch_input, resize_line
from edge.vision.ocr.decode import Decoder
from fixtures.cartons.content import random_printed_code


def test_charset_covers_every_printed_form() -> None:
    rng = np.random.default_rng(5)
    seen: set[str] = set()
    for i in range(400):
        style = ("gs1", "label", "cn", "mixed")[i % 4]
        code = random_printed_code(rng, style, prod_share=0.5, sscc_share=0.3)
        for line in code.lines:
            seen.update(line)
    assert seen <= set(CHARACTERS), sorted(seen - set(CHARACTERS))
    for word in ("批号", "有效期至", "生产日期", "BEST BY", "LOT:", "(17)", "2027/08/31"):
        assert encode(word) == [INDEX[c] for c in word]
    assert CHARSET[0] == "" and len(set(CHARSET)) == len(CHARSET)
    assert from_metadata("\n".join(CHARSET[1:])) == CHARSET


def test_decoder_accepts_the_charset() -> None:
    """The reader's grammar decoder builds its graph over this charset and reads a line."""
    decoder = Decoder(CHARSET)
    text = "(17)270831"
    probs = np.full((2 * len(text) + 4, len(CHARSET)), 1e-4)
    for t in range(probs.shape[0]):
        k = t // 2 - 1
        probs[t, INDEX[text[k]] if t % 2 == 0 and 0 <= k < len(text) else 0] = 1.0
    line = decoder.line(probs / probs.sum(axis=1, keepdims=True))
    assert line.text == text
    assert [f.value for f in line.fields] == ["2027-08-31"]


def test_resize_and_batch() -> None:
    crop = np.full((50, 333), 200, np.uint8)
    line = resize_line(crop)
    assert line.shape[0] == HEIGHT and line.shape[1] % STRIDE == 0
    assert abs(line.shape[1] - 333 * HEIGHT / 50) < STRIDE + 1
    tiny = resize_line(np.zeros((40, 3), np.uint8))
    assert tiny.shape == (HEIGHT, 32)
    batch = batch_input([line, tiny])
    assert batch.shape == (2, 1, HEIGHT, line.shape[1])
    assert batch[1, 0, 0, -1] == pytest.approx(PAD_VALUE)
    assert batch[1, 0, 0, 0] == pytest.approx(-1.0)
    assert batch[0, 0, 0, 0] == pytest.approx(200 / 127.5 - 1)


def test_render_is_seeded_and_labelled() -> None:
    spec = train_specs(3, seed=4)[2]
    a, text_a = render_line(spec)
    b, text_b = render_line(spec)
    assert np.array_equal(a, b) and text_a == text_b
    assert a.shape[0] == RENDER_HEIGHT and a.dtype == np.uint8
    assert set(text_a) <= set(CHARACTERS)
    hold, _ = render_line(holdout_specs(1)[0])
    assert hold.shape[0] == RENDER_HEIGHT
    with pytest.raises(ValueError, match="unknown domain"):
        render_line(LineSpec(1, 0.0, "elsewhere"))


def test_specs_are_disjoint_and_prefix_stable() -> None:
    train = train_specs(500, seed=1)
    assert train_specs(200, seed=1) == train[:200]
    assert {s.seed for s in train}.isdisjoint({s.seed for s in train_specs(500, seed=9)})
    hold = holdout_specs(8)
    assert [s.smudge for s in hold[:4]] == [0.0, 0.1, 0.2, 0.3]
    assert {s.domain for s in hold} == {"holdout"}


def test_augment_is_seeded_and_network_sized() -> None:
    img, _ = render_line(train_specs(1, seed=2)[0])
    out1 = augment(np.random.default_rng(3), img)
    out2 = augment(np.random.default_rng(3), img)
    assert np.array_equal(out1, out2)
    assert out1.shape[0] == HEIGHT and out1.shape[1] % STRIDE == 0
    variants = {augment(np.random.default_rng(s), img).tobytes() for s in range(5)}
    assert len(variants) == 5
    p = plain(img)
    assert p.shape[0] == HEIGHT and p.max() > 200 and p.min() < 60  # normalised contrast


def test_blank_lines_are_seeded_unprinted_stock() -> None:
    a, b = blank_lines(6, seed=4), blank_lines(6, seed=4)
    assert a.texts == [""] * 6
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images, strict=True))
    assert not np.array_equal(a.images[0], blank_lines(1, seed=5).images[0])
    for im in a.images:
        assert im.dtype == np.uint8 and im.shape[0] == RENDER_HEIGHT
        assert RENDER_HEIGHT <= im.shape[1] < 25 * RENDER_HEIGHT
        # no dark marks: every pixel stays near its column's level (no stroke, no dot)
        assert float(np.abs(im.astype(np.float32) - np.median(im, axis=0)).max()) < 60


def test_board_margins_add_bare_board_beside_the_print() -> None:
    grey, _ = render_line(train_specs(1, seed=9)[0])
    h, w = grey.shape
    level = float(np.percentile(grey, 80))
    widths = []
    for seed in range(12):
        out = _board_margins(np.random.default_rng(seed), grey, h / 1.5)
        assert out.dtype == np.uint8 and out.shape[0] == h
        widths.append(out.shape[1] - w)
        start = next(
            x for x in range(out.shape[1] - w + 1) if np.array_equal(out[:, x : x + w], grey)
        )
        board = np.concatenate([out[:, :start], out[:, start + w :]], axis=1)
        # the board is the crop's paper, darker only at a few small specks
        assert abs(float(np.median(board)) - level) < 12
        assert float((board < level - 40).mean()) < 0.05
    assert min(widths) >= 2 and max(widths) <= 2 * 10 * h / 1.5 + 2
    assert len(set(widths)) > 6  # 1 to 10 line heights, one or both sides


def test_lineset_roundtrip_and_cache(tmp_path: Path) -> None:
    specs = train_specs(3, seed=6)
    calls: list[int] = []
    first = build_lines(specs, cache=tmp_path, progress=calls.append, shard=2)
    assert len(first) == 3 and sum(calls) == 3
    assert len(list(tmp_path.glob("lines-*.npz"))) == 2
    again = build_lines(specs, cache=tmp_path, shard=2)
    assert again.texts == first.texts
    assert all(np.array_equal(a, b) for a, b in zip(again.images, first.images, strict=True))
    bad = LineSet([np.zeros((4, 5), np.uint8), np.zeros((6, 5), np.uint8)], ["1", "2"])
    with pytest.raises(ValueError, match="one height"):
        bad.save(tmp_path / "bad.npz")


def test_labelled_crops(tmp_path: Path) -> None:
    assert len(load_labelled(tmp_path)) == 0  # no labels.json: nothing
    cv2.imwrite(str(tmp_path / "a.png"), np.full((60, 300), 220, np.uint8))
    (tmp_path / "labels.json").write_text(json.dumps({"a.png": "LOT A24B117"}))
    got = load_labelled(tmp_path)
    assert got.texts == ["LOT A24B117"] and got.images[0].shape == (RENDER_HEIGHT, 200)
    (tmp_path / "labels.json").write_text(json.dumps({"a.png": "lot a24"}))
    with pytest.raises(ValueError, match="outside the charset"):
        load_labelled(tmp_path)
    (tmp_path / "labels.json").write_text(json.dumps({"missing.png": "LOT 1"}))
    with pytest.raises(ValueError, match="not a readable image"):
        load_labelled(tmp_path)
    (tmp_path / "labels.json").write_text(json.dumps(["a.png"]))
    with pytest.raises(ValueError, match="expected an object"):
        load_labelled(tmp_path)


def test_metrics() -> None:
    assert edit_distance("LOT A1", "LOT A1") == 0
    assert edit_distance("270831", "27O831") == 1
    assert edit_distance("", "ABC") == 3
    assert edit_distance("ABCD", "ACD") == 1
    probs = np.zeros((7, len(CHARSET)))
    for t, k in enumerate([0, INDEX["1"], INDEX["1"], 0, INDEX["1"], INDEX["2"], 0]):
        probs[t, k] = 1.0
    assert greedy_text(probs, CHARSET) == "112"
    s = score_lines(["112", "LOT"], ["112", "LOT1"])
    assert s.exact == 1 and s.edits == 1 and s.chars == 7
    assert s.summary() == {"lines": 2, "exact_match": 0.5, "cer": round(1 / 7, 4)}
    with pytest.raises(ValueError):
        score_lines(["1"], [])
