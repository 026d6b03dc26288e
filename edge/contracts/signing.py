"""The seam between what records results (ledger, vision) and what signs them (edge/trust).

The ledger calls a :class:`Signer` inside the transaction that writes an event, so the signed
envelope lands in the sync outbox atomically with the event. The trust package provides the real
implementation; a node that is not enrolled yet uses none and its outbox waits for enrollment.
"""

from __future__ import annotations

from typing import Any, Protocol


class Signer(Protocol):
    """Wraps an event in a signed envelope (compact JWS, see ``edge.contracts.envelope``)."""

    @property
    def device_id(self) -> str: ...

    def sign_event(self, event: dict[str, Any], *, model_version: str | None = None) -> str:
        """Return the envelope for one sealed event (as produced by ``Event.to_dict``)."""
        ...
