"""The bounded review-sample store: atomic files, private modes, oldest dropped with a counter."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest

from edge.vision.ocr.samples import SampleStore


def _img(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (60, 200, 3), dtype=np.uint8)


def test_keep_load_remove(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "s", max_bytes=1_000_000)
    sid = store.keep(_img(0), {"status": "REVIEW", "lot": "A1B"}, model="m1")
    assert sid is not None and store.ids() == [sid]
    png, meta = store.load(sid)
    assert png.startswith(b"\x89PNG") and meta["lot"] == "A1B" and meta["model"] == "m1"
    mode = stat.S_IMODE((tmp_path / "s" / f"{sid}.png").stat().st_mode)
    assert mode == 0o600 and stat.S_IMODE((tmp_path / "s").stat().st_mode) == 0o700
    store.remove(sid)
    assert store.ids() == [] and store.usage_bytes == 0


def test_oldest_dropped_first_and_counted(tmp_path: Path) -> None:
    one = len(
        SampleStore(tmp_path / "probe", 10**9).load(
            SampleStore(tmp_path / "probe", 10**9).keep(_img(0), {"i": 0}) or ""
        )[0]
    )
    store = SampleStore(tmp_path / "s", max_bytes=int(one * 3.5))
    ids = [store.keep(_img(i), {"i": i}) for i in range(6)]
    kept = store.ids()
    assert kept == ids[-len(kept) :] and 1 <= len(kept) <= 3
    assert store.dropped == 6 - len(kept)
    assert store.usage_bytes <= store.max_bytes
    # the counter survives a restart
    assert SampleStore(tmp_path / "s", max_bytes=store.max_bytes).dropped == store.dropped


def test_sample_larger_than_the_cap_is_dropped(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "s", max_bytes=100)
    assert store.keep(_img(1), {}) is None and store.dropped == 1 and store.ids() == []


def test_half_written_files_are_ignored_and_cleaned(tmp_path: Path) -> None:
    root = tmp_path / "s"
    store = SampleStore(root, max_bytes=10**6)
    (root / "00000000000000000001-000001.png.part").write_bytes(b"x")
    (root / "00000000000000000002-000001.json").write_text("{}")  # image never written
    assert store.ids() == []
    SampleStore(root, max_bytes=10**6)
    assert not list(root.glob("*.part"))


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/b", "", "x.png"])
def test_ids_cannot_name_paths(tmp_path: Path, bad: str) -> None:
    store = SampleStore(tmp_path / "s", max_bytes=10**6)
    with pytest.raises(ValueError):
        store.load(bad)
