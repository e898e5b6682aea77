"""The director: performs turns one at a time and carries out moderator commands.

Turns wait in the scheduler (one priority order, one cap, one spacing rule). The director takes
the next one when the character is free, has the performer put it on the timeline, waits for it
to play and keeps what viewers heard in the history and in long-term memory. Interrupt cancels the
turn's task and cuts the timeline at the next frame; system commands (interrupt, emotion) bypass
every queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from engine.brain.base import Brain, HistoryEntry
from engine.clock import StreamClock, WallClock
from engine.events import EmotionCue, SpeechEnded
from engine.lifecycle import Lifecycle, cancel_and_wait
from engine.logtext import untrusted
from engine.memory import Memory
from engine.timeline import Timeline
from engine.voice.base import Voice
from streamer.config import ReplyPolicyConfig
from streamer.events import ChatMessage, HealthStatus, PauseChanged, TurnChanged
from streamer.health import HealthBoard
from streamer.moderation import Moderator
from streamer.performer import BrainFailure, Performer, VoiceFailure, join_spoken
from streamer.scheduler import TurnScheduler
from streamer.turns import Priority, Turn, TurnStatus

log = logging.getLogger("stagecast.director")


class Director(Lifecycle):
    def __init__(self, timeline: Timeline, performer: Performer, scheduler: TurnScheduler, character_name: str,
                 health: HealthBoard, publish: Callable[[object], None] | None = None,
                 memory: Memory | None = None, history_cap: int = 50) -> None:
        self.timeline = timeline
        self.performer = performer
        self.scheduler = scheduler
        self.character_name = character_name
        self.health = health
        self._publish = publish
        self.memory = memory
        self.history: deque[HistoryEntry] = deque(maxlen=history_cap)
        self.current: Turn | None = None
        self._current_task: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.completed: deque[Turn] = deque(maxlen=100)  # the latest settled turns, for the panel
        self.finished: Counter[str] = Counter()  # every turn ever settled, by status (done, interrupted, ...)
        self._memory_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memory")
        scheduler.owner = self
        scheduler.observer = self._observe
        if memory is not None:
            self.history.extend(memory.recent(history_cap))  # pick up where the last stream left off

    # ----- input -----------------------------------------------------------------------------------
    def submit_chat(self, message: ChatMessage) -> Turn | None:
        """Queue a reply to an already-moderated chat message, past the reply rules (no sampling)."""
        scheduler = self.scheduler
        turn = scheduler.new_turn(scheduler.priority_of(message), message.text, message.language,
                                  message.user_name, message.user_id)
        turn.reply_to = message
        scheduler.submit(turn)
        return turn if turn.status == TurnStatus.QUEUED else None

    def say(self, text: str, language: str | None = None, emotion: EmotionCue | None = None) -> Turn:
        """Moderator say-now: jumps every queue, spoken verbatim (still output-moderated)."""
        turn = self.scheduler.new_turn(Priority.SAY, text, language, "moderator", verbatim=True, emotion=emotion)
        return self.scheduler.submit(turn)

    def submit(self, turn: Turn) -> Turn:
        return self.scheduler.submit(turn)

    @property
    def queued(self) -> list[Turn]:
        return self.scheduler.queued

    @property
    def dropped(self) -> int:
        return self.scheduler.dropped

    # ----- moderator commands ------------------------------------------------------------------
    def interrupt(self) -> list[SpeechEnded]:
        """Stop speaking now: cancel the turn's brain/voice work and cut at the next frame."""
        results = self._cut()
        turn, task = self.current, self._current_task
        if turn is not None:
            self._settle_played(turn, results)
            turn.set_status(TurnStatus.INTERRUPTED)
            self.current = None  # over now, even before its task has finished unwinding
        if task is not None and not task.done():
            task.cancel()
        return results

    def interrupt_turn(self, turn: Turn) -> list[SpeechEnded]:
        """A turn handle's own interrupt: skip it while it waits, cut it while it performs."""
        if turn is self.current:
            return self.interrupt()
        self.scheduler.remove(turn)
        return []

    def emotion(self, cue: EmotionCue) -> int:
        """Emotion cues bypass every queue; returns the frame the envelope starts."""
        return self.timeline.add_emotion(cue)

    def pause(self) -> None:
        """The character stops taking turns; the stream and idle motion go on."""
        self._set_paused(True)

    def resume(self) -> None:
        self._set_paused(False)

    def _set_paused(self, paused: bool) -> None:
        if self.scheduler.paused != paused:
            self.scheduler.set_paused(paused)
            if self._publish is not None:
                self._publish(PauseChanged(paused))

    @property
    def paused(self) -> bool:
        return self.scheduler.paused

    def skip(self) -> Turn | None:
        """Skip the current turn (like interrupt), or the next queued one when idle; returns it."""
        if self.current is not None:
            turn = self.current
            self.interrupt()
            return turn
        queued = self.scheduler.queued
        if queued:
            self.scheduler.remove(queued[0])
            return queued[0]
        return None

    def clear(self) -> int:
        """Drop every queued turn; returns how many."""
        return self.scheduler.clear()

    # ----- the loop ----------------------------------------------------------------------------------
    async def run(self) -> None:
        """Perform turns one at a time until cancelled."""
        while True:
            turn = await self.scheduler.next()
            await self._perform_guarded(turn)
            self.scheduler.ended()

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
                self._cut(turn.id)
                turn.settle(TurnStatus.INTERRUPTED)
                raise
            # otherwise our own interrupt cancelled the turn: the show goes on
        except BrainFailure as exc:  # expected (server down, deadline): what was said has played out
            log.warning("turn %s: the brain failed (%s); the show goes on", turn.id, exc)
            turn.set_status(TurnStatus.FAILED)
        except Exception as exc:
            log.exception("turn %s failed; the show goes on", turn.id)
            self._cut(turn.id)
            turn.set_status(TurnStatus.FAILED)
            component = "voice" if isinstance(exc, VoiceFailure) else "brain"
            self.health.report(component, HealthStatus.DEGRADED, f"turn {turn.id}: {type(exc).__name__}: {exc}")
        finally:
            self.current = None
            self._current_task = None
            ended = turn.status if turn.status in (TurnStatus.INTERRUPTED, TurnStatus.FAILED) else TurnStatus.DONE
            if not turn.settle(ended) and not turn.status.final:
                turn.status = TurnStatus.INTERRUPTED  # ended by the show stopping mid-turn
            self._remember(turn)
            turn.scheduled = []  # finished: let its audio go (completed turns are kept for the panel)
            verb = "replied" if turn.status == TurnStatus.DONE else turn.status.value
            log.info("%s to %s (%s): %s", verb, untrusted(turn.prompt.user_name), turn.prompt.language,
                     untrusted(turn.played_text))

    async def _perform(self, turn: Turn) -> None:
        failure: BrainFailure | None = None
        try:
            await self.performer.perform(turn, list(self.history))
        except BrainFailure as exc:  # the sentences on air, and the cover line, still play
            failure = exc
        if turn.scheduled:
            end_frame = self.timeline.timebase.frames_for_samples(turn.scheduled[-1].end_sample)
            await self.timeline.wait_for_frame(end_frame - 1)
        turn.played_text = join_spoken([s.speech.text for s in turn.scheduled], turn.prompt.language)
        if failure is not None:
            raise failure

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="director")

    async def aclose(self) -> None:
        """Stop performing (a turn on air is cut), finish pending memory writes, stop the voice worker."""
        await cancel_and_wait(self._task)
        self.performer.close()
        await asyncio.to_thread(self._memory_executor.shutdown, wait=True)

    # ----- bookkeeping ---------------------------------------------------------------------------------
    def _cut(self, turn_id: str | None = None) -> list[SpeechEnded]:
        """Cut the timeline at the next frame; what viewers heard of each cut speech goes on the stream
        (the timeline reports only speeches that end by themselves)."""
        results = self.timeline.cut(turn_id=turn_id)
        if self._publish is not None:
            for ended in results:
                self._publish(ended)
        return results

    def _observe(self, turn: Turn) -> None:
        """Every turn's status change: keep the settled ones for the panel, publish the change once."""
        if turn.status.final and turn.done.done():
            self.completed.append(turn)
            self.finished[turn.status.value] += 1
        if turn.announced == turn.status:
            return  # settled with the status it already had (an interrupt, then its unwinding)
        turn.announced = turn.status
        if self._publish is not None:
            p = turn.prompt
            self._publish(TurnChanged(turn.id, turn.status.value, turn.priority.name.lower(), p.user_name,
                                      p.text[:300], p.language, turn.played_text, turn.reply_to))

    def _settle_played(self, turn: Turn, cut: list[SpeechEnded]) -> None:
        heard = {r.speech_id: r.played_text for r in cut}
        pieces = [heard.get(s.id, s.speech.text) for s in turn.scheduled]
        turn.played_text = join_spoken([p for p in pieces if p], turn.prompt.language)

    def _remember(self, turn: Turn) -> None:
        """History (and long-term memory) keep what viewers said and what they actually heard."""
        prompt = turn.prompt
        said = turn.played_text
        if turn.cover is not None:  # the cover line is not the character's answer
            said = join_spoken([s.speech.text for s in turn.scheduled if s is not turn.cover], prompt.language)
        # a failed turn that said nothing leaves no trace: the model would answer a stale message next time
        if not turn.verbatim and (said or turn.status != TurnStatus.FAILED):
            self.history.append(HistoryEntry("viewer", prompt.user_name, prompt.text))
        if said:
            self.history.append(HistoryEntry("character", self.character_name, said))
        if self.memory is not None:
            asyncio.get_running_loop().run_in_executor(self._memory_executor, self._store_memory, turn)

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


def build_director(timeline: Timeline, brain: Brain, voice: Voice, moderator: Moderator, character_name: str = "Aiko",
                   *, clock: StreamClock | None = None, health: HealthBoard | None = None,
                   publish: Callable[[object], None] | None = None, memory: Memory | None = None,
                   policy: ReplyPolicyConfig | None = None, cooldown_s: float = 1.0, queue_cap: int = 20,
                   brain_timeout_s: float = 20.0, voice_timeout_s: float = 10.0,
                   max_reply_s: float = 30.0) -> Director:
    """The turn pipeline in one piece: scheduler -> director -> performer -> timeline. `clock` is the
    show's stream clock (wall time when none is given)."""
    health = health or HealthBoard(publish)
    scheduler = TurnScheduler(policy or ReplyPolicyConfig(), character_name, clock or WallClock(),
                              cooldown_s=cooldown_s, queue_cap=queue_cap)
    performer = Performer(timeline, brain, voice, moderator, health, brain_timeout_s=brain_timeout_s,
                          voice_timeout_s=voice_timeout_s, max_reply_s=max_reply_s)
    return Director(timeline, performer, scheduler, character_name, health, publish=publish, memory=memory)
