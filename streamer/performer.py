"""The performer: one turn from text to the timeline.

brain -> sentences -> emotion tags -> output moderation -> voice -> schedule. Speech starts while
the brain still writes: each sentence is voiced in a worker thread and scheduled as soon as it is
ready. The live director and `stagecast render` both perform turns through this class, so an
offline render tests the code that goes on air.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator

from engine.brain.base import Brain, BrainError, HistoryEntry
from engine.brain.chunking import SentenceChunker
from engine.brain.tags import split_emotion_tags
from engine.timeline import Timeline
from engine.voice.base import Speech, Voice
from streamer.events import HealthStatus
from streamer.health import HealthBoard
from streamer.moderation import Moderator
from streamer.turns import Turn, TurnStatus
from streamer.workers import DaemonExecutor

log = logging.getLogger("stagecast.performer")


class BrainTimeout(BrainError):
    """The brain produced nothing for too long; the turn is dropped."""


class BrainFailure(RuntimeError):
    """The brain failed mid-turn (an expected failure: one log line). What was already scheduled plays
    on, followed by the cover line, if any."""


class VoiceFailure(RuntimeError):
    """The voice raised or did not finish a sentence in time; the turn is dropped."""


class Performer:
    def __init__(self, timeline: Timeline, brain: Brain, voice: Voice, moderator: Moderator, health: HealthBoard,
                 brain_timeout_s: float = 20.0, voice_timeout_s: float = 10.0, max_reply_s: float = 30.0) -> None:
        self.timeline = timeline
        self.brain = brain
        self.voice = voice
        self.moderator = moderator
        self.health = health
        self.brain_timeout_s = brain_timeout_s
        self.voice_timeout_s = voice_timeout_s
        self.max_reply_s = max_reply_s
        self.speech_latencies: deque[float] = deque(maxlen=100)  # ms from turn start to first scheduled audio
        self._executor = DaemonExecutor("voice")  # a hung voice never holds up the process's exit

    async def perform(self, turn: Turn, history: list[HistoryEntry], at_frame: int | None = None) -> None:
        """Put the whole turn on the timeline (from `at_frame` at the earliest); returns once it is all
        scheduled, not when it has played. Raises BrainTimeout / VoiceFailure."""
        turn.set_status(TurnStatus.THINKING)
        turn.started = time.monotonic()
        if turn.emotion is not None:
            self.timeline.add_emotion(turn.emotion, at_frame=at_frame)
        try:
            # aclosing: cancelled mid-sentence (an interrupt while voicing), the brain's stream closes now,
            # not whenever the garbage collector finds the suspended generator
            async with contextlib.aclosing(self._sentences(turn, history)) as sentences:
                async for sentence in sentences:
                    if not await self._speak(turn, sentence, at_frame):
                        break
            if turn.status == TurnStatus.INTERRUPTED:  # its cancel was swallowed (e.g. by a brain library)
                return
        except BrainError as exc:  # the sentence on air plays to its end; a line covers the rest
            self.health.report("brain", HealthStatus.DEGRADED, f"turn {turn.id}: {exc}")
            cover = getattr(self.brain, "cover_line", None)
            line = cover(turn.prompt.language) if cover is not None else None
            if line and turn.status != TurnStatus.INTERRUPTED:
                count = len(turn.scheduled)
                await self._speak(turn, line, at_frame)
                turn.cover = turn.scheduled[-1] if len(turn.scheduled) > count else None
            turn.composed.set()
            raise BrainFailure(str(exc)) from exc
        turn.composed.set()

    async def _speak(self, turn: Turn, sentence: str, at_frame: int | None) -> bool:
        """Moderate, voice and schedule one sentence; False when the turn must stop here."""
        cues, text = split_emotion_tags(sentence)
        decision = self.moderator.check_output(text)
        if not decision.accepted:
            return True
        speech = await self._synthesize(decision.text, turn.prompt.language)
        if speech.samples == 0:
            return True
        planned = sum(s.speech.samples for s in turn.scheduled) + speech.samples
        if planned > self.max_reply_s * speech.sample_rate:
            log.info("turn %s: reply longer than %.0f s; the rest is not spoken", turn.id, self.max_reply_s)
            return False
        if turn.status == TurnStatus.INTERRUPTED:  # its cancel was swallowed (e.g. by a brain library)
            return False
        item = self.timeline.schedule(speech, at_frame=at_frame, turn_id=turn.id)
        for cue in cues:
            self.timeline.add_emotion(cue, at_frame=item.start_frame)
        if not turn.scheduled:
            self.speech_latencies.append((time.monotonic() - turn.started) * 1000)
        turn.scheduled.append(item)
        turn.set_status(TurnStatus.SPEAKING)
        turn.speaking.set()
        return True

    async def _sentences(self, turn: Turn, history: list[HistoryEntry]) -> AsyncGenerator[str, None]:
        chunker = SentenceChunker(language=turn.prompt.language)
        if turn.verbatim:
            for sentence in chunker.feed(turn.prompt.text) + chunker.flush():
                yield sentence
            return
        # a brain with its own deadlines (first token scaled by prompt size) may wait longer than the guard
        guard = max(self.brain_timeout_s, float(getattr(self.brain, "max_wait_s", 0.0)) + 1.0)
        # aclosing: leaving early (interrupt, failure) closes the brain's stream, e.g. its HTTP response
        async with contextlib.aclosing(self.brain.reply(turn.prompt, history)) as stream:
            while True:
                try:  # a brain that hangs must not hold the show: each piece has a deadline
                    async with asyncio.timeout(guard):  # not wait_for: see _synthesize
                        piece = await anext(stream)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise BrainTimeout(f"no text from the brain for {guard:.0f} s") from None
                for sentence in chunker.feed(piece):
                    yield sentence
        self.health.report("brain", HealthStatus.OK)
        for sentence in chunker.flush():
            yield sentence

    async def _synthesize(self, text: str, language: str) -> Speech:
        """Voice in a worker thread with a deadline; a hung voice gets a fresh worker next time."""
        future = asyncio.get_running_loop().run_in_executor(self._executor, self.voice.synthesize, text, language)
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns the result and drops an
            # interrupt's cancel when both land in the same tick, and the turn would speak on
            async with asyncio.timeout(self.voice_timeout_s):
                speech = await future
        except TimeoutError:
            self._executor.shutdown(wait=False)  # abandon the stuck thread
            self._executor = DaemonExecutor("voice")
            raise VoiceFailure(f"the voice took longer than {self.voice_timeout_s:.0f} s") from None
        except Exception as exc:
            raise VoiceFailure(f"{type(exc).__name__}: {exc}") from exc
        self.health.report("voice", HealthStatus.OK)
        return speech

    async def settle(self) -> None:
        """Wait for a sentence still being voiced (e.g. by an interrupted turn) to finish."""
        await asyncio.get_running_loop().run_in_executor(self._executor, lambda: None)

    def close(self) -> None:
        """Stop the voice worker without waiting for a sentence in progress."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def join_spoken(pieces: list[str], language: str) -> str:
    """Sentences as heard: CJK joins without spaces."""
    return ("" if language in ("zh", "ja") else " ").join(pieces)
