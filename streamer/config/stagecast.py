"""The whole config file: one section per component, and the checks that span sections."""

from __future__ import annotations

from pydantic import Field, model_validator

from engine.clock import TimeBase
from streamer.config.base import ConfigModel
from streamer.config.character import CharacterConfig
from streamer.config.chat import ChatConfig, ModerationRulesConfig
from streamer.config.director import DirectorConfig
from streamer.config.listen import ListenConfig
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
    listen: ListenConfig = Field(default_factory=ListenConfig)

    @model_validator(mode="after")
    def _one_time_base(self) -> StagecastConfig:
        TimeBase(self.video.fps, self.audio.sample_rate)  # the R/F rule lives there
        keyframe_frames = self.outputs.encoder.keyframe_s * self.video.fps
        if abs(keyframe_frames - round(keyframe_frames)) > 1e-9:
            raise ValueError("outputs.encoder.keyframe_s × video.fps must be a whole number of frames")
        return self

    @property
    def timebase(self) -> TimeBase:
        return TimeBase(self.video.fps, self.audio.sample_rate)

    @property
    def samples_per_frame(self) -> int:
        return self.timebase.samples_per_frame
