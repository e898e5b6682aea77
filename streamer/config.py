"""Show configuration: YAML validated into pydantic models, one model per component.

Errors name the file, the key path and what was expected, because a streamer editing YAML at
2 a.m. needs to know exactly which line to fix. `${VAR}` in any string is replaced from the
environment so secrets never live in the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.render.procedural.look import LOOKS, load_look
from streamer.character_config import (
    CoquiVoiceConfig,
    KokoroJaVoiceConfig,
    LlamaBrainConfig,
    MemoryConfig,
    OpenAIBrainConfig,
    PiperVoiceConfig,
    VoiceName,
)
from streamer.chat.config import (
    ModerationRulesConfig,
    ReplyPolicyConfig,
    TwitchSourceConfig,
    YouTubeSourceConfig,
)
from streamer.obs import ObsConfig
from streamer.panel.settings import PanelConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"
DEMO_SPRITES = REPO_ROOT / "configs" / "characters" / "sprite-demo"  # character.sprites when none is given


class ConfigError(ValueError):
    """A config that cannot be used; the message is meant for the person who wrote it."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class VideoConfig(_Model):
    width: int = Field(1280, ge=64, le=7680, multiple_of=2)
    height: int = Field(720, ge=64, le=4320, multiple_of=2)
    fps: int = Field(30, ge=1, le=120)


class AudioConfig(_Model):
    sample_rate: int = Field(48000, ge=8000, le=192000)


class ShowConfig(_Model):
    mode: Literal["live", "virtual"] = "live"
    seed: int = 7
    duration_s: float | None = Field(None, gt=0, description="stop after this much stream time")


class CharacterConfig(_Model):
    name: str = "Aiko"
    appearance: Literal["procedural", "live2d", "sprites"] = "procedural"
    runtime: Literal["auto", "torch", "torch-inductor", "torch-cuda", "onnxruntime", "tensorrt"] = Field(
        "auto", description="procedural renderer runtime; auto falls back TensorRT -> CUDA -> compiled CPU (once "
        "`stagecast prepare` built it) -> traced CPU; torch-inductor compiles for this CPU (about 4x faster at 720p, "
        "needs g++, about a minute to build the first time, seconds after)")
    live2d: dict[str, Any] | None = Field(None, description="Live2D settings (model: path to .model3.json/.model.json)")
    sprites: Path | None = Field(None, description="sprite pack folder (rig.yaml + PNG parts) for appearance sprites; "
                                 "relative to the config file; default: the shipped configs/characters/sprite-demo")
    look: str | dict[str, Any] = Field(
        "default", description="procedural look: a preset (default, long, bob), a look YAML file, or fields + preset")
    brain: Literal["scripted", "openai", "llama"] = "scripted"
    voice: VoiceName = "espeak"
    voice_by_language: dict[str, VoiceName] = Field(default_factory=dict, description="e.g. {ja: kokoro-ja}")
    voices: dict[str, str] = Field(default_factory=dict, description="language -> espeak voice name")
    speech_rate_wpm: int = Field(165, ge=80, le=450)
    pitch: int = Field(50, ge=0, le=99)
    persona: Path | None = Field(None, description="persona YAML for the LLM brains (name, prompt, style, ...)")
    openai: OpenAIBrainConfig = Field(default_factory=OpenAIBrainConfig)
    llama: LlamaBrainConfig = Field(default_factory=LlamaBrainConfig)
    piper: PiperVoiceConfig = Field(default_factory=PiperVoiceConfig)
    kokoro_ja: KokoroJaVoiceConfig = Field(default_factory=KokoroJaVoiceConfig)
    coqui: CoquiVoiceConfig | None = None
    memory: MemoryConfig = Field(default_factory=MemoryConfig)

    def sprite_pack(self) -> Path:
        """The sprite pack folder for appearance sprites: `sprites`, or the shipped demo pack."""
        return self.sprites if self.sprites is not None else DEMO_SPRITES

    @field_validator("look")
    @classmethod
    def _look_is_valid(cls, look: str | dict[str, Any]) -> str | dict[str, Any]:
        if isinstance(look, dict) or look in LOOKS or not look.endswith((".yaml", ".yml")):
            load_look(look)  # a look file is checked once its path is resolved (parse_config)
        return look

    @model_validator(mode="after")
    def _backends_have_what_they_need(self) -> CharacterConfig:
        if self.brain == "llama" and not (self.llama.model_path or self.llama.model_package):
            raise ValueError("character.llama: the llama brain needs model_path or model_package")
        if self.appearance == "live2d" and not (self.live2d and self.live2d.get("model")):
            raise ValueError("character.live2d.model: the live2d appearance needs the path of your model")
        uses = {self.voice, *self.voice_by_language.values()}
        if "coqui" in uses and self.coqui is None:
            raise ValueError("character.coqui: the coqui voice needs model_dir and speaker_wav")
        return self


class ReplaySourceConfig(_Model):
    type: Literal["replay"]
    path: Path
    loop: bool = True
    loop_gap_s: float = Field(20.0, ge=0)


class LocalSourceConfig(_Model):
    type: Literal["local"]
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)


ChatSourceConfig = ReplaySourceConfig | LocalSourceConfig | TwitchSourceConfig | YouTubeSourceConfig


class ChatConfig(_Model):
    sources: list[ChatSourceConfig] = Field(default_factory=list)


class DirectorConfig(_Model):
    policy: ReplyPolicyConfig = Field(default_factory=ReplyPolicyConfig)
    cooldown_s: float = Field(1.0, ge=0, description="quiet seconds after a turn ends before the next starts "
                              "(a moderator's say-now and a co-host's voice do not wait)")
    queue_cap: int = Field(20, ge=1, description="turns waiting; over it the oldest of the least urgent is dropped")
    max_reply_s: float = Field(30.0, gt=0, description="a reply longer than this is cut")
    brain_timeout_s: float = Field(20.0, gt=0, description="a brain silent this long loses its turn")
    voice_timeout_s: float = Field(10.0, gt=0, description="a sentence not voiced in this time drops the turn")


class EncoderConfig(_Model):
    video_codec: str = "libx264"
    preset: str = "veryfast"
    tune: str | None = "zerolatency"
    video_bitrate_kbps: int = Field(2500, ge=100)
    audio_bitrate_kbps: int = Field(128, ge=32)
    keyframe_s: float = Field(2.0, gt=0)


class RecordingConfig(_Model):
    enabled: bool = True
    directory: Path = Path("recordings")
    prefix: str = "stagecast"
    segment_minutes: float = Field(10.0, gt=0)
    container: Literal["mkv", "mp4"] = "mkv"
    max_files: int | None = Field(None, ge=1)
    max_bytes: int | None = Field(None, ge=1)


class RtmpConfig(_Model):
    """An RTMP ingest (Twitch, YouTube, nginx-rtmp). The key comes from the environment."""

    url: str = Field(pattern=r"^rtmps?://", description="ingest URL without the stream key")
    stream_key_env: str | None = Field("STAGECAST_STREAM_KEY", description="env var holding the stream key")
    buffer_seconds: float = Field(10.0, gt=0)


class UdpConfig(_Model):
    """MPEG-TS for an OBS Media Source on this machine, e.g. udp://127.0.0.1:9000."""

    url: str = Field(pattern=r"^udp://")


class VirtualCameraConfig(_Model):
    enabled: bool = False
    device: str | None = None


class OutputsConfig(_Model):
    encoder: EncoderConfig = Field(default_factory=EncoderConfig)
    recording: RecordingConfig = Field(default_factory=RecordingConfig)
    rtmp: list[RtmpConfig] = Field(default_factory=list)
    udp: list[UdpConfig] = Field(default_factory=list)
    virtual_camera: VirtualCameraConfig = Field(default_factory=VirtualCameraConfig)


class StagecastConfig(_Model):
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


_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _substitute_env(value: Any, path: str, source: str) -> Any:
    """Replace ${VAR} / ${VAR:-default} in every string; a missing variable is an error naming it."""
    if isinstance(value, dict):
        return {k: _substitute_env(v, f"{path}.{k}" if path else str(k), source) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_env(v, f"{path}[{i}]", source) for i, v in enumerate(value)]
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{source}: {path}: environment variable {name} is not set")

        return _ENV_PATTERN.sub(repl, value)
    return value


def _format_errors(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"] if not str(p).startswith("function-after"))
        # Union members show up in the path ("replay", "local"); keep them, they say which shape failed.
        what = item["msg"]
        if item["type"] == "extra_forbidden":
            what = "unknown key (check the spelling; see configs/default.yaml for the known keys)"
        got = item.get("input")
        got_text = "" if item["type"] == "extra_forbidden" or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {loc or '(top level)'}: {what}{got_text}")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<config>", base_dir: Path | None = None) -> StagecastConfig:
    """Validate already-loaded YAML data; relative paths are taken relative to `base_dir`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections, got {type(data).__name__}")
    data = _substitute_env(data, "", source)
    try:
        config = StagecastConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None
    if base_dir is not None:
        _resolve_paths(config, base_dir)
    if isinstance(config.character.look, str) and config.character.look not in LOOKS:
        try:
            load_look(config.character.look, base_dir)
        except ValueError as exc:
            raise ConfigError(f"{source}: invalid configuration\n  character.look: {exc}") from None
    pack = config.character.sprite_pack()
    if config.character.appearance == "sprites" and not (pack / "rig.yaml").is_file():
        raise ConfigError(f"{source}: invalid configuration\n  character.sprites: {pack} is not a sprite pack "
                          "(no rig.yaml there; see configs/characters/sprite-demo)")
    return config


def _resolve_paths(config: StagecastConfig, base_dir: Path) -> None:
    rec = config.outputs.recording
    if not rec.directory.is_absolute():
        rec.directory = (Path.cwd() / rec.directory).resolve()
    for src in config.chat.sources:
        if isinstance(src, ReplaySourceConfig) and not src.path.is_absolute():
            src.path = (base_dir / src.path).resolve()
    ch = config.character
    for holder, attr in ((ch, "persona"), (ch, "sprites"), (ch.llama, "model_path"), (ch.piper, "model_path"),
                         (ch.piper, "config_path"), (ch.coqui, "model_dir"), (ch.coqui, "speaker_wav")):
        value = getattr(holder, attr, None) if holder is not None else None
        if value is not None and not value.is_absolute():
            setattr(holder, attr, (base_dir / value).resolve())
    if isinstance(ch.look, str) and ch.look not in LOOKS and not Path(ch.look).is_absolute():
        ch.look = str((base_dir / ch.look).resolve())
    if ch.live2d and isinstance(ch.live2d.get("model"), str) and not Path(ch.live2d["model"]).is_absolute():
        ch.live2d["model"] = str((base_dir / ch.live2d["model"]).resolve())
    if not ch.memory.path.is_absolute():
        ch.memory.path = (Path.cwd() / ch.memory.path).resolve()
    if config.panel.db_path is not None and not config.panel.db_path.is_absolute():
        config.panel.db_path = (base_dir / config.panel.db_path).resolve()


def load_config(path: Path | str | None = None) -> StagecastConfig:
    """Load a YAML file (default: configs/default.yaml, else the embedded defaults)."""
    if path is None:
        if not DEFAULT_CONFIG.exists():
            return parse_config({}, "<embedded defaults>", Path.cwd())
        path = DEFAULT_CONFIG
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    config = parse_config(data, str(path), path.resolve().parent)
    config.panel.config_path = path.resolve()  # the panel's admin "reload" re-reads this file
    return config
