"""The whole config file: one section per component, and the checks that span sections."""

from __future__ import annotations

from pydantic import Field, model_validator

from streamer.config.base import ConfigModel
from streamer.config.character import CharacterConfig
from streamer.config.chat import ChatConfig, ModerationRulesConfig
from streamer.config.director import DirectorConfig
from streamer.config.obs import ObsConfig
from streamer.config.outputs import OutputsConfig
from streamer.config.panel import PanelConfig
from streamer.config.show import AudioConfig, ShowConfig, VideoConfig


class StagecastConfig(ConfigModel):
    video: VideoConfig = Field(default_factory=VideoConfig)
    audio: AudioConfig = Field(default_factory=AudioConfig)
    show: ShowConfig = Field(default_factory=ShowConfig)
    character: CharacterConfig = Field(default_factory=CharacterConfig)
    chat: ChatConfig = Field(default_factory=ChatConfig)
    moderation: ModerationRulesConfig = Field(default_factory=ModerationRulesConfig)
    director: DirectorConfig = Field(default_factory=DirectorConfig)
    outputs: OutputsConfig = Field(default_factory=OutputsConfig)
    panel: PanelConfig = Field(default_factory=PanelConfig)
    obs: ObsConfig = Field(default_factory=ObsConfig)

    @model_validator(mode="after")
    def _samples_per_frame_is_integer(self) -> StagecastConfig:
        if self.audio.sample_rate % self.video.fps:
            raise ValueError(
                f"audio.sample_rate ({self.audio.sample_rate}) / video.fps ({self.video.fps}) must be an "
                "integer so every frame carries a whole number of samples (e.g. 48000 with 24, 25, 30, 50, 60)"
            )
        keyframe_frames = self.outputs.encoder.keyframe_s * self.video.fps
        if abs(keyframe_frames - round(keyframe_frames)) > 1e-9:
            raise ValueError("outputs.encoder.keyframe_s × video.fps must be a whole number of frames")
        return self

    @property
    def samples_per_frame(self) -> int:
        return self.audio.sample_rate // self.video.fps
