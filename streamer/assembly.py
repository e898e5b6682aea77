"""Build the engine parts of a show from config (shared by `run` and `render`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.animator import Animator
from engine.brain.scripted import ScriptedBrain
from engine.clock import TimeBase
from engine.render.procedural import ProceduralRenderer
from engine.timeline import Timeline
from engine.voice.espeak import EspeakVoice
from streamer.config import StagecastConfig
from streamer.moderation import Moderator
from streamer.outputs.encoder import EncoderSettings


@dataclass
class EngineParts:
    timebase: TimeBase
    timeline: Timeline
    animator: Animator
    renderer: ProceduralRenderer
    voice: EspeakVoice
    brain: ScriptedBrain
    moderator: Moderator


def configure_torch_threads(threads: int | None = None) -> None:
    """Leave a core for the encoder: on small machines torch's default oversubscribes."""
    import os

    cores = os.cpu_count() or 2
    torch.set_num_threads(threads or max(1, cores // 2 if cores <= 4 else cores - 2))


def build_engine(config: StagecastConfig, seed: int | None = None) -> EngineParts:
    timebase = TimeBase(config.video.fps, config.audio.sample_rate)
    character = config.character
    voice = EspeakVoice(
        sample_rate=timebase.sample_rate,
        voices=character.voices or None,
        rate_wpm=character.speech_rate_wpm,
        pitch=character.pitch,
    )
    return EngineParts(
        timebase=timebase,
        timeline=Timeline(timebase),
        animator=Animator(timebase.fps, seed=config.show.seed if seed is None else seed),
        renderer=ProceduralRenderer(config.video.width, config.video.height),
        voice=voice,
        brain=ScriptedBrain(character.name),
        moderator=Moderator(rules=config.moderation),
    )


def encoder_settings(config: StagecastConfig) -> EncoderSettings:
    enc = config.outputs.encoder
    return EncoderSettings(
        width=config.video.width,
        height=config.video.height,
        fps=config.video.fps,
        sample_rate=config.audio.sample_rate,
        video_codec=enc.video_codec,
        preset=enc.preset,
        tune=enc.tune,
        video_bitrate_kbps=enc.video_bitrate_kbps,
        audio_bitrate_kbps=enc.audio_bitrate_kbps,
        keyframe_seconds=enc.keyframe_s,
    )
