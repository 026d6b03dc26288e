"""The carton-frame generator: determinism, truth that parses, smudge control, crops, ASN, CLI."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edge.codes import parse_text
from fixtures.cartons import HOLDOUT, TRAIN, asn_for, generate_crop, generate_frame
from fixtures.cartons.__main__ import main
from fixtures.cartons.content import REFERENCE_DAY

pytestmark = pytest.mark.filterwarnings("error")


def test_same_seed_same_pixels_other_seed_other_pixels() -> None:
    a, ta = generate_frame(7, smudge=0.2)
    b, tb = generate_frame(7, smudge=0.2)
    c, _ = generate_frame(8, smudge=0.2)
    assert np.array_equal(a, b) and ta == tb
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("seed", range(6))
def test_frame_and_truth(seed: int) -> None:
    img, t = generate_frame(seed, smudge=0.1 * (seed % 6))
    assert img.shape == (720, 1280, 3) and img.dtype == np.uint8
    parsed = parse_text(t["text"], today=REFERENCE_DAY)
    code = parsed.carton()
    assert code is not None, parsed.errors
    assert code.as_dict() == {k: t[k] for k in ("gtin", "lot", "expiry", "prod_date", "sscc")}
    assert 1 <= len(t["lines"]) <= 3 and t["text"] == "\n".join(t["lines"])
    assert parsed.forms == t["forms"]
    quad = np.array(t["quad"])
    assert quad.shape == (4, 2)
    assert (quad[:, 0] >= 0).all() and (quad[:, 0] <= 1280).all()
    assert (quad[:, 1] >= 0).all() and (quad[:, 1] <= 720).all()
    assert len(t["line_quads"]) == len(t["lines"])
    assert abs(t["skew_deg"]) <= 10
    json.dumps(t)  # truth is plain JSON


def test_code_is_printed_where_the_quad_says() -> None:
    """Ink darkens the code's quad relative to the face around it (no smudge, seed fixed)."""
    darker = 0
    for seed in range(8):
        img, t = generate_frame(seed, smudge=0.0)
        grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
        mask = np.zeros(grey.shape, np.uint8)
        cv2.fillPoly(mask, [np.array(t["quad"], np.int32)], 255)
        ring = cv2.dilate(mask, np.ones((25, 25), np.uint8)) - mask
        darker += grey[mask > 0].min() < grey[ring > 0].mean() - 40
    assert darker == 8


@pytest.mark.parametrize("target", [0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
def test_smudge_share_is_controlled(target: float) -> None:
    shares = [generate_frame(s, smudge=target)[1]["smudge"] for s in range(4)]
    for share in shares:
        assert abs(share - target) <= 0.05, shares
    if target == 0.0:
        assert shares == [0.0] * 4


def test_smudge_range_is_enforced() -> None:
    with pytest.raises(ValueError, match="smudge"):
        generate_frame(1, smudge=0.6)


def test_variety_over_seeds() -> None:
    seen: dict[str, set[str]] = {
        "printer": set(),
        "surface": set(),
        "style": set(),
        "kinds": set(),
        "decor": set(),
    }
    n_lines = set()
    for seed in range(40):
        _, t = generate_frame(seed, smudge=0.3)
        seen["printer"].add(t["printer"])
        seen["surface"].add(t["surface"])
        seen["style"].add(t["style"])
        seen["kinds"].update(t["smudge_kinds"])
        seen["decor"].update(t["decor"])
        n_lines.add(len(t["lines"]))
    assert seen["printer"] == {"inkjet", "thermal"}
    assert seen["surface"] == {"kraft", "label"}
    assert seen["style"] == {"gs1", "label", "cn", "mixed"}
    assert seen["kinds"] == {"smear", "dirt", "scratch", "tape"}
    assert seen["decor"] == set()  # artwork is off in TRAIN (see test_holdout_draws_decor)
    assert 2 in n_lines and len(n_lines) >= 2


def test_holdout_settings_differ_and_render() -> None:
    assert set(HOLDOUT.dot_fonts) - set(TRAIN.dot_fonts)
    assert not set(HOLDOUT.thermal_fonts) & set(TRAIN.thermal_fonts)
    assert not set(HOLDOUT.inks) & set(TRAIN.inks)
    img, t = generate_frame(3, smudge=0.2, settings=HOLDOUT)
    assert t["settings"] == "holdout" and img.shape == (720, 1280, 3)
    other, _ = generate_frame(3, smudge=0.2)
    assert not np.array_equal(img, other)


def test_custom_settings() -> None:
    small = dataclasses.replace(TRAIN, name="small", frame_size=(640, 480), thermal_share=1.0)
    img, t = generate_frame(1, settings=small)
    assert img.shape == (480, 640, 3) and t["printer"] == "thermal"


@pytest.mark.parametrize("seed", range(4))
def test_crop(seed: int) -> None:
    img, t = generate_crop(seed, smudge=0.1)
    assert img.shape[0] == 48 and img.shape[1] > 48 and img.dtype == np.uint8
    assert len(t["lines"]) == 1 and t["text"] == t["lines"][0]
    parsed = parse_text(t["text"], today=REFERENCE_DAY)
    assert parsed.ok and parsed.fields
    as_json = {k: v.isoformat() if isinstance(v, date) else v for k, v in parsed.fields.items()}
    assert as_json == t["fields"]
    again, _ = generate_crop(seed, smudge=0.1)
    assert np.array_equal(img, again)


def test_asn_lists_every_code_and_decoys() -> None:
    truths = [generate_frame(s)[1] for s in range(5)]
    asn = asn_for(truths, decoys=3, seed=1)
    keys = {(a["gtin"], a["lot"], a["expiry"]) for a in asn}
    for t in truths:
        assert (t["gtin"], t["lot"], t["expiry"]) in keys
    assert len(asn) > len(truths)
    assert all(set(a) == {"gtin", "lot", "expiry"} for a in asn)
    assert asn == asn_for(truths, decoys=3, seed=1)
    assert len(keys) == len(asn)  # no duplicate lines


def test_cli_writes_a_set(tmp_path: Path) -> None:
    out = tmp_path / "set"
    args = [
        "--out",
        str(out),
        "--per-bucket",
        "2",
        "--buckets",
        "0,40",
        "--seed",
        "5",
        "--crops",
        "1",
    ]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "truth.json").read_text("utf-8"))
    assert sorted(doc["frames"]) == [
        "frames/b00_0000.jpg",
        "frames/b00_0001.jpg",
        "frames/b40_0000.jpg",
        "frames/b40_0001.jpg",
    ]
    assert len(doc["crops"]) == 2
    for name in [*doc["frames"], *doc["crops"]]:
        img = cv2.imread(str(out / name))
        assert img is not None
    asn = json.loads((out / "asn.json").read_text("utf-8"))
    assert {(f["gtin"], f["lot"]) for f in doc["frames"].values()} <= {
        (a["gtin"], a["lot"]) for a in asn
    }


@pytest.mark.parametrize("bad", ["0,60", "x", ""])
def test_cli_rejects_bad_buckets(tmp_path: Path, bad: str) -> None:
    res = CliRunner().invoke(main, ["--out", str(tmp_path), "--buckets", bad])
    assert res.exit_code == 2


def test_printed_codes_over_many_seeds() -> None:
    """No rendering: every drawn code prints in 1-3 lines of drawable characters and parses."""
    from fixtures.cartons.content import random_printed_code
    from fixtures.cartons.glyphs import CHARS

    for seed in range(400):
        rng = np.random.default_rng(seed)
        style = ("gs1", "label", "cn", "mixed")[seed % 4]
        p = random_printed_code(rng, style, prod_share=0.5, sscc_share=0.3)
        assert 1 <= len(p.lines) <= 3
        assert set("".join(p.lines)) <= set(CHARS)
        assert parse_text("\n".join(p.lines), today=REFERENCE_DAY).carton() == p.code


def test_decor_stays_clear_of_the_code() -> None:
    """Artwork never touches the code's box (it is drawn before the code, around it)."""
    from fixtures.cartons.decor import draw_decor

    rng = np.random.default_rng(5)
    img = np.full((720, 1280, 3), 128, np.uint8)
    code = (400.0, 300.0, 800.0, 420.0)
    kinds = draw_decor(rng, img, (0.0, 0.0, 1280.0, 720.0), code, 6)
    assert kinds
    assert (img[300:421, 400:801] == 128).all()
    assert (img != 128).any()


def test_holdout_draws_decor() -> None:
    kinds: set[str] = set()
    for seed in range(12):
        kinds.update(generate_frame(seed, settings=HOLDOUT)[1]["decor"])
    assert kinds == {"word", "barcode", "arrows"}
