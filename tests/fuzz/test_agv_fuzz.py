"""Fuzzing VDA 5050 input (edge/agv): what AGVs publish reaches ``Dispatcher.on_message``.

Random bytes, random JSON, deep nesting and mutated valid state/connection/factsheet messages
go through the same path as MQTT, with the official schemas and with the models alone.
Criterion: ``on_message`` never raises; a bad message is counted and ``AGV_MESSAGE_INVALID``
logged; a valid one is applied.
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.agv.config import AgvConfig
from edge.agv.dispatcher import Dispatcher
from edge.agv.messages import header
from edge.agv.sim import factsheet
from edge.agv.sim_vehicle import Vehicle
from edge.agv.sitemap import load_sitemap
from edge.agv.store import TaskStore
from edge.agv.validation import MessageValidator
from tests.agv.helpers import SITEMAP
from tests.fuzz.budget import budget

MAP = load_sitemap(SITEMAP)
TOPIC = "uagv/v2/acme/agv-01/"
SUBTOPICS = ["state", "connection", "factsheet", "visualization", "order", "bogus"]


class NullLink:
    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> bool:
        return True


def _vehicle() -> Vehicle:
    node = MAP.nodes["P03"]
    return Vehicle("acme", "agv-01", MAP.map_id, "P03", node.x, node.y, speed=5, action_s=0.2)


VALID: dict[str, dict[str, Any]] = {
    "state": _vehicle().state(1),
    "connection": {**header(0, "acme", "agv-01"), "connectionState": "ONLINE"},
    "factsheet": factsheet(_vehicle()),
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)


def _mutate(doc: Any, data: st.DataObject, depth: int = 0) -> Any:
    """Replace, drop or retype one value somewhere in ``doc``."""
    if isinstance(doc, dict) and doc and depth < 6:
        key = data.draw(st.sampled_from(sorted(doc)))
        op = data.draw(st.sampled_from(["recurse", "recurse", "drop", "replace"]))
        if op == "drop":
            del doc[key]
        elif op == "replace":
            doc[key] = data.draw(json_values)
        else:
            doc[key] = _mutate(doc[key], data, depth + 1)
        return doc
    if isinstance(doc, list) and doc and depth < 6:
        i = data.draw(st.integers(0, len(doc) - 1))
        doc[i] = _mutate(doc[i], data, depth + 1)
        return doc
    return data.draw(json_values)


@pytest.fixture(scope="module", params=["schemas", "models"])
def dispatcher(request: pytest.FixtureRequest, vda5050_dir: Path) -> Iterator[Dispatcher]:
    schemas = vda5050_dir if request.param == "schemas" else None
    with tempfile.TemporaryDirectory() as tmp:
        store = TaskStore(Path(tmp) / "dispatch.db")
        d = Dispatcher(AgvConfig(), MAP, store, NullLink(), MessageValidator(schemas), lambda: 0.0)
        d.on_link(True)
        yield d


@budget(100)
@given(st.sampled_from(SUBTOPICS), st.binary(max_size=300))
def test_random_bytes(dispatcher: Dispatcher, sub: str, payload: bytes) -> None:
    before = dispatcher.counters.invalid_messages
    dispatcher.on_message(TOPIC + sub, payload)
    assert dispatcher.counters.invalid_messages >= before


@budget(150)
@given(st.sampled_from(SUBTOPICS), json_values)
def test_random_json(dispatcher: Dispatcher, sub: str, doc: Any) -> None:
    dispatcher.on_message(TOPIC + sub, json.dumps(doc).encode())


@budget(200)
@given(st.sampled_from(sorted(VALID)), st.data())
def test_mutated_valid_messages(dispatcher: Dispatcher, sub: str, data: st.DataObject) -> None:
    doc = copy.deepcopy(VALID[sub])
    for _ in range(data.draw(st.integers(1, 4))):
        doc = _mutate(doc, data)
    dispatcher.on_message(TOPIC + sub, json.dumps(doc).encode())


@pytest.mark.parametrize("depth", [100, 5_000, 200_000])
def test_deeply_nested_json_is_a_clear_invalid_message(dispatcher: Dispatcher, depth: int) -> None:
    """A JSON bomb of nested arrays must be refused as invalid, not escape as RecursionError."""
    before = dispatcher.counters.invalid_messages
    dispatcher.on_message(TOPIC + "state", b"[" * depth + b"]" * depth)
    dispatcher.on_message(TOPIC + "state", b'{"a":' * depth + b"1" + b"}" * depth)
    assert dispatcher.counters.invalid_messages == before + 2
