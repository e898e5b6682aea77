"""Where the show goes: the encoder, the recording, RTMP ingests, UDP for OBS, the virtual camera."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from streamer.config.base import ConfigModel


class EncoderConfig(ConfigModel):
    video_codec: str = "libx264"
    preset: str = "veryfast"
    tune: str | None = "zerolatency"
    video_bitrate_kbps: int = Field(2500, ge=100)
    audio_bitrate_kbps: int = Field(128, ge=32)
    keyframe_s: float = Field(2.0, gt=0)


class RecordingConfig(ConfigModel):
    enabled: bool = True
    directory: Path = Path("recordings")
    prefix: str = "stagecast"
    segment_minutes: float = Field(10.0, gt=0)
    container: Literal["mkv", "mp4"] = "mkv"
    max_files: int | None = Field(None, ge=1)
    max_bytes: int | None = Field(None, ge=1)


class RtmpConfig(ConfigModel):
    """An RTMP ingest (Twitch, YouTube, nginx-rtmp). The key comes from the environment."""

    url: str = Field(pattern=r"^rtmps?://", description="ingest URL without the stream key")
    stream_key_env: str | None = Field("STAGECAST_STREAM_KEY", description="env var holding the stream key")
    buffer_seconds: float = Field(10.0, gt=0)
    resume: Literal["live", "buffered"] = Field(
        "live", description="after an outage: 'live' starts again at the live edge; 'buffered' first sends "
                            "up to buffer_seconds of what the outage held back (viewers stay that far behind)")


class UdpConfig(ConfigModel):
    """MPEG-TS for an OBS Media Source on this machine, e.g. udp://127.0.0.1:9000."""

    url: str = Field(pattern=r"^udp://")


class VirtualCameraConfig(ConfigModel):
    enabled: bool = False
    device: str | None = None


class OutputsConfig(ConfigModel):
    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    recording: RecordingConfig = Field(default_factory=RecordingConfig)
    rtmp: list[RtmpConfig] = Field(default_factory=list)
    udp: list[UdpConfig] = Field(default_factory=list)
    virtual_camera: VirtualCameraConfig = Field(default_factory=VirtualCameraConfig)
