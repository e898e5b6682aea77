"""Show configuration: YAML validated into pydantic models, one model per component.

`load_config` / `parse_config` read a file into `StagecastConfig`; each section's model lives in
the module of its concern (show, character, chat, director, outputs, obs, panel, listen).
"""

from streamer.config.base import ConfigError, ConfigModel
from streamer.config.character import (
    CharacterConfig,
    CoquiVoiceConfig,
    KokoroJaVoiceConfig,
    LlamaBrainConfig,
    MemoryConfig,
    OpenAIBrainConfig,
    PiperVoiceConfig,
    VoiceName,
)
from streamer.config.chat import (
    BackoffConfig,
    ChatConfig,
    ChatSourceConfig,
    LocalSourceConfig,
    ModerationRulesConfig,
    ReplaySourceConfig,
    ReplyPolicyConfig,
    TwitchSourceConfig,
    YouTubeSourceConfig,
)
from streamer.config.director import DirectorConfig
from streamer.config.listen import (
    AsrConfig,
    BrowserInputConfig,
    DeviceInputConfig,
    InputConfig,
    ListenConfig,
    StreamInputConfig,
    VadConfig,
)
from streamer.config.loader import load_config, parse_config
from streamer.config.obs import ObsConfig, ObsOverlayConfig
from streamer.config.outputs import (
    EncoderConfig,
    OutputsConfig,
    RecordingConfig,
    RtmpConfig,
    UdpConfig,
    VirtualCameraConfig,
)
from streamer.config.panel import PanelConfig
from streamer.config.show import AudioConfig, ShowConfig, VideoConfig
from streamer.config.stagecast import StagecastConfig

__all__ = [
    "AsrConfig",
    "AudioConfig",
    "BackoffConfig",
    "BrowserInputConfig",
    "CharacterConfig",
    "ChatConfig",
    "ChatSourceConfig",
    "ConfigError",
    "ConfigModel",
    "CoquiVoiceConfig",
    "DeviceInputConfig",
    "DirectorConfig",
    "EncoderConfig",
    "InputConfig",
    "KokoroJaVoiceConfig",
    "ListenConfig",
    "LlamaBrainConfig",
    "LocalSourceConfig",
    "MemoryConfig",
    "ModerationRulesConfig",
    "ObsConfig",
    "ObsOverlayConfig",
    "OpenAIBrainConfig",
    "OutputsConfig",
    "PanelConfig",
    "PiperVoiceConfig",
    "RecordingConfig",
    "ReplaySourceConfig",
    "ReplyPolicyConfig",
    "RtmpConfig",
    "ShowConfig",
    "StagecastConfig",
    "StreamInputConfig",
    "TwitchSourceConfig",
    "UdpConfig",
    "VadConfig",
    "VideoConfig",
    "VirtualCameraConfig",
    "VoiceName",
    "YouTubeSourceConfig",
    "load_config",
    "parse_config",
]
