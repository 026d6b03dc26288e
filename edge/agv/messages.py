"""VDA 5050 2.1 messages as pydantic models, topics and header helpers.

These models are Dockgate's own reading of the specification. They build every message the
master control sends, parse what AGVs send, and are the run-time validator when the official
JSON schemas are not installed (a user's plain clone). ``tests/agv/test_schemas.py`` keeps
them honest against the official schemas. Unknown extra fields are allowed, as in the schemas.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

VERSION = "2.1.0"
MAJOR = "v2"
SUBTOPICS = ("order", "instantActions", "state", "connection", "factsheet", "visualization")
UINT32 = 2**32 - 1
# RFC 3339 date-time as the schemas' ``format: date-time`` means it (offset required).
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
FINAL_ACTION = frozenset({"FINISHED", "FAILED"})
REJECTION_ERRORS = frozenset({"validationError", "orderError", "orderUpdateError", "noRouteError"})


def is_rfc3339(value: str) -> bool:
    if not _RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False
    return True


def now_timestamp() -> str:
    """ISO 8601 UTC with milliseconds and ``Z``, e.g. ``2026-11-22T05:10:09.123Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def topic(interface: str, manufacturer: str, serial: str, subtopic: str) -> str:
    return f"{interface}/{MAJOR}/{manufacturer}/{serial}/{subtopic}"


def split_topic(value: str) -> tuple[str, str, str, str] | None:
    """``(interface, manufacturer, serial, subtopic)`` or None when not a VDA 5050 v2 topic."""
    parts = value.split("/")
    if len(parts) != 5 or parts[1] != MAJOR or parts[4] not in SUBTOPICS:
        return None
    return parts[0], parts[2], parts[3], parts[4]


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True, strict=True
    )

    def wire(self) -> dict[str, Any]:
        """The JSON object as sent: camelCase, optional fields left out when unset."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class Header(Model):
    header_id: int = Field(ge=0, le=UINT32)
    timestamp: str
    version: str = Field(pattern=r"^2\.\d+\.\d+$")
    manufacturer: str
    serial_number: str

    @field_validator("timestamp")
    @classmethod
    def _timestamp(cls, value: str) -> str:
        if not is_rfc3339(value):
            raise ValueError("timestamp is not an ISO 8601 / RFC 3339 date-time")
        return value


class ActionParameter(Model):
    key: str
    value: Any


class Action(Model):
    action_type: str
    action_id: str
    action_description: str | None = None
    blocking_type: Literal["NONE", "SOFT", "HARD"]
    action_parameters: list[ActionParameter] | None = None


class NodePosition(Model):
    x: float
    y: float
    theta: float | None = Field(None, ge=-math.pi, le=math.pi)
    allowed_deviation_x_y: float | None = Field(None, alias="allowedDeviationXY", ge=0)
    allowed_deviation_theta: float | None = Field(None, ge=0, le=math.pi)
    map_id: str
    map_description: str | None = None


class Node(Model):
    node_id: str
    sequence_id: int = Field(ge=0)
    node_description: str | None = None
    released: bool
    node_position: NodePosition | None = None
    actions: list[Action]


class Edge(Model):
    edge_id: str
    sequence_id: int = Field(ge=0)
    edge_description: str | None = None
    released: bool
    start_node_id: str
    end_node_id: str
    max_speed: float | None = None
    length: float | None = None
    orientation_type: Literal["GLOBAL", "TANGENTIAL"] | None = None
    actions: list[Action]


class Order(Header):
    order_id: str
    order_update_id: int = Field(ge=0, le=UINT32)
    zone_set_id: str | None = None
    nodes: list[Node]
    edges: list[Edge]


class InstantActions(Header):
    actions: list[Action]


class Connection(Header):
    connection_state: Literal["ONLINE", "OFFLINE", "CONNECTIONBROKEN"]


class NodeState(Model):
    node_id: str
    sequence_id: int
    node_description: str | None = None
    released: bool
    node_position: NodePosition | None = None


class EdgeState(Model):
    edge_id: str
    sequence_id: int
    edge_description: str | None = None
    released: bool


class AgvPosition(Model):
    x: float
    y: float
    theta: float
    map_id: str
    map_description: str | None = None
    position_initialized: bool
    localization_score: float | None = Field(None, ge=0, le=1)
    deviation_range: float | None = None


class Velocity(Model):
    vx: float | None = None
    vy: float | None = None
    omega: float | None = None


class ActionState(Model):
    action_id: str
    action_type: str | None = None
    action_description: str | None = None
    # PAUSED is in the specification text (6.11) but missing from the 2.1.0 schema enum.
    action_status: Literal["WAITING", "INITIALIZING", "RUNNING", "PAUSED", "FINISHED", "FAILED"]
    result_description: str | None = None


class BatteryState(Model):
    battery_charge: float
    battery_voltage: float | None = None
    battery_health: float | None = Field(None, ge=0, le=100)
    charging: bool
    reach: float | None = Field(None, ge=0)


class ErrorReference(Model):
    reference_key: str
    reference_value: str


class AgvError(Model):
    error_type: str
    error_references: list[ErrorReference] | None = None
    error_description: str | None = None
    error_hint: str | None = None
    error_level: Literal["WARNING", "FATAL"]


class InfoReference(Model):
    reference_key: str
    reference_value: str


class Information(Model):
    info_type: str
    info_references: list[InfoReference] | None = None
    info_description: str | None = None
    info_level: Literal["INFO", "DEBUG"]


class SafetyState(Model):
    e_stop: Literal["AUTOACK", "MANUAL", "REMOTE", "NONE"]
    field_violation: bool


class State(Header):
    maps: list[dict[str, Any]] | None = None
    order_id: str
    order_update_id: int = Field(ge=0, le=UINT32)
    zone_set_id: str | None = None
    last_node_id: str
    last_node_sequence_id: int = Field(ge=0, le=UINT32)
    driving: bool
    paused: bool | None = None
    new_base_request: bool | None = None
    distance_since_last_node: float | None = None
    operating_mode: Literal["AUTOMATIC", "SEMIAUTOMATIC", "MANUAL", "SERVICE", "TEACHIN"]
    node_states: list[NodeState]
    edge_states: list[EdgeState]
    agv_position: AgvPosition | None = None
    velocity: Velocity | None = None
    loads: list[dict[str, Any]] | None = None
    action_states: list[ActionState]
    battery_state: BatteryState
    errors: list[AgvError]
    information: list[Information] | None = None
    safety_state: SafetyState

    def fatal_errors(self) -> list[AgvError]:
        return [e for e in self.errors if e.error_level == "FATAL"]

    def is_idle(self) -> bool:
        """No order left to drive and no action still open (spec figure 8, step 3)."""
        return (
            not self.node_states
            and not self.edge_states
            and all(a.action_status in FINAL_ACTION for a in self.action_states)
        )


class Factsheet(Model):
    # The factsheet header fields are optional in the 2.1.0 schema.
    header_id: int | None = Field(None, ge=0, le=UINT32)
    timestamp: str | None = None
    version: str
    manufacturer: str
    serial_number: str
    type_specification: dict[str, Any]
    physical_parameters: dict[str, Any]
    protocol_limits: dict[str, Any]
    protocol_features: dict[str, Any]
    agv_geometry: dict[str, Any]
    load_specification: dict[str, Any]
    vehicle_config: dict[str, Any] | None = None


class Visualization(Model):
    header_id: int | None = Field(None, ge=0, le=UINT32)
    timestamp: str | None = None
    version: str | None = None
    manufacturer: str | None = None
    serial_number: str | None = None
    agv_position: AgvPosition | None = None
    velocity: Velocity | None = None


MODELS: dict[str, type[Model]] = {
    "order": Order,
    "instantActions": InstantActions,
    "state": State,
    "connection": Connection,
    "factsheet": Factsheet,
    "visualization": Visualization,
}


def header(counter: int, manufacturer: str, serial: str) -> dict[str, Any]:
    """The flat header fields every message starts with."""
    return {
        "headerId": counter,
        "timestamp": now_timestamp(),
        "version": VERSION,
        "manufacturer": manufacturer,
        "serialNumber": serial,
    }
