"""The director: decides what the character says next and carries out moderator commands.

Turns wait in a priority queue (mod say-now > paid > mentions > chat) with a cap and a cooldown.
One turn performs at a time: brain text is split into sentences, each moderated, voiced in a
worker thread and scheduled on the timeline while the next sentence is still being written.
Interrupt cancels the turn's task and cuts the timeline at the next frame; history keeps only
what viewers heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import IntEnum

from engine.brain.base import Brain, HistoryEntry, Prompt
from engine.brain.chunking import SentenceChunker
from engine.brain.tags import split_emotion_tags
from engine.events import EmotionCue, SpeechEnded
from engine.language import detect_language, reply_language
from engine.memory import Memory
from engine.timeline import ScheduledSpeech, Timeline
from engine.voice.base import Speech, Voice
from streamer.events import ChatMessage, HealthStatus
from streamer.moderation import Moderator

log = logging.getLogger("stagecast.director")


class BrainTimeout(RuntimeError):
    """The brain produced nothing for too long; the turn is dropped."""


class VoiceFailure(RuntimeError):
    """The voice raised or did not finish a sentence in time; the turn is dropped."""


class Priority(IntEnum):
    SAY = 0  # a moderator's say-now
    PAID = 1
    MENTION = 2
    CHAT = 3


@dataclass
class Turn:
    """A reply in the making: what it answers, how urgent it is, and how it ended."""

    id: str
    priority: Priority
    prompt: Prompt
    verbatim: bool = False  # say-now: speak the text as given, no brain
    emotion: EmotionCue | None = None
    status: str = "queued"  # queued, thinking, speaking, done, interrupted, skipped, failed
    played_text: str = ""
    created: float = field(default_factory=time.monotonic)
    started: float = 0.0  # monotonic time the director began performing it
    scheduled: list[ScheduledSpeech] = field(default_factory=list)
    done: asyncio.Future[Turn] | None = None
    speaking: asyncio.Event = field(default_factory=asyncio.Event)  # set when its first audio is scheduled


class Director:
    def __init__(
        self,
        timeline: Timeline,
        brain: Brain,
        voice: Voice,
        moderator: Moderator,
        character_name: str = "Aiko",
        cooldown_s: float = 1.0,
        queue_cap: int = 20,
        history_cap: int = 50,
        executor: Executor | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        memory: Memory | None = None,
        brain_timeout_s: float = 20.0,
        voice_timeout_s: float = 10.0,
        max_reply_s: float = 30.0,
        on_health: Callable[[str, HealthStatus, str], None] | None = None,
    ) -> None:
        self.timeline = timeline
        self.brain = brain
        self.voice = voice
        self.moderator = moderator
        self.character_name = character_name
        self.cooldown_s = cooldown_s
        self.queue_cap = queue_cap
        self.history: deque[HistoryEntry] = deque(maxlen=history_cap)
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="voice")
        self._queue: list[tuple[int, int, Turn]] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._wakeup = asyncio.Event()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self.current: Turn | None = None
        self._current_task: asyncio.Task[None] | None = None
        self.completed: deque[Turn] = deque(maxlen=100)  # the latest turns, for the panel
        self.finished: Counter[str] = Counter()  # every turn ever settled, by status (done, interrupted, ...)
        self.speech_latencies: deque[float] = deque(maxlen=100)  # ms from turn start to first scheduled audio
        self.dropped = 0
        # Cooldowns are measured on this clock: stream time in the show, so virtual mode behaves
        # like live mode at any speed.
        self._clock = clock
        self._sleep = sleep
        self.brain_timeout_s = brain_timeout_s
        self.voice_timeout_s = voice_timeout_s
        self.max_reply_s = max_reply_s
        self.on_health = on_health
        self.memory = memory
        self._memory_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memory")
        self._pending_memory: asyncio.Future[None] | None = None
        if memory is not None:
            self.history.extend(memory.recent(history_cap))  # pick up where the last stream left off

    # ----- input -----------------------------------------------------------------------------------
    def submit_chat(self, message: ChatMessage) -> Turn | None:
        """Queue a reply to an already-moderated chat message; returns None when not queued."""
        language = reply_language(message.language or detect_language(message.text))
        prompt = Prompt(message.text, language, message.user_name, message.user_id)
        if message.amount:
            priority = Priority.PAID
        elif self.character_name.casefold() in message.text.casefold():
            priority = Priority.MENTION
        else:
            priority = Priority.CHAT
        return self._enqueue(Turn(f"t{next(self._ids)}", priority, prompt))

    def say(self, text: str, language: str | None = None, emotion: EmotionCue | None = None) -> Turn:
        """Moderator say-now: jumps every queue, spoken verbatim (still output-moderated)."""
        prompt = Prompt(text, reply_language(language or detect_language(text)), "moderator")
        turn = Turn(f"t{next(self._ids)}", Priority.SAY, prompt, verbatim=True, emotion=emotion)
        queued = self._enqueue(turn)
        assert queued is not None
        return queued

    def _enqueue(self, turn: Turn) -> Turn | None:
        turn.done = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (turn.priority, next(self._seq), turn))
        while len(self._queue) > self.queue_cap:
            # drop the lowest-priority, oldest turn (never a moderator's)
            worst = max(self._queue, key=lambda e: (e[0], -e[1]))
            if worst[2].priority == Priority.SAY:
                break
            self._queue.remove(worst)
            heapq.heapify(self._queue)
            self._finish(worst[2], "skipped")
            self.dropped += 1
            log.info("queue full: dropped turn %s", worst[2].id)
        self._wakeup.set()
        return turn if turn.status == "queued" else None

    @property
    def queued(self) -> list[Turn]:
        return [t for _, _, t in sorted(self._queue)]

    # ----- moderator commands ------------------------------------------------------------------
    def interrupt(self) -> list[SpeechEnded]:
        """Stop speaking now: cancel the turn's brain/voice work and cut at the next frame."""
        results = self.timeline.cut()
        turn, task = self.current, self._current_task
        if turn is not None:
            self._settle_played(turn, results)
            turn.status = "interrupted"
            self.current = None  # over now, even before its task has finished unwinding
        if task is not None and not task.done():
            task.cancel()
        return results

    def emotion(self, cue: EmotionCue) -> int:
        """Emotion cues bypass every queue; returns the frame the envelope starts."""
        return self.timeline.add_emotion(cue)

    def pause(self) -> None:
        """The character stops taking turns; the stream and idle motion go on."""
        self._resumed.clear()

    def resume(self) -> None:
        self._resumed.set()

    @property
    def paused(self) -> bool:
        return not self._resumed.is_set()

    def skip(self) -> None:
        """Skip the current turn (like interrupt), or the next queued one when idle."""
        if self.current is not None:
            self.interrupt()
        elif self._queue:
            _, _, turn = heapq.heappop(self._queue)
            self._finish(turn, "skipped")

    def clear(self) -> int:
        """Drop every queued turn; returns how many."""
        dropped = len(self._queue)
        for _, _, turn in self._queue:
            self._finish(turn, "skipped")
        self._queue.clear()
        return dropped

    # ----- the loop ----------------------------------------------------------------------------------
    async def run(self) -> None:
        """Perform turns one at a time until cancelled."""
        last_end = -1e9
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            await self._resumed.wait()
            if not self._queue:
                continue
            _, _, turn = self._queue[0]
            wait = self.cooldown_s - (self._clock() - last_end)
            if wait > 0 and turn.priority != Priority.SAY:
                await self._sleep(wait)
                continue  # something more urgent may have arrived meanwhile
            heapq.heappop(self._queue)
            await self._perform_guarded(turn)
            last_end = self._clock()

    async def _perform_guarded(self, turn: Turn) -> None:
        self.current = turn
        task = asyncio.create_task(self._perform(turn), name=f"turn-{turn.id}")
        self._current_task = task
        try:
            await task
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if me is not None and me.cancelling():  # the director itself is being stopped
                task.cancel()
                self.timeline.cut(turn_id=turn.id)
                self._finish(turn, "interrupted")
                raise
            # otherwise our own interrupt cancelled the turn: the show goes on
        except Exception as exc:
            log.exception("turn %s failed; the show goes on", turn.id)
            self.timeline.cut(turn_id=turn.id)
            turn.status = "failed"
            component = "voice" if isinstance(exc, VoiceFailure) else "brain"
            self._health(component, HealthStatus.DEGRADED, f"turn {turn.id}: {type(exc).__name__}: {exc}")
        finally:
            self.current = None
            self._current_task = None
            self._finish(turn, turn.status if turn.status in ("interrupted", "failed") else "done")
            if turn.status not in ("done", "interrupted", "failed", "skipped"):
                turn.status = "interrupted"  # ended by the show stopping mid-turn
            self._remember(turn)
            turn.scheduled = []  # finished: let its audio go (completed turns are kept for the panel)
            verb = "replied" if turn.status == "done" else turn.status
            log.info("%s to %s (%s): %s", verb, turn.prompt.user_name, turn.prompt.language, turn.played_text)

    async def _perform(self, turn: Turn) -> None:
        turn.status = "thinking"
        turn.started = time.monotonic()
        if turn.emotion is not None:
            self.timeline.add_emotion(turn.emotion)
        # aclosing: cancelled mid-sentence (an interrupt while voicing), the brain's stream closes now,
        # not whenever the garbage collector finds the suspended generator
        async with contextlib.aclosing(self._sentences(turn)) as sentences:
            async for sentence in sentences:
                cues, text = split_emotion_tags(sentence)
                decision = self.moderator.check_output(text)
                if not decision.accepted:
                    continue
                speech = await self._synthesize(decision.text, turn.prompt.language)
                if speech.samples == 0:
                    continue
                planned = sum(s.speech.samples for s in turn.scheduled) + speech.samples
                if planned > self.max_reply_s * speech.sample_rate:
                    log.info("turn %s: reply longer than %.0f s; the rest is not spoken", turn.id, self.max_reply_s)
                    break
                if turn.status == "interrupted":  # its cancel was swallowed (e.g. by a brain library)
                    return
                item = self.timeline.schedule(speech, turn_id=turn.id)
                for cue in cues:
                    self.timeline.add_emotion(cue, at_frame=item.start_frame)
                if not turn.scheduled:
                    self.speech_latencies.append((time.monotonic() - turn.started) * 1000)
                turn.scheduled.append(item)
                turn.status = "speaking"
                turn.speaking.set()
        if turn.scheduled:
            end_frame = self.timeline.timebase.frames_for_samples(turn.scheduled[-1].end_sample)
            await self.timeline.wait_for_frame(end_frame - 1)
        turn.played_text = self._join([s.speech.text for s in turn.scheduled], turn.prompt.language)

    async def _sentences(self, turn: Turn) -> AsyncIterator[str]:
        chunker = SentenceChunker(language=turn.prompt.language)
        if turn.verbatim:
            for sentence in chunker.feed(turn.prompt.text) + chunker.flush():
                yield sentence
            return
        # aclosing: leaving early (interrupt, failure) closes the brain's stream, e.g. its HTTP response
        async with contextlib.aclosing(self.brain.reply(turn.prompt, list(self.history))) as stream:
            while True:
                try:  # a brain that hangs must not hold the show: each piece has a deadline
                    async with asyncio.timeout(self.brain_timeout_s):  # not wait_for: see _synthesize
                        piece = await anext(stream)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise BrainTimeout(f"no text from the brain for {self.brain_timeout_s:.0f} s") from None
                for sentence in chunker.feed(piece):
                    yield sentence
        self._health("brain", HealthStatus.OK)
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
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voice")
            raise VoiceFailure(f"the voice took longer than {self.voice_timeout_s:.0f} s") from None
        except Exception as exc:
            raise VoiceFailure(f"{type(exc).__name__}: {exc}") from exc
        self._health("voice", HealthStatus.OK)
        return speech

    def _health(self, component: str, status: HealthStatus, detail: str = "") -> None:
        if self.on_health is not None:
            self.on_health(component, status, detail)

    def close(self) -> None:
        """Finish pending memory writes (call after the run task ended)."""
        self._memory_executor.shutdown(wait=True)

    # ----- bookkeeping ---------------------------------------------------------------------------------
    def _settle_played(self, turn: Turn, cut: list[SpeechEnded]) -> None:
        heard = {r.speech_id: r.played_text for r in cut}
        pieces = [heard.get(s.id, s.speech.text) for s in turn.scheduled]
        turn.played_text = self._join([p for p in pieces if p], turn.prompt.language)

    @staticmethod
    def _join(pieces: list[str], language: str) -> str:
        return ("" if language in ("zh", "ja") else " ").join(pieces)

    def _remember(self, turn: Turn) -> None:
        """History (and long-term memory) keep what viewers said and what they actually heard."""
        prompt = turn.prompt
        if not turn.verbatim:
            self.history.append(HistoryEntry("viewer", prompt.user_name, prompt.text))
        if turn.played_text:
            self.history.append(HistoryEntry("character", self.character_name, turn.played_text))
        if self.memory is not None:
            self._pending_memory = asyncio.get_running_loop().run_in_executor(
                self._memory_executor, self._store_memory, turn)

    def _store_memory(self, turn: Turn) -> None:
        assert self.memory is not None
        prompt = turn.prompt
        try:
            if not turn.verbatim:
                self.memory.add_viewer_message(prompt.user_id or prompt.user_name, prompt.user_name, prompt.text,
                                               prompt.language)
            if turn.played_text:
                self.memory.add_character_reply(turn.played_text, self.character_name, prompt.language,
                                                 prompt.user_id)
        except Exception:
            log.exception("memory write failed; the show goes on")

    def _finish(self, turn: Turn, status: str) -> None:
        """Settle a turn once; later calls are no-ops."""
        if turn.done is not None and turn.done.done():
            return
        turn.status = status
        if turn.done is not None:
            turn.done.set_result(turn)
        self.completed.append(turn)
        self.finished[status] += 1
