"""Checks on what crossed the broker: schema conformance and the VDA 5050 counters/graph rules."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from edge.agv.messages import split_topic
from edge.agv.validation import format_checker, load_schemas
from tests.agv.helpers import Observer

MC_TOPICS = ("order", "instantActions")


def validators(schemas_dir: Path) -> dict[str, Draft202012Validator]:
    checker = format_checker()
    return {
        name: Draft202012Validator(schema, format_checker=checker)
        for name, schema in load_schemas(schemas_dir).items()
    }


def assert_conformant(observer: Observer, schemas_dir: Path) -> dict[str, int]:
    """Every VDA 5050 message seen validates; returns how many of each subtopic were seen."""
    checks = validators(schemas_dir)
    seen: dict[str, int] = defaultdict(int)
    last_hid: dict[tuple[str, str], int] = {}
    with observer.lock:
        messages = list(observer.messages)
    for m in messages:
        parts = split_topic(m.topic)
        if parts is None:
            continue
        _, manufacturer, serial, sub = parts
        body = m.json()
        errors = [e.message for e in checks[sub].iter_errors(body)]
        assert not errors, (m.topic, errors[:3], body)
        assert body["manufacturer"] == manufacturer and body["serialNumber"] == serial
        assert body["version"] == "2.1.0" and body["timestamp"].endswith("Z")
        assert m.qos == (1 if sub == "connection" else 0), (m.topic, m.qos)
        seen[sub] += 1
        if sub in ("order", "instantActions", "state") and not m.retain:
            key = (m.topic, sub)
            if key in last_hid:
                assert body["headerId"] == last_hid[key] + 1, (m.topic, last_hid[key], body)
            last_hid[key] = body["headerId"]
    return dict(seen)


def assert_order_rules(observer: Observer) -> int:
    """Graph rules per message, orderUpdateId +1 per update and stitching; returns #updates."""
    by_order: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in observer.of("order"):
        body = m.json()
        nodes, edges = body["nodes"], body["edges"]
        assert nodes and len(edges) == len(nodes) - 1
        items = [(n["sequenceId"], "n", n) for n in nodes]
        items += [(e["sequenceId"], "e", e) for e in edges]
        seqs = sorted(items, key=lambda t: t[0])
        first = seqs[0][0]
        for i, (seq, kind, _item) in enumerate(seqs):
            assert seq == first + i
            assert (seq % 2 == 0) == (kind == "n"), (seq, kind)
        released = [item["released"] for _, _, item in seqs]
        assert released == sorted(released, reverse=True), "released element after horizon"
        for i, e in enumerate(edges):
            assert e["startNodeId"] == nodes[i]["nodeId"]
            assert e["endNodeId"] == nodes[i + 1]["nodeId"]
        by_order[body["orderId"]].append(body)
    updates = 0
    for msgs in by_order.values():
        prev: dict[str, Any] | None = None
        for body in msgs:
            if prev is not None:
                assert body["orderUpdateId"] in (prev["orderUpdateId"], prev["orderUpdateId"] + 1)
                if body["orderUpdateId"] == prev["orderUpdateId"] + 1:
                    updates += 1
                    last_base = [n for n in prev["nodes"] if n["released"]][-1]
                    assert body["nodes"][0]["nodeId"] == last_base["nodeId"]
                    assert body["nodes"][0]["sequenceId"] == last_base["sequenceId"]
            else:
                assert body["orderUpdateId"] == 0 and body["nodes"][0]["sequenceId"] == 0
            prev = body
    return updates
