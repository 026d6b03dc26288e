"""Validate VDA 5050 messages: the official 2.1.0 JSON schemas when present, else our models.

The schema files are never copied into the repository: they are read from
``AgvConfig.resolved_schemas_dir()`` (``$DOCKGATE_VDA5050_SCHEMAS``, default ``../shared/vda5050``).
The 2.1.0 schemas have known defects, fixed upstream only on the 3.0 line; :data:`OVERLAY` lists
the patches applied here, each with its reason, so a specification-conformant message is not
rejected and a broken one is not accepted.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from pydantic import ValidationError

try:  # Rust validator: ~0.01 ms per state instead of ~4 ms, which matters on 2 cores
    import jsonschema_rs
except ImportError:  # pragma: no cover - the pure-Python validator does the same job
    jsonschema_rs = None  # type: ignore[assignment]

from edge.agv.messages import MODELS, SUBTOPICS, Model, is_rfc3339

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Patch:
    """Replace the value at ``pointer`` (RFC 6901) in ``schema`` by ``value``."""

    schema: str
    pointer: str
    value: Any
    reason: str


_ACTION_STATUS = ["WAITING", "INITIALIZING", "RUNNING", "PAUSED", "FINISHED", "FAILED"]
_BLOCKING_TYPES = {
    "type": "array",
    "description": "Array of possible blocking types for defined action.",
    "items": {"type": "string", "enum": ["NONE", "SOFT", "HARD"]},
}

OVERLAY: tuple[Patch, ...] = (
    Patch(
        "state",
        "/properties/actionStates/items/properties/actionStatus/enum",
        _ACTION_STATUS,
        "spec 6.11 lists PAUSED as an action status; the 2.1.0 enum lacks it",
    ),
    Patch(
        "factsheet",
        "/properties/protocolFeatures/properties/agvActions/items/properties/blockingTypes",
        _BLOCKING_TYPES,
        "the enum sits on the array instead of its items, so any filled factsheet fails",
    ),
    Patch(
        "factsheet",
        "/properties/agvGeometry/properties/envelopes3d/items/properties/description/type",
        "string",
        "free-text description is typed integer in 2.1.0",
    ),
    Patch(
        "order",
        "/properties/nodes/items/properties/nodePosition/properties/allowedDeviationTheta/minimum",
        0,
        "spec text: allowedDeviationTheta is in [0, pi]; the schema allows down to -pi",
    ),
    Patch(
        "order",
        "/properties/edges/items/properties/orientationType/enum",
        ["GLOBAL", "TANGENTIAL"],
        "spec text: orientationType is GLOBAL or TANGENTIAL; the schema takes any string",
    ),
)
# The connection schema's description says DISCONNECTED where the enum says OFFLINE: text only,
# no validation effect, so no patch.


def _resolve_parent(doc: Any, pointer: str) -> tuple[Any, str]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]
    node = doc
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node, parts[-1]


def apply_overlay(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A patched copy of one official schema (``name`` is the subtopic)."""
    patched = copy.deepcopy(schema)
    for patch in OVERLAY:
        if patch.schema != name:
            continue
        parent, key = _resolve_parent(patched, patch.pointer)
        parent[key] = copy.deepcopy(patch.value)
    return patched


def format_checker() -> FormatChecker:
    """A format checker that enforces ``date-time`` without the optional rfc3339 package."""
    checker = FormatChecker()
    checker.checks("date-time")(is_rfc3339)
    return checker


def load_schemas(directory: Path, overlay: bool = True) -> dict[str, dict[str, Any]]:
    """``{subtopic: schema}`` for every ``<subtopic>.schema`` found in ``directory``."""
    found: dict[str, dict[str, Any]] = {}
    for name in SUBTOPICS:
        path = directory / f"{name}.schema"
        if path.exists():
            raw = json.loads(path.read_text(encoding="utf-8"))
            found[name] = apply_overlay(name, raw) if overlay else raw
    return found


class MessageValidator:
    """Check one decoded message for one subtopic; returns None or the reason it is invalid."""

    def __init__(self, schemas_dir: Path | None, fast: bool = True) -> None:
        schemas = load_schemas(schemas_dir) if schemas_dir is not None else {}
        checker = format_checker()
        self._fast: dict[str, Any] = {}
        if fast and jsonschema_rs is not None:
            self._fast = {
                name: jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
                for name, schema in schemas.items()
            }
        self._validators = {
            name: Draft202012Validator(schema, format_checker=checker)
            for name, schema in schemas.items()
            if name not in self._fast
        }
        self.source = f"official schemas in {schemas_dir}" if schemas else "Dockgate's own models"

    @property
    def uses_schemas(self) -> bool:
        return bool(self._validators or self._fast)

    def reason(self, subtopic: str, message: Any) -> str | None:
        """None when ``message`` is a valid ``subtopic`` message, else why not (one line)."""
        return self.check(subtopic, message)[1]

    def check(self, subtopic: str, message: Any) -> tuple[Model | None, str | None]:
        """``(parsed model, None)`` or ``(None, reason)``: validate once, parse once."""
        if not isinstance(message, dict):
            return None, "not a JSON object"
        fast = self._fast.get(subtopic)
        if fast is not None:
            err = next(iter(fast.iter_errors(message)), None)
            if err is not None:
                where = "/".join(str(p) for p in err.instance_path) or "(root)"
                return None, f"{subtopic} schema: {where}: {err.message[:200]}"
        validator = self._validators.get(subtopic)
        if validator is not None:
            error = next(iter(validator.iter_errors(message)), None)
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "(root)"
                return None, f"{subtopic} schema: {where}: {error.message[:200]}"
        # Also after the schema: our models must accept what it accepts, and parsing types it.
        try:
            return MODELS[subtopic].model_validate(message), None
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = "/".join(str(p) for p in first["loc"]) or "(root)"
            return None, f"{subtopic} model: {where}: {first['msg']}"
