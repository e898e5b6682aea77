"""The listener: a co-host's voice in, turns and barge-in out, and the character visibly listening.

An attachment of the show. For every input: voice activity detection (Silero, on a worker thread per
input) splits the audio into utterances; while someone speaks the character listens (mouth closed,
nods at pauses, brows with the loudness), and their words are recognised as they speak (Whisper, on
one shared worker thread) so little is left to decode when they stop. Speech confirmed while the
character speaks cuts it off through the moderator's interrupt. When the speaker stops, the
character thinks until its reply's first audio; the final transcript goes through input moderation
and becomes a turn ranked above chat.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.lifecycle import cancel_and_wait
from engine.listen.asr import Utterance, WhisperRecognizer
from engine.listen.vad import Level, Pause, SileroVad, SpeechEnd, SpeechStart, VadSegmenter
from engine.listening import ListenCue
from engine.logtext import untrusted
from streamer.config import ListenConfig
from streamer.control import ShowControl
from streamer.events import BargeIn, HealthStatus, Heard, ListeningChanged
from streamer.listen.echo import EchoGuard
from streamer.listen.inputs import RATE, AudioInput, BrowserInput, InputError, make_input
from streamer.workers import DaemonExecutor

log = logging.getLogger("stagecast.listen")

LOUDNESS_EVERY_S = 0.1
RECENT_S = 2.0  # input audio kept for the echo guard and the utterance's pre-roll
PREROLL = RATE // 4  # Whisper misses a first word cut at its onset: utterances start 250 ms before it


def loudness(rms_db: float) -> float:
    """-60 dBFS (quiet room) .. -10 dBFS (loud voice) as 0..1."""
    return float(min(1.0, max(0.0, (rms_db + 60.0) / 50.0)))


@dataclass
class Channel:
    """One input and what it is hearing now."""

    input: AudioInput
    segmenter: VadSegmenter
    vad_worker: DaemonExecutor
    samples: int = 0  # received so far
    recent: deque[np.ndarray] = field(default_factory=deque)
    recent_samples: int = 0
    utterance: Utterance | None = None
    utterances: int = 0
    onset: int = 0  # sample where the current utterance's speech began
    first: int = 0  # the utterance's first sample (the pre-roll before the onset)
    echo: bool = False  # the current utterance is the character's own voice
    interrupted: bool = False
    decoding: asyncio.Task[Any] | None = None
    partial_wanted: bool = False  # a pause came while a partial was decoding: decode again right after it
    last_partial: int = 0
    level: float = 0.0
    last_level_sent: float = 0.0
    state: str = "idle"

    @property
    def name(self) -> str:
        return self.input.name

    def keep(self, pcm: np.ndarray) -> None:
        self.recent.append(pcm)
        self.recent_samples += pcm.shape[0]
        while self.recent and self.recent_samples - self.recent[0].shape[0] >= RECENT_S * RATE:
            self.recent_samples -= self.recent.popleft().shape[0]

    def heard(self) -> np.ndarray:
        return np.concatenate(list(self.recent)) if self.recent else np.zeros(0, np.float32)


class Listener:
    """An attachment (see streamer.show.Attachment): `Show.attach(Listener(config.listen))`."""

    name = "listen"

    def __init__(self, config: ListenConfig, recognizer: WhisperRecognizer | None = None) -> None:
        self.config = config
        asr = config.asr
        self.recognizer = recognizer or WhisperRecognizer(asr.model, compute_type=asr.compute_type,
                                                          cpu_threads=asr.cpu_threads, languages=tuple(asr.languages))
        self.inputs = [make_input(c) for c in config.inputs]
        self._asr_worker = DaemonExecutor("listen-asr")
        self._channels: list[Channel] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._control: ShowControl | None = None
        self._guard: EchoGuard | None = None
        self.barge_ins = 0
        self.echo_utterances = 0

    async def start(self, control: ShowControl) -> None:
        self._control = control
        self._guard = EchoGuard(control.timebase.sample_rate)
        await asyncio.to_thread(self.recognizer.prewarm)
        vad_cfg = self.config.vad
        for inp in self.inputs:
            vad = await asyncio.to_thread(SileroVad)
            segmenter = VadSegmenter(vad, start_ms=vad_cfg.start_ms, end_ms=vad_cfg.end_ms,
                                     threshold=vad_cfg.threshold, sample_rate=RATE)
            channel = Channel(inp, segmenter, DaemonExecutor(f"listen-vad-{inp.name}"))
            self._channels.append(channel)
            if isinstance(inp, BrowserInput):
                control.add_audio_input(inp)
            else:
                control.add_listen_input(inp.name, inp.speaker)
            self._tasks.append(asyncio.create_task(self._run(channel), name=f"listen:{inp.name}"))
        log.info("listening to %s", ", ".join(f"{i.name} ({i.kind}, {i.speaker})" for i in self.inputs) or "nothing")

    async def aclose(self) -> None:
        for channel in self._channels:
            channel.input.close()
        await cancel_and_wait(*self._tasks, *(c.decoding for c in self._channels))
        for channel in self._channels:
            channel.vad_worker.shutdown(wait=False, cancel_futures=True)
        self._asr_worker.shutdown(wait=False, cancel_futures=True)

    # ----- one input ----------------------------------------------------------------------------------
    async def _run(self, channel: Channel) -> None:
        control = self._ctl
        component = f"listen:{channel.name}"
        backoff = channel.input.backoff
        failing = False  # after a failure the input stays degraded until audio flows again
        control.report_health(component, HealthStatus.OK)
        while True:
            try:
                async for pcm in channel.input.chunks():
                    if failing:
                        failing = False
                        control.report_health(component, HealthStatus.OK)
                    await self._process(channel, pcm)
                log.info("%s: the input ended", channel.name)
                await self._end_utterance(channel, keep=True)
                return
            except asyncio.CancelledError:
                raise
            except InputError as exc:
                failing = True
                await self._end_utterance(channel, keep=False)
                control.report_health(component, HealthStatus.DEGRADED, str(exc))
                control.count_restart(component)
                delay = backoff.next_delay()
                log.warning("%s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
            except Exception as exc:
                failing = True
                await self._end_utterance(channel, keep=False)
                log.exception("%s: listening failed; restarting", channel.name)
                control.report_health(component, HealthStatus.DEGRADED, f"{type(exc).__name__}: {exc}")
                control.count_restart(component)
                await asyncio.sleep(2.0)

    @property
    def _ctl(self) -> ShowControl:
        assert self._control is not None, "the listener is not started"
        return self._control

    def _deaf(self, channel: Channel) -> bool:
        switches = self._ctl.listen_switches
        return not (self.config.enabled and switches.enabled) or channel.name in switches.muted

    async def _process(self, channel: Channel, pcm: np.ndarray) -> None:
        if self._deaf(channel):
            if channel.utterance is not None:
                await self._end_utterance(channel, keep=False)
            channel.samples += pcm.shape[0]
            return
        channel.keep(pcm)
        loop = asyncio.get_running_loop()
        events = await loop.run_in_executor(channel.vad_worker, channel.segmenter.feed, pcm)
        channel.samples += pcm.shape[0]
        if channel.utterance is not None:
            channel.utterance.feed(pcm)
        for event in events:
            if isinstance(event, SpeechStart):
                self._speech_started(channel, event.sample)
            elif isinstance(event, Pause) and channel.utterance is not None and not channel.echo:
                self._ctl.listen_cue(ListenCue.paused())
                self._start_partial(channel, at_pause=True)  # a pause may be the end: decode what came so far
            elif isinstance(event, Level):
                channel.level = 0.7 * channel.level + 0.3 * loudness(event.rms_db)
            elif isinstance(event, SpeechEnd):
                now = time.time()
                ended = now - (channel.samples - event.sample) / RATE
                await self._end_utterance(channel, keep=True, end=event.sample, ended=(ended, now))
        if channel.utterance is not None:
            self._while_speaking(channel)

    # ----- an utterance ---------------------------------------------------------------------------------
    def _speech_started(self, channel: Channel, onset: int) -> None:
        control = self._ctl
        channel.utterances += 1
        channel.utterance = self.recognizer.utterance()
        preroll = self._since(channel, onset - PREROLL)
        channel.utterance.feed(preroll)
        channel.first = channel.samples - preroll.shape[0]
        channel.onset, channel.interrupted, channel.last_partial = onset, False, channel.samples
        channel.echo = self._is_echo(channel)
        if channel.echo:
            self.echo_utterances += 1
            log.debug("%s: speech that is the character's own voice; not listening to it", channel.name)
            return
        self._set_state(channel, "listening")
        control.listen_cue(ListenCue.started(channel.level))

    def _start_partial(self, channel: Channel, at_pause: bool = False) -> None:
        if channel.utterance is None:
            return
        if channel.decoding is not None:
            channel.partial_wanted = channel.partial_wanted or at_pause
            return
        channel.last_partial, channel.partial_wanted = channel.samples, False
        channel.decoding = asyncio.create_task(self._partial(channel, channel.utterance, channel.utterances))

    def _since(self, channel: Channel, sample: int) -> np.ndarray:
        """The kept input audio from `sample` on (the utterance's start, before the VAD confirmed it)."""
        heard = channel.heard()
        start = heard.shape[0] - (channel.samples - sample)
        return heard[max(0, start):]

    def _is_echo(self, channel: Channel) -> bool:
        if channel.input.kind == "browser" or not self.config.echo_guard or self._guard is None:
            return False
        control = self._ctl
        if not control.is_speaking() and control.recent_output_audio(1.0).std() < 1e-4:
            return False  # the character is silent: nothing to echo
        return self._guard.is_echo(channel.heard(), control.recent_output_audio(self._guard.window_s + 1.0))

    def _while_speaking(self, channel: Channel) -> None:
        control = self._ctl
        if channel.echo:
            if channel.samples - channel.last_partial >= RATE // 2:  # look again: a co-host may talk over it
                channel.last_partial = channel.samples
                channel.echo = self._is_echo(channel)
                if not channel.echo:
                    self._set_state(channel, "listening")
                    control.listen_cue(ListenCue.started(channel.level))
            return
        spoken_ms = (channel.samples - channel.onset) * 1000 / RATE
        barge = self.config.barge_in
        if not channel.interrupted and barge != "never" and (barge == "always" or spoken_ms >= barge):
            channel.interrupted = True
            if control.is_speaking():
                result = control.interrupt()
                self.barge_ins += 1
                latency = (channel.samples - channel.onset) * 1000 / RATE
                log.info("%s: barge-in %.0f ms after speech onset; heard %s", channel.name, latency,
                         untrusted(" / ".join(result.heard)))
                control.publish(BargeIn(channel.name, channel.input.speaker, latency, result.heard, result.cut_frame))
        now = time.monotonic()
        if now - channel.last_level_sent >= LOUDNESS_EVERY_S:
            channel.last_level_sent = now
            control.listen_cue(ListenCue.level(channel.level))
        if channel.samples - channel.last_partial >= int(self.config.asr.partial_every_s * RATE):
            self._start_partial(channel)

    async def _partial(self, channel: Channel, utterance: Utterance | None, number: int) -> None:
        try:
            if utterance is None:
                return
            transcript = await asyncio.get_running_loop().run_in_executor(self._asr_worker, utterance.partial)
            if transcript is not None and transcript.text and channel.utterance is utterance:
                self._ctl.publish(Heard(channel.name, channel.input.speaker, number, transcript.text,
                                              transcript.language, True, transcript.audio_s,
                                              transcript.decode_s * 1000))
        finally:
            channel.decoding = None
            if channel.partial_wanted and channel.utterance is utterance:
                self._start_partial(channel)  # the pause's audio, so the final can reuse this decode

    async def _end_utterance(self, channel: Channel, keep: bool, end: int | None = None,
                             ended: tuple[float, float] | None = None) -> None:
        """The speaker stopped at sample `end` (keep: recognise and answer) or listening stopped (drop it)."""
        utterance, channel.utterance = channel.utterance, None
        if utterance is None:
            return
        control = self._ctl
        if channel.echo or not keep:
            self._set_state(channel, "idle")
            if not channel.echo:
                control.listen_cue(ListenCue.stopped())
            return
        self._set_state(channel, "thinking")
        control.listen_cue(ListenCue.stopped(think=True))
        channel.partial_wanted = False  # the final decodes what is left
        if channel.decoding is not None:
            await asyncio.gather(channel.decoding, return_exceptions=True)
        loop = asyncio.get_running_loop()
        within = None if end is None else max(0, end - channel.first)
        transcript = await loop.run_in_executor(self._asr_worker, utterance.final, within)
        text = transcript.text.strip()
        control.publish(Heard(channel.name, channel.input.speaker, channel.utterances, text,
                              transcript.language, False, transcript.audio_s, transcript.decode_s * 1000,
                              *(ended or (None, None))))
        log.info("%s heard from %s (%s, %.1f s, decoded in %.0f ms): %s", channel.name, channel.input.speaker,
                 transcript.language, transcript.audio_s, transcript.decode_s * 1000, untrusted(text))
        accepted = bool(text) and control.submit_voice(text, channel.input.speaker, transcript.language,
                                                       channel.name).accepted
        if not accepted:  # nothing to answer: stop thinking
            control.listen_cue(ListenCue.stop_thinking())
        self._set_state(channel, "idle")

    def _set_state(self, channel: Channel, state: str) -> None:
        if state != channel.state:
            channel.state = state
            self._ctl.publish(ListeningChanged(channel.name, channel.input.speaker, state,
                                                         self._ctl.listen_switches.enabled))
