"""Turns what every frame carried into show events: captions, emotions, speech starting and ending.

Runs on the frame-loop thread after each frame. It only compares a few values with the previous
frame and publishes when something changed, so it costs next to nothing per frame. `FrameTick`
(every frame) is built only while someone subscribes to it.
"""

from __future__ import annotations

import logging
import time

import torch

from engine.state import EMOTIONS, IDX
from engine.timeline import FrameInputs, Timeline
from streamer.audio_tap import OutputAudioTap
from streamer.bus import EventBus
from streamer.events import CaptionChanged, EmotionChanged, FrameTick, SpeechStarted

log = logging.getLogger("stagecast.frames")

_EMO_START = IDX[EMOTIONS[0]]
EMOTION_STEP = 0.05  # emotion changes smaller than this are not published


class FrameEvents:
    def __init__(self, bus: EventBus, timeline: Timeline, tap: OutputAudioTap | None = None) -> None:
        self.bus = bus
        self.timeline = timeline
        self.tap = tap
        self._caption_key: tuple[int | None, int | None, bool] | None = None
        self._emotion_key: tuple[int, ...] | None = None
        self._speech_id: int | None = None
        self._words: tuple[str, ...] = ()
        self._spaces: tuple[bool, ...] = ()
        self._language: str | None = None
        self._errors = 0

    def __call__(self, n: int, inputs: FrameInputs, state: torch.Tensor) -> None:
        try:
            self._frame(n, inputs, state)
        except Exception:  # never let an observer break the stream
            self._errors += 1
            if self._errors == 1:
                log.exception("frame events failed; the stream goes on")

    def _frame(self, n: int, inputs: FrameInputs, state: torch.Tensor) -> None:
        bus = self.bus
        if self.tap is not None:
            self.tap.write(inputs.audio)
        for ended in inputs.ended:
            bus.publish(ended)
        word = inputs.word
        if word is not None and word.speech_id != self._speech_id:
            self._speech_started(word.speech_id)
        key = (word.speech_id, word.index, inputs.speaking) if word is not None else (None, None, inputs.speaking)
        if key != self._caption_key:
            self._caption_key = key
            if word is None:
                bus.publish(CaptionChanged(n, inputs.speaking))
            else:
                bus.publish(CaptionChanged(n, inputs.speaking, word.speech_id, word.index, self._words, self._language,
                                           self._spaces))
        emotions = state[_EMO_START:_EMO_START + len(EMOTIONS)].tolist()
        emotion_key = tuple(round(e / EMOTION_STEP) for e in emotions)
        if emotion_key != self._emotion_key:
            self._emotion_key = emotion_key
            bus.publish(EmotionChanged(n, tuple(emotions)))
        if bus.wants(FrameTick):
            bus.publish(FrameTick(n, time.time(), inputs.speaking, word.text if word else None,
                                  word.speech_id if word else None, tuple(emotions),
                                  inputs.audio.shape[0]))

    def _speech_started(self, speech_id: int) -> None:
        self._speech_id = speech_id
        item = self.timeline.find(speech_id)
        if item is None:
            self._words, self._spaces, self._language = (), (), None
            return
        speech = item.speech
        self._words, self._language = tuple(w.text for w in speech.words), speech.language
        self._spaces = speech.word_spaces()
        self.bus.publish(SpeechStarted(speech_id, item.turn_id, speech.text, speech.language, self._words,
                                       item.start_sample))
