"""Camera source configuration: one ``[camera.source]`` table, picked by ``type``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from edge.contracts.settings import StrictModel


class UsbSource(StrictModel):
    type: Literal["usb"] = "usb"
    index: int = Field(0, ge=0, le=63, description="V4L2 device index (/dev/videoN)")


class UrlSource(StrictModel):
    type: Literal["url"] = "url"
    url: str = Field(
        ..., pattern=r"^(rtsp|rtsps|http|https)://", description="RTSP or HTTP(S) stream URL"
    )


class FileSource(StrictModel):
    type: Literal["file"] = "file"
    path: Path = Field(..., description="a video file")
    loop: bool = Field(False, description="start again at the end (demo and soak runs)")


class DirectorySource(StrictModel):
    type: Literal["directory"] = "directory"
    path: Path = Field(..., description="a folder of images, read in name order")
    loop: bool = Field(False, description="start again after the last image")
    fps: float = Field(
        0.0, ge=0, le=240, description="pace frames at this rate (0 = as fast as read)"
    )


SourceConfig = Annotated[
    UsbSource | UrlSource | FileSource | DirectorySource, Field(discriminator="type")
]


class CameraConfig(StrictModel):
    source: SourceConfig = Field(
        DirectorySource(path=Path("fixtures/samples/cartons")),
        description="where frames come from: usb | url | file | directory",
    )
    reconnect_max_s: float = Field(
        30.0, gt=0, le=600, description="longest wait between reconnect attempts after camera loss"
    )
    buffer_frames: int = Field(
        8, ge=1, le=256, description="frames held between capture and inference"
    )
