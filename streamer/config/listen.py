"""Listening: where a co-host's voice comes in, how speech is detected and recognised, and when it
may cut the character off."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from streamer.config.base import ConfigModel
from streamer.config.chat import BackoffConfig

Language = Literal["en", "zh", "ja"]


def _all_languages() -> list[Language]:
    return ["en", "zh", "ja"]


class _Input(ConfigModel):
    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$",
                      description="the input's name (the co-host page picks an input by it)")
    speaker: str = Field(min_length=1, max_length=60, description="shown in history, captions and the panel")


class BrowserInputConfig(_Input):
    """The panel's co-host page (/cohost): the co-host's microphone, echo-cancelled by the browser."""

    type: Literal["browser"]


class StreamInputConfig(_Input):
    """Any audio FFmpeg reads (udp://, srt://, rtmp://, a file): an OBS audio output, a call bridge."""

    type: Literal["stream"]
    url: str = Field(min_length=1)
    format: str | None = Field(None, description="FFmpeg input format hint (e.g. mpegts); None probes")
    loop: bool = Field(False, description="a file starts again at its end (tests, rehearsals)")
    realtime: bool = Field(True, description="read a file at its own pace, as a live source would deliver it")
    backoff: BackoffConfig = Field(default_factory=lambda: BackoffConfig(initial_s=0.5, max_s=10.0))


class DeviceInputConfig(_Input):
    """A local capture device through sounddevice (pip install 'stagecast[mic]')."""

    type: Literal["device"]
    device: str | int | None = Field(None, description="a sounddevice name or index; None: the default input")


InputConfig = Annotated[BrowserInputConfig | StreamInputConfig | DeviceInputConfig, Field(discriminator="type")]


class VadConfig(ConfigModel):
    start_ms: int = Field(200, ge=32, le=2000, description="speech this long starts an utterance")
    end_ms: int = Field(500, ge=100, le=5000, description="silence this long ends it")
    threshold: float = Field(0.5, gt=0, lt=1, description="Silero speech probability that counts as speech")


class AsrConfig(ConfigModel):
    model: str = Field("base", description="a faster-whisper model folder, or `base` (shipped on PyPI)")
    compute_type: str = "int8"
    cpu_threads: int = Field(1, ge=1, le=16, description="threads for recognition (the frame loop keeps the rest)")
    languages: list[Language] = Field(default_factory=_all_languages)
    partial_every_s: float = Field(0.8, gt=0, description="decode the growing utterance this often while it lasts")


class ListenConfig(ConfigModel):
    enabled: bool = Field(True, description="listen to the inputs below (the panel can switch it off live)")
    inputs: list[InputConfig] = Field(default_factory=list)
    vad: VadConfig = Field(default_factory=VadConfig)
    asr: AsrConfig = Field(default_factory=AsrConfig)
    barge_in: Literal["always", "never"] | int = Field(
        "always", description="cut the character off when a co-host speaks: always, never, or after N ms of speech")
    echo_guard: bool = Field(True, description="stream and device inputs ignore the character's own voice")

    @field_validator("barge_in")
    @classmethod
    def _min_speech(cls, value: str | int) -> str | int:
        if isinstance(value, int) and not 0 <= value <= 10_000:
            raise ValueError("barge_in in ms must be within 0..10000")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> ListenConfig:
        names = [i.name for i in self.inputs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"listen.inputs: duplicate input name(s) {', '.join(duplicates)}")
        return self
