"""Configuration of the gate pipeline (kept free of heavy imports: config checks load it)."""

from __future__ import annotations

from pydantic import Field

from edge.contracts.settings import StrictModel


class GateConfig(StrictModel):
    """Where cartons go and how they are booked."""

    node: str = Field("GATE", min_length=1, max_length=40, description="site-map node of the gate")
    inbound_location: str = Field(
        "INBOUND", min_length=1, max_length=40, description="ledger location of the inbound dock"
    )
    receipt_unit: str | None = Field(
        "CS", max_length=10, description="unit one carton is booked in (None = base unit)"
    )
    chute_putaway: int = Field(1, ge=1, le=64, description="PLC chute towards AGV pickup")
    chute_quarantine: int = Field(2, ge=1, le=64, description="PLC chute towards quarantine")
    deadline_ms: float = Field(
        1500,
        gt=0,
        le=60000,
        description="a carton not decided this long after it was seen "
        "is diverted to the manual lane (PLC reject, chute 0)",
    )


class PipelineConfig(StrictModel):
    trigger: str = Field(
        "presence",
        pattern="^(presence|file|photo-eye)$",
        description="how cartons are found: presence (camera), file (one image = one carton), "
        "photo-eye (PLC trigger)",
    )
    photo_eye: str = Field(
        "scan",
        min_length=1,
        max_length=40,
        description="photo-eye trigger: the PLC input (line_io register map name) at the camera",
    )
    photo_eye_delay_ms: float = Field(
        0, ge=0, le=10000, description="photo-eye trigger: from the beam break to the first frame"
    )
    inference_queue: int = Field(4, ge=1, le=256, description="cartons waiting for inference")
    booking_queue: int = Field(64, ge=1, le=4096, description="cartons waiting for booking")
    frames_per_carton: int = Field(
        3, ge=1, le=12, description="frames kept per carton (up to the middle one of its passage)"
    )
    latency_target_ms: float = Field(
        250,
        ge=0,
        le=60000,
        description="camera-to-booking target: frames beyond the middle one are fused only "
        "while they fit before it (0 = always fuse every kept frame)",
    )
    presence_threshold: float = Field(
        18.0, gt=0, le=255, description="thumbnail difference from the empty belt that means carton"
    )
