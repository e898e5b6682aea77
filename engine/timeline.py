"""The timeline: scheduled speech (audio, visemes, words), emotion envelopes and listener cues on one
sample clock.

`pull(n)` returns exactly the inputs of frame n and depends only on what is scheduled, so the
same schedule always gives the same performance. `cut()` is thread-safe and acts at the next
frame boundary not yet pulled: the past is never rewritten, the future is silenced with a short
fade so there is no click, and it reports what viewers actually heard. `listen()` applies a
listener cue (engine/listening.py) the same way, at the next frame not yet pulled.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import numpy as np

from engine.clock import TimeBase
from engine.events import EmotionCue, SpeechEnded, SpokenWord
from engine.lipsync import viseme_track
from engine.listening import LISTEN_IDLE, LOUDNESS_SMOOTH_S, ListenCue, ListenFrame, ListenTrack
from engine.state import EMOTIONS, VISEMES
from engine.voice.base import Speech

FADE_MS = 10.0
# After a cut the mouth eases shut over these frames (then it is exactly closed).
CUT_MOUTH_RELEASE = (0.45, 0.15)


@dataclass
class ScheduledSpeech:
    id: int
    speech: Speech
    start_sample: int  # absolute, always on a frame boundary
    end_sample: int  # absolute; moves earlier on a cut
    visemes: np.ndarray  # [frames, len(VISEMES)] relative to the start frame
    start_frame: int
    turn_id: str | None = None
    cut_sample: int | None = None  # absolute frame boundary where a cut began


@dataclass
class _ScheduledCue:
    cue: EmotionCue
    start_frame: int
    attack: int
    hold: int
    release: int

    @property
    def end_frame(self) -> int:
        return self.start_frame + self.attack + self.hold + self.release

    def value(self, n: int) -> float:
        t = n - self.start_frame
        if t < 0 or t >= self.attack + self.hold + self.release:
            return 0.0
        if t < self.attack:
            env = (t + 1) / (self.attack + 1)
        elif t < self.attack + self.hold:
            env = 1.0
        else:
            env = 1.0 - (t - self.attack - self.hold + 1) / (self.release + 1)
        return self.cue.intensity * env


@dataclass
class FrameInputs:
    """Everything the timeline contributes to frame n."""

    n: int
    audio: np.ndarray  # [samples_per_frame] float32
    visemes: np.ndarray  # [len(VISEMES)] float32; closed=1 when silent
    emotions: np.ndarray  # [len(EMOTIONS)] float32
    speaking: bool
    word: SpokenWord | None = None
    ended: list[SpeechEnded] = field(default_factory=list)
    listen: ListenFrame = LISTEN_IDLE  # someone speaking to the character, thinking (engine/listening.py)


def _played_text(speech: Speech, played_samples: int) -> str:
    """Words whose midpoint was heard; CJK words join without spaces."""
    words = [w.text for w in speech.words if (w.start + w.end) / 2 < played_samples]
    if not speech.words and played_samples >= speech.samples:
        return speech.text
    joiner = "" if speech.language in ("zh", "ja") else " "
    return joiner.join(words)


class Timeline:
    def __init__(self, timebase: TimeBase, fade_ms: float = FADE_MS) -> None:
        self.timebase = timebase
        self.fade_samples = max(1, int(timebase.sample_rate * fade_ms / 1000))
        self._lock = threading.Lock()
        self._speeches: list[ScheduledSpeech] = []
        self._cues: list[_ScheduledCue] = []
        self._listen = ListenTrack(round(LOUDNESS_SMOOTH_S * timebase.fps))
        self._next_id = 1
        self._next_frame = 0  # the first frame not yet pulled
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[int]]] = []
        self._ended: list[SpeechEnded] = []

    # ----- scheduling -------------------------------------------------------------------------
    @property
    def next_frame(self) -> int:
        """The first frame that has not been pulled yet (where a schedule or cut can still act)."""
        with self._lock:
            return self._next_frame

    def find(self, speech_id: int) -> ScheduledSpeech | None:
        """The scheduled speech with this id while it is still on the timeline."""
        with self._lock:
            return next((s for s in self._speeches if s.id == speech_id), None)

    def busy_until_frame(self) -> int:
        """The first frame after all scheduled speech (or next_frame when idle)."""
        with self._lock:
            return self._busy_until_locked()

    def _busy_until_locked(self) -> int:
        end = self._next_frame
        for s in self._speeches:
            end = max(end, self.timebase.frames_for_samples(s.end_sample))
        return end

    def schedule(
        self, speech: Speech, *, at_frame: int | None = None, turn_id: str | None = None
    ) -> ScheduledSpeech:
        """Queue speech after everything already scheduled (or at `at_frame` if later)."""
        if speech.sample_rate != self.timebase.sample_rate:
            raise ValueError(f"speech is {speech.sample_rate} Hz, the show runs at {self.timebase.sample_rate} Hz")
        track = viseme_track(speech, self.timebase)
        with self._lock:
            start_frame = self._busy_until_locked()
            if at_frame is not None:
                start_frame = max(start_frame, at_frame)
            start = self.timebase.frame_start_sample(start_frame)
            item = ScheduledSpeech(
                self._next_id, speech, start, start + speech.samples, track, start_frame, turn_id
            )
            self._next_id += 1
            self._speeches.append(item)
            return item

    def add_emotion(self, cue: EmotionCue, at_frame: int | None = None) -> int:
        """Start an emotion envelope at `at_frame` (default: the next frame). Returns the start frame."""
        fps = self.timebase.fps
        with self._lock:
            start = self._next_frame if at_frame is None else max(at_frame, self._next_frame)
            self._cues.append(
                _ScheduledCue(
                    cue, start, round(cue.attack_s * fps), round(cue.hold_s * fps), round(cue.release_s * fps)
                )
            )
            return start

    def listen(self, cue: ListenCue, at_frame: int | None = None) -> int:
        """Apply a listener cue at `at_frame` (default and minimum: the next frame not yet pulled).
        Thread-safe. Returns the frame it acts at."""
        with self._lock:
            start = self._next_frame if at_frame is None else max(at_frame, self._next_frame)
            self._listen.add(cue, start, self._next_frame)
            return start

    # ----- interruption ------------------------------------------------------------------------
    def cut(self, at_frame: int | None = None, turn_id: str | None = None) -> list[SpeechEnded]:
        """Silence speech from the frame boundary `at_frame` (default and minimum: the next
        unpulled frame), with a short fade after the boundary. Only `turn_id`'s speech when given.
        Returns what was heard of every affected speech."""
        with self._lock:
            frame = self._next_frame if at_frame is None else max(at_frame, self._next_frame)
            boundary = self.timebase.frame_start_sample(frame)
            results: list[SpeechEnded] = []
            keep: list[ScheduledSpeech] = []
            for s in self._speeches:
                if (turn_id is not None and s.turn_id != turn_id) or s.end_sample <= boundary:
                    keep.append(s)
                    continue
                if s.cut_sample is not None and s.cut_sample <= boundary:
                    keep.append(s)  # already cut here or earlier, and reported then: only its fade is left
                    continue
                played = max(0, boundary - s.start_sample)
                results.append(
                    SpeechEnded(s.id, s.turn_id, s.speech.text, _played_text(s.speech, played), True, boundary)
                )
                if s.start_sample >= boundary:
                    continue  # never heard: drop it entirely
                s.cut_sample = boundary
                s.end_sample = boundary + self.fade_samples
                keep.append(s)
            self._speeches = keep
            return results

    # ----- per frame ---------------------------------------------------------------------------
    def pull(self, n: int) -> FrameInputs:
        """The inputs of frame n. Frames are pulled in order; pulling moves the playhead."""
        spf = self.timebase.samples_per_frame
        lo, hi = n * spf, (n + 1) * spf
        audio = np.zeros(spf, dtype=np.float32)
        open_visemes = np.zeros(len(VISEMES), dtype=np.float32)
        speaking = False
        speech_start: int | None = None  # the latest start among the speech audible in this frame
        word: SpokenWord | None = None
        with self._lock:
            for s in self._speeches:
                if s.end_sample <= lo or s.start_sample >= hi:
                    if s.cut_sample is not None and s.start_sample < hi:
                        open_visemes += self._after_cut_visemes(s, n)
                    continue
                speaking = True
                speech_start = s.start_frame if speech_start is None else max(speech_start, s.start_frame)
                self._mix_audio(s, audio, lo, hi)
                rel_frame = n - s.start_frame
                if s.cut_sample is not None and lo >= s.cut_sample:
                    open_visemes += self._after_cut_visemes(s, n)
                elif 0 <= rel_frame < s.visemes.shape[0]:
                    open_visemes[1:] += s.visemes[rel_frame][1:]
                    word = word or self._word_at(s, lo - s.start_sample)
            emotions = np.zeros(len(EMOTIONS), dtype=np.float32)
            for c in self._cues:
                k = EMOTIONS.index(c.cue.emotion)
                emotions[k] = max(emotions[k], c.value(n))
            listen = self._listen.frame(n, speech_start)
            self._advance_locked(n)
            ended, self._ended = self._ended, []
        open_visemes[0] = 0.0
        open_visemes = np.clip(open_visemes, 0.0, 1.0)
        total = float(open_visemes.sum())
        if total > 1.0:
            open_visemes /= total
        open_visemes[0] = 1.0 - float(open_visemes[1:].sum())
        self._wake_waiters(n)
        return FrameInputs(n, audio, open_visemes, emotions, speaking, word, ended, listen)

    def _after_cut_visemes(self, s: ScheduledSpeech, n: int) -> np.ndarray:
        assert s.cut_sample is not None
        cut_frame = s.cut_sample // self.timebase.samples_per_frame
        k = n - cut_frame  # frames since the cut
        last = s.visemes[min(max(0, cut_frame - s.start_frame - 1), s.visemes.shape[0] - 1)]
        scale = CUT_MOUTH_RELEASE[k] if 0 <= k < len(CUT_MOUTH_RELEASE) else 0.0
        out = last * scale
        out[0] = 0.0
        return out

    def _mix_audio(self, s: ScheduledSpeech, audio: np.ndarray, lo: int, hi: int) -> None:
        a, b = max(lo, s.start_sample), min(hi, s.end_sample)
        chunk = s.speech.pcm[a - s.start_sample : b - s.start_sample]
        if s.cut_sample is not None and b > s.cut_sample:
            pos = np.arange(a, a + chunk.shape[0])
            gain = np.clip(1.0 - (pos - s.cut_sample + 1) / self.fade_samples, 0.0, 1.0)
            chunk = chunk * gain.astype(np.float32)
        audio[a - lo : a - lo + chunk.shape[0]] += chunk

    @staticmethod
    def _word_at(s: ScheduledSpeech, rel_sample: int) -> SpokenWord | None:
        for i, w in enumerate(s.speech.words):
            if w.start <= rel_sample < w.end:
                return SpokenWord(s.id, i, w.text)
        return None

    def _advance_locked(self, n: int) -> None:
        """Move the playhead past n and retire what can no longer sound (bounded memory)."""
        self._next_frame = max(self._next_frame, n + 1)
        boundary = self._next_frame * self.timebase.samples_per_frame
        keep = []
        for s in self._speeches:
            settled = s.end_sample <= boundary and (
                s.cut_sample is None
                or self._next_frame - s.cut_sample // self.timebase.samples_per_frame >= len(CUT_MOUTH_RELEASE)
            )
            if not settled:
                keep.append(s)
            elif s.cut_sample is None:
                text = s.speech.text
                self._ended.append(SpeechEnded(s.id, s.turn_id, text, text, False, s.end_sample))
        self._speeches = keep
        self._cues = [c for c in self._cues if c.end_frame > self._next_frame]

    # ----- async waiting (for the director) ----------------------------------------------------
    async def wait_for_frame(self, n: int) -> int:
        """Resolve once frame n has been pulled (i.e. its audio is on its way to the viewers)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        with self._lock:
            if self._next_frame > n:
                return self._next_frame - 1
            self._waiters.append((n, loop, fut))
        try:
            return await fut
        finally:
            with self._lock:
                self._waiters = [w for w in self._waiters if w[2] is not fut]

    def _wake_waiters(self, n: int) -> None:
        with self._lock:
            due = [w for w in self._waiters if w[0] <= n]
            if not due:
                return
            self._waiters = [w for w in self._waiters if w[0] > n]
        for _, loop, fut in due:
            loop.call_soon_threadsafe(_resolve, fut, n)


def _resolve(fut: asyncio.Future[int], n: int) -> None:
    if not fut.done():
        fut.set_result(n)
