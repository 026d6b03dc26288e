"""Site map loading and shortest paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.agv.orders import build_route, last_base, order_body
from edge.agv.sitemap import load_sitemap
from edge.contracts.errors import DockgateError, ErrorCode
from tests.agv.helpers import SITEMAP


def test_example_map_loads_and_routes_shortest() -> None:
    m = load_sitemap(SITEMAP)
    assert m.map_id == "dock-a" and len(m.spec.parking) == 20
    hops = m.route("P03", "D1")
    assert [h.node for h in hops] == ["C02", "C01", "C00", "D1"]
    assert m.route("D1", "D1") == []
    assert m.location_node("A-03") == "SA03"
    assert m.location_node("quarantine") == "SQ1"
    # The ledger's built-in location codes (edge/ledger migrations) are on the example map.
    assert [m.location_node(c) for c in ("INBOUND", "QUARANTINE", "OUTBOUND")] == [
        "D1",
        "SQ1",
        "O1",
    ]
    d = m.distances_to("D1")
    assert d["D1"] == 0 and d["C00"] == pytest.approx(4.0) and d["P01"] > d["C00"]


def test_route_alternates_nodes_and_edges_and_marks_pick_and_drop() -> None:
    m = load_sitemap(SITEMAP)
    route = build_route(m, "P02", "D1", "SA01")
    assert route[0] == "P02" and route[-1] == "SA01"
    assert all(r in m.nodes for r in route[::2])
    assert all(r not in m.nodes for r in route[1::2])
    body = order_body(m, route, 0, last_base(len(route), 0, 3), "o1", 0, "SSCC", "D1")
    released = [n["released"] for n in body["nodes"]]
    assert released == [True, True, True] + [False] * (len(released) - 3)
    actions = {a["actionType"]: n["nodeId"] for n in body["nodes"] for a in n["actions"]}
    assert actions == {"pick": "D1", "drop": "SA01"}


def test_one_way_edges_and_unreachable_goals(tmp_path: Path) -> None:
    spec = {
        "map_id": "m",
        "nodes": [
            {"id": "A", "x": 0, "y": 0},
            {"id": "B", "x": 1, "y": 0},
            {"id": "Z", "x": 9, "y": 9},
        ],
        "edges": [{"id": "AB", "start": "A", "end": "B", "one_way": True}],
        "locations": {"L1": "B", "Q1": "Z"},
        "zones": {"Q": ["Q1"]},
    }  # fmt: skip
    path = tmp_path / "m.json"
    path.write_text(json.dumps(spec))
    m = load_sitemap(path)
    assert [h.node for h in m.route("A", "B")] == ["B"]
    for start, goal in (("B", "A"), ("A", "Z")):
        with pytest.raises(DockgateError) as err:
            m.route(start, goal)
        assert err.value.code is ErrorCode.AGV_ROUTE_UNKNOWN
    with pytest.raises(DockgateError) as err:
        m.location_node("X-99")
    assert err.value.code is ErrorCode.AGV_ROUTE_UNKNOWN


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"edges": [{"id": "e", "start": "A", "end": "nowhere"}]}, "unknown node nowhere"),
        ({"locations": {"L": "nowhere"}}, "unknown node nowhere"),
        ({"quarantine_zone": "QQ"}, "quarantine zone QQ"),
        ({"nodes": []}, "nodes"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_maps_are_one_line_config_errors(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    spec = {"map_id": "m", "nodes": [{"id": "A", "x": 0, "y": 0}], "zones": {"Q": []}, **change}
    path = tmp_path / "m.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(DockgateError) as err:
        load_sitemap(path)
    assert err.value.code is ErrorCode.CONFIG_INVALID and message in str(err.value)
    assert "\n" not in str(err.value)
