"""Configuration plumbing shared by edge and cloud: strict models and one-line errors.

Every node reads one TOML file, with environment-variable overrides
(``DOCKGATE_<SECTION>__<KEY>``), validated at start-up. A bad value stops start-up with one line
naming the key, the value and what is allowed, never a traceback.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from edge.contracts.errors import DockgateError, ErrorCode


class StrictModel(BaseModel):
    """Config section base: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeSettings(BaseSettings):
    """A node's whole configuration: ``DOCKGATE_<SECTION>__<KEY>`` variables override the file."""

    model_config = SettingsConfigDict(
        env_prefix="DOCKGATE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first: an operator's override beats the file (init = the file's values).
        return (env_settings, init_settings)


S = TypeVar("S", bound=BaseSettings)


def describe_validation_error(model: type[BaseModel], err: ValidationError) -> str:
    """One line for the first problem: ``key = value: what is wrong (what the key means)``."""
    first = err.errors(include_url=False)[0]
    loc = [str(part) for part in first["loc"]]
    key = ".".join(loc) or "(file)"
    if not key.isprintable():  # a quoted TOML key may hold a newline: keep ONE line
        key = repr(key)
    value = first.get("input")
    shown = "(missing)" if first["type"] == "missing" else repr(value)
    if len(shown) > 120:  # one readable line, even for a megabyte value
        shown = f"{shown[:100]}... ({len(shown)} characters)"
    hint = _field_description(model, loc)
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    tail = f" — {hint}" if hint else ""
    return f"{key} = {shown}: {first['msg']}{tail}{more}"


def _field_description(model: type[BaseModel], loc: list[str]) -> str:
    current: Any = model
    info = None
    for part in loc:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            break
        info = fields[part]
        current = info.annotation
    if info is None:
        return ""
    return info.description or info.title or ""


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML config file, turning every failure into ``CONFIG_INVALID``."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise DockgateError(ErrorCode.CONFIG_INVALID, f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise DockgateError(ErrorCode.CONFIG_INVALID, f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:  # e.g. saved as GBK or UTF-16 by a desktop editor
        raise DockgateError(
            ErrorCode.CONFIG_INVALID, f"{path}: not UTF-8 (save it as UTF-8): {exc.reason}"
        ) from None
    except ValueError as exc:  # tomllib lets int() fail on a number of over 4300 digits
        raise DockgateError(ErrorCode.CONFIG_INVALID, f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per nesting level ("a = [[[[...")
        raise DockgateError(
            ErrorCode.CONFIG_INVALID, f"{path}: not valid TOML: arrays or tables nested too deep"
        ) from None
    except OSError as exc:
        raise DockgateError(ErrorCode.CONFIG_INVALID, f"{path}: cannot read: {exc}") from None


def load_settings(model: type[S], path: Path | None) -> S:
    """Load ``model`` from an optional TOML file plus environment overrides.

    Environment variables win over the file. Raises :class:`DockgateError` with
    ``CONFIG_INVALID`` and a one-line message on any problem.
    """
    data = read_toml(path) if path is not None else {}
    try:
        return model(**data)
    except ValidationError as exc:
        where = f"{path}: " if path is not None else ""
        raise DockgateError(
            ErrorCode.CONFIG_INVALID, where + describe_validation_error(model, exc)
        ) from None
