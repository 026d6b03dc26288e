"""The official 2.1.0 schemas, our overlay of their known defects, and our own models."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from edge.agv.messages import MODELS, header
from edge.agv.orders import build_route, instant_body, last_base, order_body
from edge.agv.sim import factsheet
from edge.agv.sim_vehicle import Vehicle
from edge.agv.sitemap import load_sitemap
from edge.agv.validation import OVERLAY, MessageValidator, format_checker, load_schemas
from tests.agv.helpers import SITEMAP


def _vehicle() -> Vehicle:
    return Vehicle("acme", "agv-01", "dock-a", "P01", 1.0, 2.0)


def samples() -> dict[str, dict[str, Any]]:
    """One message of every type, built by the code that sends it."""
    m = load_sitemap(SITEMAP)
    route = build_route(m, "P01", "D1", "SA02")
    v = _vehicle()
    body = order_body(m, route, 0, last_base(len(route), 0, 3), "t.1", 0, "SSCC", "D1")
    order = {**header(7, "acme", "agv-01"), **body}
    v.accept_order(order)
    return {
        "order": order,
        "instantActions": {**header(1, "acme", "agv-01"), **instant_body("cancelOrder")[1]},
        "state": v.state(3),
        "connection": {**header(0, "acme", "agv-01"), "connectionState": "CONNECTIONBROKEN"},
        "factsheet": factsheet(v),
    }


def _official(vda5050_dir: Path, overlay: bool) -> dict[str, Draft202012Validator]:
    checker = format_checker()
    return {
        k: Draft202012Validator(s, format_checker=checker)
        for k, s in load_schemas(vda5050_dir, overlay=overlay).items()
    }


def test_official_schemas_are_draft_2020_12(vda5050_dir: Path) -> None:
    for name, schema in load_schemas(vda5050_dir, overlay=False).items():
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"].endswith("2020-12/schema"), name
    for patched in load_schemas(vda5050_dir).values():
        Draft202012Validator.check_schema(patched)


@pytest.mark.parametrize("kind", ["order", "instantActions", "state", "connection", "factsheet"])
def test_every_message_type_we_build_validates(vda5050_dir: Path, kind: str) -> None:
    message = samples()[kind]
    errors = list(_official(vda5050_dir, overlay=True)[kind].iter_errors(message))
    assert errors == []
    assert MessageValidator(vda5050_dir).reason(kind, message) is None
    assert MessageValidator(vda5050_dir, fast=False).reason(kind, message) is None
    assert MessageValidator(None).reason(kind, message) is None


def test_overlay_is_listed_and_each_patch_fixes_exactly_a_known_defect(vda5050_dir: Path) -> None:
    assert len(OVERLAY) == 5 and all(p.reason for p in OVERLAY)
    raw, patched = _official(vda5050_dir, False), _official(vda5050_dir, True)
    s = samples()
    paused = copy.deepcopy(s["state"])
    paused["actionStates"][0]["actionStatus"] = "PAUSED"
    assert not raw["state"].is_valid(paused) and patched["state"].is_valid(paused)
    # The factsheet we send fills blockingTypes, which the unpatched schema rejects.
    assert not raw["factsheet"].is_valid(s["factsheet"])
    assert patched["factsheet"].is_valid(s["factsheet"])
    env = copy.deepcopy(s["factsheet"])
    env["agvGeometry"] = {"envelopes3d": [{"set": "s", "format": "f", "description": "text"}]}
    assert not raw["factsheet"].is_valid(env) and patched["factsheet"].is_valid(env)
    neg = copy.deepcopy(s["order"])
    neg["nodes"][0]["nodePosition"]["allowedDeviationTheta"] = -0.5
    assert raw["order"].is_valid(neg) and not patched["order"].is_valid(neg)
    orient = copy.deepcopy(s["order"])
    orient["edges"][0]["orientationType"] = "SIDEWAYS"
    assert raw["order"].is_valid(orient) and not patched["order"].is_valid(orient)


def _mutations() -> list[tuple[str, str, Any]]:
    """(subtopic, json path, value): changes a validator must catch."""
    return [
        ("state", "batteryState.batteryCharge", "full"),
        ("state", "operatingMode", "AUTOPILOT"),
        ("state", "timestamp", "yesterday"),
        ("state", "headerId", "1"),
        ("state", "orderUpdateId", None),
        ("state", "errors", [{"errorType": "x", "errorLevel": "PANIC"}]),
        ("state", "safetyState.eStop", "MAYBE"),
        ("state", "actionStates", [{"actionId": "a", "actionStatus": "DONE"}]),
        ("connection", "connectionState", "DISCONNECTED"),
        ("order", "nodes", [{"nodeId": "A", "sequenceId": 0, "released": "yes", "actions": []}]),
        ("order", "orderUpdateId", "1"),
        ("instantActions", "actions", [{"actionType": "x", "actionId": "1", "blockingType": "?"}]),
        ("factsheet", "typeSpecification", None),
    ]  # fmt: skip


def _set(message: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(message)
    node = out
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[k]
    if value is None:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return out


@pytest.mark.parametrize(("kind", "path", "value"), _mutations())
def test_own_models_agree_with_the_official_schemas(
    vda5050_dir: Path, kind: str, path: str, value: Any
) -> None:
    bad = _set(samples()[kind], path, value)
    assert not _official(vda5050_dir, True)[kind].is_valid(bad)
    assert MessageValidator(None).reason(kind, bad) is not None, "models let through " + path
    assert MessageValidator(vda5050_dir).reason(kind, bad) is not None  # jsonschema-rs
    assert MessageValidator(vda5050_dir, fast=False).reason(kind, bad) is not None


def test_models_follow_the_text_where_the_schema_is_looser(vda5050_dir: Path) -> None:
    # The text makes headerId a uint32; the 2.1.0 state schema has no minimum. Expected exactly.
    negative = _set(samples()["state"], "headerId", -1)
    assert _official(vda5050_dir, True)["state"].is_valid(negative)
    assert "headerId" in (MessageValidator(vda5050_dir).reason("state", negative) or "")


def test_models_round_trip_to_identical_json() -> None:
    for kind, message in samples().items():
        parsed = MODELS[kind].model_validate(message)
        assert json.loads(json.dumps(parsed.wire())) == message, kind


def test_run_time_validator_uses_the_patched_schemas(vda5050_dir: Path) -> None:
    paused = copy.deepcopy(samples()["state"])
    paused["actionStates"][0]["actionStatus"] = "PAUSED"
    for fast in (True, False):
        v = MessageValidator(vda5050_dir, fast=fast)
        assert v.uses_schemas and v.reason("state", paused) is None


def test_without_schema_files_validation_falls_back_to_models(tmp_path: Path) -> None:
    v = MessageValidator(tmp_path)  # an empty directory, as on a user's plain clone
    assert not v.uses_schemas and "own models" in v.source
    assert v.reason("state", {"headerId": 1}) is not None
    assert v.reason("state", [1, 2]) == "not a JSON object"
