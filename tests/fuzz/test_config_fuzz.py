"""Fuzzing configuration files: edge (``load_edge_config``) and cloud (``load_cloud_config``).

Random bytes, random TOML, and TOML built from the real section and key names with values of
random type and size. Criterion: the file loads, or loading raises ``CONFIG_INVALID`` with ONE
line (what an operator sees at start-up), never a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import tempfile
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from cloud.config import CloudConfig, load_cloud_config
from edge.config import EdgeConfig, load_edge_config
from edge.contracts.errors import DockgateError, ErrorCode
from tests.fuzz.budget import budget

TMP = Path(tempfile.mkdtemp(prefix="dockgate-config-fuzz-"))


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return (
            "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
        )
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string
    if isinstance(v, dt.date | dt.datetime | dt.time):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def _toml(doc: dict[str, dict[str, Any]]) -> str:
    lines = []
    for section, table in doc.items():
        lines.append(f"[{json.dumps(section)}]")
        lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


scalars = (
    st.booleans()
    | st.integers()
    | st.integers(-10, 100_000)
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(["", "FULL", "NORMAL", "tcp", "rtu", "/dev/null", "../../etc", "\x00"])
    | st.dates()
    | st.datetimes(timezones=st.just(dt.UTC))
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _keys(model: type[BaseModel]) -> dict[str, list[str]]:
    """Section name -> the keys of its model(s), so random files hit real validators."""
    out: dict[str, list[str]] = {}
    for name, info in model.model_fields.items():
        keys: list[str] = []
        for t in (info.annotation, *typing.get_args(info.annotation)):
            if isinstance(t, type) and issubclass(t, BaseModel):
                keys += list(t.model_fields)
        out[name] = keys or ["x"]
    return out


def documents(model: type[BaseModel]) -> st.SearchStrategy[dict[str, dict[str, Any]]]:
    keys = _keys(model)

    def section(name: str) -> st.SearchStrategy[dict[str, Any]]:
        return st.dictionaries(
            st.sampled_from(keys[name]) | st.text(min_size=1, max_size=8), values, max_size=4
        )

    names = st.sampled_from(sorted(keys)) | st.text(min_size=1, max_size=8)
    return names.flatmap(lambda n: section(n) if n in keys else st.just({"k": 1})).flatmap(
        lambda _: st.lists(names, max_size=4, unique=True).flatmap(
            lambda ns: st.fixed_dictionaries(
                {n: section(n) if n in keys else values.map(lambda v: {"k": v}) for n in ns}
            )
        )
    )


def _check(load: Any, content: bytes) -> None:
    path = TMP / f"c-{os.getpid()}.toml"
    path.write_bytes(content)
    try:
        load(path)
    except DockgateError as exc:
        assert exc.code is ErrorCode.CONFIG_INVALID, exc
        assert "\n" not in exc.message, exc.message
        assert len(exc.message) < 2_000
        assert "Traceback" not in exc.message


@pytest.fixture(autouse=True, scope="module")
def _no_env_overrides() -> None:
    assert not [k for k in os.environ if k.startswith("DOCKGATE_")], "clear DOCKGATE_* first"


LOADERS = [(load_edge_config, EdgeConfig), (load_cloud_config, CloudConfig)]


@budget(150)
@given(st.sampled_from(LOADERS), st.data())
def test_structured_toml(loader: tuple[Any, type[BaseModel]], data: st.DataObject) -> None:
    load, model = loader
    doc = data.draw(documents(model))
    _check(load, _toml(doc).encode())


@budget(150)
@given(st.sampled_from(LOADERS), st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_random_bytes(loader: tuple[Any, type[BaseModel]], content: bytes) -> None:
    _check(loader[0], content)


@pytest.mark.parametrize("load", [load_edge_config, load_cloud_config])
def test_pathological_files(load: Any) -> None:
    for content in (
        b"a = " + b"[" * 5_000 + b"]" * 5_000,
        b"a = " + b"{b = " * 2_000 + b"1" + b"}" * 2_000,
        b"[ledger]\nmax_size_mb = " + b"9" * 5_000,
        b'[device]\nid = "' + b"a" * 1_000_000 + b'"',
        b"\xef\xbb\xbf[device]\n",  # UTF-8 BOM, as Windows Notepad saves
        b"\xff\xfe[\x00d\x00",  # UTF-16
    ):
        _check(load, content)
    with pytest.raises(DockgateError) as info:
        load(TMP / "missing.toml")
    assert info.value.code is ErrorCode.CONFIG_INVALID
    with pytest.raises(DockgateError) as info:
        load(TMP)  # a directory
    assert info.value.code is ErrorCode.CONFIG_INVALID
