"""The show's frame format and clock: video, audio and how the show runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from streamer.config.base import ConfigModel


class VideoConfig(ConfigModel):
    width: int = Field(1280, ge=64, le=7680, multiple_of=2)
    height: int = Field(720, ge=64, le=4320, multiple_of=2)
    fps: int = Field(30, ge=1, le=120)


class AudioConfig(ConfigModel):
    sample_rate: int = Field(48000, ge=8000, le=192000)


class ShowConfig(ConfigModel):
    mode: Literal["live", "virtual"] = "live"
    seed: int = 7
    duration_s: float | None = Field(None, gt=0, description="stop after this much stream time")
    frame_nice: int | None = Field(None, ge=-20, le=19, description="OS priority (nice) of the frame-loop thread, "
                                   "e.g. -5 when a local LLM shares the CPU (needs CAP_SYS_NICE; else start the "
                                   "LLM server with `nice -n 10`); None leaves it")
