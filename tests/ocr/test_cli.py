"""``dockgate read``: JSON lines with exactly the issue's keys, ERROR per bad file, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edge.cli import cli
from edge.vision.ocr.reader import JSON_KEYS
from tests.ocr.conftest import label, printed_line


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("imgs")
    good = d / "good.png"
    cv2.imwrite(str(good), label(["(01)06901234567892", "(17)270831(10)A24B117"]))
    crop = d / "crop.jpg"
    cv2.imwrite(str(crop), printed_line("LOT A24B117 EXP 2027.08.31"))
    truncated = d / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:200])
    text = d / "notes.png"
    text.write_text("this is not an image")
    empty = d / "empty.jpg"
    empty.write_bytes(b"")
    tiny = d / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((1, 1, 3), np.uint8))
    big = d / "big.png"  # decompresses to 7000 x 7000: over the pixel limit
    cv2.imwrite(str(big), np.zeros((7000, 7000), np.uint8))
    return {
        "good": good,
        "crop": crop,
        "truncated": truncated,
        "text": text,
        "empty": empty,
        "tiny": tiny,
        "big": big,
        "missing": d / "missing.png",
        "dir": d,
    }


def _run(args: list[str]) -> tuple[int, list[dict[str, object]], str]:
    res = CliRunner().invoke(cli, ["read", *args])
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    return res.exit_code, rows, res.stderr


def test_json_lines_with_exact_keys_and_errors_per_file(images: dict[str, Path]) -> None:
    order = ["good", "missing", "truncated", "text", "empty", "tiny", "big", "dir", "crop"]
    code, rows, err = _run(["--json", *(str(images[k]) for k in order)])
    assert code == 0
    assert [r["file"] for r in rows] == [str(images[k]) for k in order]
    assert all(tuple(r) == JSON_KEYS for r in rows)
    by = dict(zip(order, rows, strict=True))
    assert by["good"]["status"] == "ACCEPTED"
    assert by["good"]["gtin"] == "06901234567892" and by["good"]["expiry"] == "2027-08-31"
    for bad in ("missing", "truncated", "text", "empty", "tiny", "big", "dir"):
        assert by[bad]["status"] == "ERROR", bad
        assert by[bad]["gtin"] is None and by[bad]["confidence"] == 0.0
    assert by["crop"]["lot"] == "A24B117"  # still read after the bad files
    assert "IMAGE_INVALID" in err and "missing.png" in err


def test_expect_file(images: dict[str, Path], tmp_path: Path) -> None:
    asn = tmp_path / "asn.json"
    line = {"gtin": "06901234567892", "lot": "A24B117", "expiry": "2027-08-31"}
    asn.write_text(json.dumps([line]))
    code, rows, _ = _run(["--json", "--expect", str(asn), str(images["good"])])
    assert code == 0 and rows[0]["status"] == "ACCEPTED" and rows[0]["lot"] == "A24B117"


@pytest.mark.parametrize("content", ["{not json", '{"gtin": "1"}', '[{"gtin": "1"}]'])
def test_bad_expect_file_is_a_usage_error(
    images: dict[str, Path], tmp_path: Path, content: str
) -> None:
    asn = tmp_path / "asn.json"
    asn.write_text(content)
    code, rows, _ = _run(["--json", "--expect", str(asn), str(images["good"])])
    assert code == 2 and rows == []


def test_no_image_argument_is_a_usage_error() -> None:
    code, _, _ = _run([])
    assert code == 2


def test_plain_output(images: dict[str, Path]) -> None:
    res = CliRunner().invoke(cli, ["read", str(images["good"])])
    assert res.exit_code == 0 and "ACCEPTED" in res.stdout and "lot=A24B117" in res.stdout
