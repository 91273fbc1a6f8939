"""ComfyUI's video vocabulary (`Types.VideoCodec`, `Types.VideoContainer`, `Types.VideoComponents`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import Any


class _Names(str, Enum):
    @classmethod
    def as_input(cls) -> list[str]:
        """The names, as combo options."""
        return [member.value for member in cls]


class VideoCodec(_Names):
    AUTO = "auto"
    H264 = "h264"


class VideoContainer(_Names):
    AUTO = "auto"
    MP4 = "mp4"

    @classmethod
    def get_extension(cls, value: str | VideoContainer) -> str:
        """The file extension a container writes ("auto" writes MP4)."""
        return "mp4" if cls(value) in (cls.MP4, cls.AUTO) else ""


@dataclass
class VideoComponents:
    """A video as its parts: frames [B, H, W, C], frame rate, optional audio and metadata."""

    images: Any
    frame_rate: Fraction
    audio: dict | None = None
    metadata: dict | None = None
