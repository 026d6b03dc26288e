"""The site map: nodes with poses, edges, storage locations and the quarantine zone.

Loaded from TOML or JSON (see ``fixtures/agv/sitemap.toml``). Shortest paths use Dijkstra over
edge lengths (the Euclidean distance of the two nodes unless an edge gives its own length).
Edges are two-way unless marked ``one_way``.
"""

from __future__ import annotations

import heapq
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.contracts.errors import DockgateError, ErrorCode

ID = r"^[A-Za-z0-9_.:-]{1,64}$"
QUARANTINE = "quarantine"  # the to_location meaning "any free quarantine location"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MapNode(_Strict):
    id: str = Field(pattern=ID, description="VDA 5050 nodeId")
    x: float = Field(description="metres in the map frame")
    y: float = Field(description="metres in the map frame")
    theta: float = Field(0.0, ge=-math.pi, le=math.pi, description="heading in radians")


class MapEdge(_Strict):
    id: str = Field(pattern=ID, description="VDA 5050 edgeId")
    start: str = Field(pattern=ID, description="start node id")
    end: str = Field(pattern=ID, description="end node id")
    length: float | None = Field(None, gt=0, description="metres; default: straight line")
    one_way: bool = Field(False, description="only from start to end")
    max_speed: float | None = Field(None, gt=0, description="m/s limit sent with the edge")


class SiteMapFile(_Strict):
    map_id: str = Field(pattern=ID, description="VDA 5050 mapId of every node")
    nodes: list[MapNode] = Field(min_length=1)
    edges: list[MapEdge] = Field(default_factory=list)
    locations: dict[str, str] = Field(
        default_factory=dict, description="storage location -> node where the AGV drops"
    )
    zones: dict[str, list[str]] = Field(
        default_factory=dict, description="zone name -> its locations (FEFO zones, quarantine)"
    )
    quarantine_zone: str = Field("Q", description="zone for frozen or unidentified cartons")
    parking: list[str] = Field(default_factory=list, description="nodes where idle AGVs start")


@dataclass(frozen=True)
class Hop:
    """One step of a route: the edge taken and the node reached."""

    edge: MapEdge
    node: str


@dataclass
class SiteMap:
    """A validated site map with adjacency lists for path search."""

    spec: SiteMapFile
    nodes: dict[str, MapNode] = field(init=False)
    _out: dict[str, list[tuple[float, MapEdge, str]]] = field(init=False)
    _in: dict[str, list[tuple[float, MapEdge, str]]] = field(init=False)

    def __post_init__(self) -> None:
        self.nodes = {n.id: n for n in self.spec.nodes}
        self._out = {n: [] for n in self.nodes}
        self._in = {n: [] for n in self.nodes}
        for e in self.spec.edges:
            for end in (e.start, e.end):
                if end not in self.nodes:
                    raise _bad(f"edge {e.id} names unknown node {end}")
            length = e.length or math.dist(self._xy(e.start), self._xy(e.end))
            self._link(e.start, e.end, length, e)
            if not e.one_way:
                self._link(e.end, e.start, length, e)
        for loc, node in self.spec.locations.items():
            if node not in self.nodes:
                raise _bad(f"location {loc} names unknown node {node}")
        for zone, locs in self.spec.zones.items():
            for loc in locs:
                if loc not in self.spec.locations:
                    raise _bad(f"zone {zone} names unknown location {loc}")
        if self.spec.quarantine_zone not in self.spec.zones:
            raise _bad(f"quarantine zone {self.spec.quarantine_zone} is not among the zones")
        for node in self.spec.parking:
            if node not in self.nodes:
                raise _bad(f"parking names unknown node {node}")

    @property
    def map_id(self) -> str:
        return self.spec.map_id

    def _xy(self, node: str) -> tuple[float, float]:
        n = self.nodes[node]
        return (n.x, n.y)

    def _link(self, a: str, b: str, length: float, edge: MapEdge) -> None:
        self._out[a].append((length, edge, b))
        self._in[b].append((length, edge, a))

    def location_node(self, location: str) -> str:
        """The node for a storage location; ``quarantine`` means the zone's first location."""
        if location == QUARANTINE:
            location = self.spec.zones[self.spec.quarantine_zone][0]
        node = self.spec.locations.get(location)
        if node is None:
            if location in self.nodes:
                return location
            raise DockgateError(
                ErrorCode.AGV_ROUTE_UNKNOWN, f"location {location!r} is not on the site map"
            )
        return node

    def distances_to(self, target: str) -> dict[str, float]:
        """Shortest distance from every node that can reach ``target`` (Dijkstra, reversed)."""
        return _dijkstra(self._in, target)[0]

    def route(self, start: str, goal: str) -> list[Hop]:
        """Shortest path as hops; empty when ``start == goal``; raises when unreachable."""
        for n in (start, goal):
            if n not in self.nodes:
                raise DockgateError(ErrorCode.AGV_ROUTE_UNKNOWN, f"node {n!r} is not on the map")
        dist, prev = _dijkstra(self._out, start, goal)
        if goal not in dist:
            raise DockgateError(ErrorCode.AGV_ROUTE_UNKNOWN, f"no path from {start} to {goal}")
        hops: list[Hop] = []
        node = goal
        while node != start:
            edge, before = prev[node]
            hops.append(Hop(edge, node))
            node = before
        hops.reverse()
        return hops


def _dijkstra(
    adj: dict[str, list[tuple[float, MapEdge, str]]], source: str, goal: str | None = None
) -> tuple[dict[str, float], dict[str, tuple[MapEdge, str]]]:
    dist = {source: 0.0}
    prev: dict[str, tuple[MapEdge, str]] = {}
    heap = [(0.0, source)]
    done: set[str] = set()
    while heap:
        d, node = heapq.heappop(heap)
        if node in done:
            continue
        done.add(node)
        if node == goal:
            break
        for length, edge, nxt in adj[node]:
            nd = d + length
            if nd < dist.get(nxt, math.inf):
                dist[nxt] = nd
                prev[nxt] = (edge, node)
                heapq.heappush(heap, (nd, nxt))
    return dist, prev


def _bad(message: str) -> DockgateError:
    return DockgateError(ErrorCode.CONFIG_INVALID, f"site map: {message}")


def load_sitemap(path: Path) -> SiteMap:
    """Read a ``.toml`` or ``.json`` site map; raises ``CONFIG_INVALID`` with one line."""
    try:
        raw = path.read_bytes()
        data: Any = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw)
    except (OSError, ValueError) as exc:
        raise _bad(f"{path}: {exc}") from None
    try:
        return SiteMap(SiteMapFile.model_validate(data))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _bad(f"{path}: {where}: {first['msg']}") from None
