"""What the device tells the cloud about one model with each heartbeat (edge side)."""

from __future__ import annotations

from collections.abc import Mapping

from edge.contracts.ota import ModelFigures, ModelReport, RefusedRelease
from ota.swap import SlotStore
from ota.updater import UpdateOutcome


def model_report(
    store: SlotStore,
    outcome: UpdateOutcome | None = None,
    figures: Mapping[str, ModelFigures] | None = None,
) -> ModelReport:
    """Durable slot state (+ the last cycle's code and this window's figures per version)."""
    active, previous = store.read()
    return ModelReport(
        name=store.name,
        running=active.version if active else None,
        previous=previous.version if previous else None,
        on_probation=store.probation() is not None,
        refused=[RefusedRelease.model_validate(r) for r in store.refused()],
        last_code=outcome.code if outcome else None,
        figures=dict(figures or {}),
    )
