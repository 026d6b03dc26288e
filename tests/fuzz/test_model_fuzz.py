"""Fuzzing uploaded model files and their metadata (the OTA path and the node's loader).

- Mutated copies of the shipped defect model (truncated, bit-flipped, random spans, random bytes,
  empty, zero-filled, concatenated) loaded by ``load_session`` (the node), ``DefectModel.load``
  (metadata from the ONNX file) and ``onnx_signature`` (``dockgate ota release``), each against
  its own sha256 (a file that got signed anyway) and against the manifest's (a file damaged on
  disk: never loaded). A child process runs them, so a crash in onnxruntime fails the test and
  names the mutation instead of killing pytest. Criterion: loads, or ``MODEL_INVALID``; nothing
  else; bounded time.
- The model card parser (release metadata) and the name/version rules (they become path
  segments on the server and the device) with hypothesis: no exception, nothing path-like passes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.contracts.errors import DockgateError, ErrorCode
from ota.release import _parse_card, check_name_version
from tests.fuzz.budget import SCALE, budget

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "defect" / "defect.onnx"
CHILD = Path(__file__).with_name("model_fuzz_child.py")
COLUMNS = ("session", "model", "release", "wrong_sha")


@pytest.mark.slow
def test_mutated_model_files_load_or_are_model_invalid(tmp_path: Path) -> None:
    count = 24 * SCALE
    proc = subprocess.run(
        [sys.executable, str(CHILD), str(MODEL), str(tmp_path), str(count), "20261122"],
        capture_output=True,
        text=True,
        timeout=60 + 10 * count,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    done = [r for r in rows if "mutation" in r]
    last = rows[-1] if rows else None
    assert proc.returncode == 0, f"child died ({proc.returncode}) at {last}: {proc.stderr[-2000:]}"
    assert len(done) == count
    outcomes = Counter((c, r[c]) for r in done for c in COLUMNS)
    bad = [r for r in done if any(r[c] not in ("ok", "MODEL_INVALID") for c in COLUMNS)]
    assert not bad, bad[:3]
    assert all(r["wrong_sha"] == "MODEL_INVALID" for r in done)  # damaged on disk: never loaded
    assert outcomes[("session", "MODEL_INVALID")] > 0
    slowest = max(r["seconds"] for r in done)
    assert slowest < 30, f"a mutated model took {slowest} s to refuse or load"
    print(f"\nmodel fuzz: {count} mutations, {dict(outcomes)}, slowest {slowest:.2f} s")


@budget(300)
@given(st.text(max_size=2000))
def test_model_card_parser_never_raises(text: str) -> None:
    metrics = _parse_card(text)
    assert isinstance(metrics, dict)
    for label, table in metrics.items():
        assert len(label) <= 40 and all(isinstance(v, str) for v in table.values())


SAFE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]*$")


@budget(500)
@given(
    st.one_of(st.text(max_size=80), st.sampled_from(["..", "../x", "a/b", "a\\b", ".", "x\x00"])),
    st.one_of(st.text(max_size=80), st.sampled_from(["..", "1/../2", "1..2", "/1", "1\n"])),
)
def test_release_names_that_pass_are_safe_path_segments(name: str, version: str) -> None:
    try:
        check_name_version(name, version)
    except DockgateError as exc:
        assert exc.code is ErrorCode.CONFIG_INVALID
        return
    for part in (name, version):
        assert SAFE.match(part) and ".." not in part and "/" not in part, part


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner),
    max_leaves=30,
)
_DIRECTIVE_KEYS = st.fixed_dictionaries(
    {},
    optional={
        "device_id": _JSON,
        "assignments": st.lists(
            st.dictionaries(
                st.sampled_from(["name", "version", "target", "sha256", "size", "mode"]), _JSON
            ),
            max_size=20,
        ),
        "poll_after_s": _JSON,
        "etag": _JSON,
    },
)


@pytest.mark.slow
@budget(100)
@given(st.one_of(st.binary(max_size=500), _DIRECTIVE_KEYS.map(lambda d: json.dumps(d).encode())))
def test_ota_directive_from_the_cloud_is_parsed_or_refused_with_a_code(content: bytes) -> None:
    from ota.link import parse_directive

    try:
        directive = parse_directive(content)
    except DockgateError as exc:
        assert exc.code is ErrorCode.SYNC_REJECTED
        return
    assert 0.5 <= directive.poll_after_s <= 86400 and len(directive.assignments) <= 16
