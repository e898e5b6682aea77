"""Build the engine parts of a show from config (shared by `run`, `render` and the benchmarks)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import torch

from engine.animator import Animator
from engine.brain.base import Brain
from engine.brain.persona import Persona
from engine.brain.scripted import ScriptedBrain
from engine.clock import ShowClock, StreamClock, TimeBase
from engine.memory import Memory, MemoryLimits
from engine.render.base import Renderer
from engine.render.procedural.look import load_look
from engine.render.procedural.renderer import ProceduralRenderer
from engine.timeline import Timeline
from engine.voice.base import Voice
from engine.voice.espeak import EspeakVoice
from engine.voice.router import LanguageRouter
from streamer.config import CharacterConfig, StagecastConfig
from streamer.moderation import Moderator
from streamer.outputs.encoder import EncoderSettings


@dataclass
class EngineParts:
    timebase: TimeBase
    timeline: Timeline
    clock: StreamClock  # stream time: frames pulled from the timeline over the frame rate
    animator: Animator
    renderer: Renderer
    voice: Voice
    brain: Brain
    moderator: Moderator
    memory: Memory | None = None

    def prewarm(self) -> None:
        """Load the voices' front-ends and the renderer's program (offline renders; the show does this
        through its lifecycle)."""
        self.voice.prewarm()
        self.renderer.prewarm()

    def close(self) -> None:
        """Release what prewarm took (offline renders; never called inside an event loop)."""
        async def close_all() -> None:
            await self.renderer.aclose()
            await self.voice.aclose()

        asyncio.run(close_all())


def configure_torch_threads(threads: int | None = None) -> None:
    """Leave a core for the encoder: on small machines torch's default oversubscribes."""
    cores = os.cpu_count() or 2
    torch.set_num_threads(threads or max(1, cores // 2 if cores <= 4 else cores - 2))


def build_voice(character: CharacterConfig, sample_rate: int) -> Voice:
    """espeak always (it also times the neural voices); other voices per language on top."""
    espeak = EspeakVoice(sample_rate=sample_rate, voices=character.voices or None,
                         rate_wpm=character.speech_rate_wpm, pitch=character.pitch)
    wanted = dict.fromkeys(("en", "zh", "ja"), character.voice) | character.voice_by_language
    if set(wanted.values()) == {"espeak"}:
        return LanguageRouter({}, default=espeak)  # espeak for every language; mixed lines still go run by run
    built: dict[str, Voice] = {"espeak": espeak}

    def make(name: str) -> Voice:
        if name not in built:
            if name == "piper":
                from engine.voice.piper import PiperVoice

                p = character.piper
                built[name] = PiperVoice(sample_rate, model_path=p.model_path, config_path=p.config_path,
                                         package=p.package, languages=tuple(p.languages),
                                         length_scale=p.length_scale, timing_voice=espeak)
            elif name == "kokoro-ja":
                from engine.voice.kokoro import KokoroJaVoice

                built[name] = KokoroJaVoice(sample_rate, character.kokoro_ja.voice, character.kokoro_ja.speed,
                                            timing_voice=espeak)
            elif name == "coqui":
                from engine.voice.coqui import CoquiXttsVoice

                assert character.coqui is not None
                c = character.coqui
                built[name] = CoquiXttsVoice(c.model_dir, c.speaker_wav, sample_rate, c.device, timing_voice=espeak)
        return built[name]

    return LanguageRouter({lang: make(name) for lang, name in wanted.items()}, default=espeak)


def build_renderer(config: StagecastConfig) -> Renderer:
    """The character's appearance. Live2D runs in its own process; it is never imported here."""
    w, h = config.video.width, config.video.height
    if config.character.appearance == "live2d":
        from engine.render.live2d.renderer import Live2DRenderer, settings_from_mapping

        settings = settings_from_mapping(config.character.live2d or {})
        settings.fps = config.video.fps
        return Live2DRenderer(w, h, settings)
    if config.character.appearance == "sprites":
        from engine.render.sprites.renderer import SpritesRenderer

        return SpritesRenderer(w, h, config.character.sprite_pack())
    look = load_look(config.character.look)  # validated (and its path resolved) by the config loader
    if config.character.runtime == "torch":
        return ProceduralRenderer(w, h, look)
    from engine.render.procedural.runtimes import select_renderer

    return select_renderer(config.character.runtime, w, h, look)


def build_brain(character: CharacterConfig, memory: Memory | None) -> Brain:
    if character.brain == "scripted":
        return ScriptedBrain(character.name)
    persona = Persona.load(character.persona) if character.persona else Persona(name=character.name)
    context = memory.context_for if memory is not None else None
    if character.brain == "openai":
        from engine.brain.openai_compat import OpenAICompatBrain

        o = character.openai
        llm = OpenAICompatBrain(o.base_url, o.model, api_key_env=o.api_key_env, persona=persona, context=context,
                                temperature=o.temperature, max_tokens=o.max_tokens, timeout_s=o.timeout_s,
                                connect_timeout_s=o.connect_timeout_s, read_timeout_s=o.read_timeout_s,
                                system_mode=o.system_mode, history_tokens=o.history_tokens,
                                summary_tokens=o.summary_tokens, first_token_s=o.first_token_s,
                                first_token_per_1k_s=o.first_token_per_1k_s, max_first_token_s=o.max_first_token_s,
                                between_tokens_s=o.between_tokens_s, idle_wait_s=o.idle_wait_s)
        if not o.fallback:
            return llm
        from engine.brain.fallback import FallbackBrain

        return FallbackBrain(llm, ScriptedBrain(character.name), degrade_after=o.degrade_after,
                             recheck_s=o.recheck_s, name=f"LLM at {o.base_url}")
    from engine.brain.llama_local import LlamaLocalBrain

    ll = character.llama
    return LlamaLocalBrain(ll.model_path, model_package=ll.model_package, persona=persona, context=context,
                           temperature=ll.temperature, max_tokens=ll.max_tokens, n_ctx=ll.n_ctx,
                           n_threads=ll.n_threads)


def build_engine(config: StagecastConfig, seed: int | None = None, with_memory: bool = False) -> EngineParts:
    """`with_memory` opens the SQLite memory (the live show); offline renders stay stateless."""
    timebase = config.timebase
    character = config.character
    memory = None
    if with_memory and character.memory.enabled:
        m = character.memory
        memory = Memory(m.path, MemoryLimits(window_turns=m.window_turns, max_summaries=m.max_summaries,
                                             max_viewers=m.max_viewers, max_bytes=m.max_bytes))
    timeline = Timeline(timebase)
    clock = ShowClock(timeline)
    return EngineParts(
        timebase=timebase,
        timeline=timeline,
        clock=clock,
        animator=Animator(timebase.fps, seed=config.show.seed if seed is None else seed),
        renderer=build_renderer(config),
        voice=build_voice(character, timebase.sample_rate),
        brain=build_brain(character, memory),
        moderator=Moderator(rules=config.moderation, clock=clock),
        memory=memory,
    )


def encoder_settings(config: StagecastConfig) -> EncoderSettings:
    enc = config.outputs.encoder
    return EncoderSettings(
        width=config.video.width,
        height=config.video.height,
        timebase=config.timebase,
        video_codec=enc.video_codec,
        preset=enc.preset,
        tune=enc.tune,
        video_bitrate_kbps=enc.video_bitrate_kbps,
        audio_bitrate_kbps=enc.audio_bitrate_kbps,
        keyframe_seconds=enc.keyframe_s,
    )
