"""Voice activity: Silero VAD on 32 ms chunks, turned into speech start, pause, end and loudness events.

The model is the Silero VAD v6 ONNX graph that ships inside the faster-whisper wheel
(faster_whisper/assets/silero_vad_v6.onnx). The `silero-vad` wheel has the same network in several
exports, but it is another 11 MB download that declares a torch dependency; faster-whisper is already
the listen extra's recognizer, so its 1.2 MB 16 kHz-only graph costs nothing more. It runs with
onnxruntime on one thread, never through torch.hub.

The segmenter's decisions depend only on the samples fed (no clocks, no randomness), so the same
audio always gives the same events at the same sample positions.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.listen.errors import INSTALL_HINT, ListenError

CHUNK = 512  # samples at 16 kHz (32 ms): the window Silero was trained on
_CONTEXT = 64  # the graph also sees the last 64 samples of the previous chunk


def default_model_path() -> Path:
    """The Silero graph inside the installed faster-whisper wheel (found without importing faster-whisper)."""
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise ListenError(f"the Silero VAD model ships with faster-whisper: {INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "silero_vad_v6.onnx"


class SileroVad:
    """Speech probability of successive 512-sample chunks of one 16 kHz stream (the LSTM state carries over)."""

    def __init__(self, model_path: str | Path | None = None) -> None:
        import onnxruntime as ort

        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.is_file():
            raise ListenError(f"Silero VAD model {path} does not exist ({INSTALL_HINT})")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # 0.1 ms a chunk: more threads only cost wake-ups
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next chunk starts a new one."""
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)

    def prob(self, chunk: np.ndarray) -> float:
        """Probability in [0, 1] that this 512-sample chunk (float32 in [-1, 1]) is speech."""
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if chunk.shape[0] != CHUNK:
            raise ValueError(f"Silero VAD takes chunks of {CHUNK} samples, got {chunk.shape[0]}")
        window = np.concatenate([self._context, chunk])[None, :]
        out, self._h, self._c = self._session.run(None, {"input": window, "h": self._h, "c": self._c})
        self._context = chunk[-_CONTEXT:].copy()
        return float(np.asarray(out).reshape(-1)[0])


@dataclass(frozen=True)
class SpeechStart:
    """Speech has lasted start_ms; `sample` is where it began."""

    sample: int


@dataclass(frozen=True)
class Pause:
    """A silence inside an utterance reached pause_ms (the listener nods); `sample` is where it began."""

    sample: int


@dataclass(frozen=True)
class SpeechEnd:
    """Silence has lasted end_ms; `sample` is where the silence began (the utterance's end)."""

    sample: int


@dataclass(frozen=True)
class Level:
    """One chunk's loudness and speech probability (`sample` is the chunk's first sample)."""

    sample: int
    rms_db: float
    speech_prob: float


VadEvent = SpeechStart | Pause | SpeechEnd | Level


class VadSegmenter:
    """Turns a 16 kHz stream into events. Sample positions count from the first sample fed (or the last reset).

    A chunk is speech at `threshold` or above and silence below `threshold - 0.15`; in between it keeps
    the previous state, so a probability wobbling around the threshold does not flicker.
    """

    def __init__(
        self,
        vad: SileroVad,
        start_ms: int = 200,
        end_ms: int = 500,
        threshold: float = 0.5,
        sample_rate: int = 16000,
        pause_ms: int = 150,
    ) -> None:
        if sample_rate != 16000:
            raise ValueError("the Silero graph shipped with faster-whisper is 16 kHz only; resample first")
        if not 0 < pause_ms < end_ms:
            raise ValueError(f"pause_ms ({pause_ms}) must be between 0 and end_ms ({end_ms})")
        self.vad = vad
        self.threshold = threshold
        self.sample_rate = sample_rate
        self._start_n = start_ms * sample_rate // 1000
        self._end_n = end_ms * sample_rate // 1000
        self._pause_n = pause_ms * sample_rate // 1000
        self.level: Level | None = None  # the latest chunk's, for a caller that polls
        self.reset()

    @property
    def speaking(self) -> bool:
        """Inside an utterance (after SpeechStart, before SpeechEnd)."""
        return self._speaking

    def reset(self) -> None:
        """Start a new stream at sample 0."""
        self.vad.reset()
        self._pending = np.zeros(0, dtype=np.float32)
        self._pos = 0  # first sample of the next chunk
        self._is_speech = False
        self._speaking = False
        self._run_start: int | None = None  # where the current speech run began (before SpeechStart)
        self._silence_start: int | None = None  # where the current silence began (inside an utterance)
        self._paused = False

    def feed(self, pcm: np.ndarray) -> list[VadEvent]:
        """Feed any number of float32 samples; returns the events of every whole chunk now complete."""
        pcm = np.asarray(pcm, dtype=np.float32).reshape(-1)
        buf = np.concatenate([self._pending, pcm]) if self._pending.size else pcm
        whole = buf.shape[0] // CHUNK * CHUNK
        self._pending = buf[whole:].copy()
        events: list[VadEvent] = []
        for i in range(0, whole, CHUNK):
            self._chunk(buf[i : i + CHUNK], events)
        return events

    def _chunk(self, chunk: np.ndarray, events: list[VadEvent]) -> None:
        start, end = self._pos, self._pos + CHUNK
        self._pos = end
        p = self.vad.prob(chunk)
        rms = float(np.sqrt(np.mean(np.square(chunk, dtype=np.float64))))
        self.level = Level(start, 20.0 * math.log10(max(rms, 1e-5)), p)
        events.append(self.level)
        if p >= self.threshold:
            self._is_speech = True
        elif p < self.threshold - 0.15:
            self._is_speech = False
        if self._speaking:
            self._inside(start, end, events)
        elif self._is_speech:
            self._run_start = start if self._run_start is None else self._run_start
            if end - self._run_start >= self._start_n:
                events.append(SpeechStart(self._run_start))
                self._speaking, self._run_start = True, None
        else:
            self._run_start = None

    def _inside(self, start: int, end: int, events: list[VadEvent]) -> None:
        if self._is_speech:
            self._silence_start, self._paused = None, False
            return
        self._silence_start = start if self._silence_start is None else self._silence_start
        silent = end - self._silence_start
        if silent >= self._end_n:
            events.append(SpeechEnd(self._silence_start))
            self._speaking, self._silence_start, self._paused = False, None, False
        elif silent >= self._pause_n and not self._paused:
            events.append(Pause(self._silence_start))
            self._paused = True
