"""Listening inside the running show: end of speech -> first reply audio, and the frames it costs.

A live 1280x720 show on the compiled CPU renderer (`runtime: torch-inductor`) listens to a `stream`
input playing a file in real time: first `idle_s` of silence (the idle window: the show on air, the
VAD running), then English utterances made by espeak, each followed by silence long enough for the
reply. For each utterance: speech end (from the VAD's end sample) -> first sample of the reply on air,
split into the VAD's end-of-speech wait (`end_ms` of silence), the decoding still running when it
ended (a partial in flight, or the final's own decode: `final_decode_ms`), and the brain + voice;
late frames in the recognition window against the idle window of the same run. Brains: scripted +
espeak, and the OpenAI-compatible brain against the local fake server (TTFT 200 ms, 50 tokens/s) +
espeak.

    python benchmarks/listen.py --show    (merges a "show" section into benchmarks/results/listen.json)
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

from engine.voice.espeak import EspeakVoice
from streamer.attachments import build_show
from streamer.config import parse_config
from streamer.events import HealthChanged, Heard, SpeechStarted, TurnChanged
from tests.fakes.openai_server import FakeOpenAIServer

UTTERANCES = [
    "Hello Aiko, what is your favourite colour?",
    "Can you tell me a short story about a cat?",
    "What did you eat for breakfast today?",
    "Do you like music, and what kind?",
    "Good evening, how is the stream going?",
]
RATE = 48_000


def write_wav(path: Path, idle_s: float, gap_s: float) -> list[float]:
    """The input file; returns each utterance's end in seconds from the file's start."""
    voice = EspeakVoice(RATE)
    pieces, ends, t = [np.zeros(int(idle_s * RATE), np.float32)], [], idle_s
    for text in UTTERANCES:
        pcm = voice.synthesize(text, "en").pcm
        pieces += [pcm, np.zeros(int(gap_s * RATE), np.float32)]
        t += pcm.shape[0] / RATE
        ends.append(t)
        t += gap_s
    audio = np.concatenate(pieces)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return ends


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_show(brain: dict[str, Any], wav: Path, idle_s: float, total_s: float,
                   asr_threads: int = 1) -> dict[str, Any]:
    config = parse_config({
        "video": {"width": 1280, "height": 720}, "chat": {"sources": []}, "panel": {"enabled": False},
        "character": {"runtime": "torch-inductor", "memory": {"enabled": False}, **brain},
        "director": {"cooldown_s": 0},
        "outputs": {"recording": {"directory": tempfile.mkdtemp(prefix="listen-bench-")}},
        "listen": {"inputs": [{"type": "stream", "name": "guest", "speaker": "Guest", "url": str(wav)}],
                   "asr": {"cpu_threads": asr_threads}},
    })
    show = build_show(config)
    heard: list[tuple[float, Heard]] = []
    first_audio: dict[str, float] = {}
    voice_turns: dict[str, float] = {}  # turn id -> when it was queued

    def on_event(event: Any) -> None:  # inline: stamped on the publishing thread, when it happens
        now = time.time()
        if isinstance(event, Heard) and not event.partial and event.text:
            heard.append((now, event))
        elif isinstance(event, TurnChanged) and event.priority == "voice" and event.status == "queued":
            voice_turns[event.turn_id] = now
        elif isinstance(event, SpeechStarted) and event.turn_id in voice_turns and event.turn_id not in first_audio:
            first_audio[event.turn_id] = now

    show.control.subscribe(on_event, Heard, TurnChanged, SpeechStarted, inline=True)
    listening = asyncio.Event()  # the listener started after the show went on air
    show.control.subscribe(lambda e: listening.set() if e.health.component == "listen:guest" else None,
                           HealthChanged)
    runner = asyncio.create_task(show.run())
    marks: dict[str, tuple[float, int]] = {}

    async def mark(name: str) -> None:
        s = show.control.status()
        marks[name] = (s.stream_s, s.late_frames)

    try:
        async with asyncio.timeout(300):  # the compiled renderer may be built first (about a minute)
            await listening.wait()
        await mark("on_air")
        await asyncio.sleep(idle_s - 2.0)  # the file's silence: the idle window
        await mark("idle_end")
        await asyncio.sleep(total_s - idle_s + 2.0)
        await mark("end")
    finally:
        show.request_stop()
        await runner
    rows = []
    turns = sorted(voice_turns, key=voice_turns.get)  # type: ignore[arg-type]
    for (t_heard, event), turn in zip(heard, turns, strict=False):
        if turn not in first_audio or event.speech_end is None or event.end_detected is None:
            continue
        end, detected = event.speech_end, event.end_detected
        rows.append({"text": event.text, "end_to_first_audio_ms": round((first_audio[turn] - end) * 1000),
                     "vad_end_of_speech_ms": round((detected - end) * 1000),
                     "decode_after_end_ms": round((t_heard - detected) * 1000),
                     "final_decode_ms": round(event.decode_ms),
                     "reply_to_first_audio_ms": round((first_audio[turn] - t_heard) * 1000)})
    totals = [r["end_to_first_audio_ms"] for r in rows]
    (s0, l0), (s1, l1), (s2, l2) = marks["on_air"], marks["idle_end"], marks["end"]
    return {
        "utterances": rows,
        "answered": f"{len(rows)}/{len(UTTERANCES)}",
        "end_to_first_audio_ms": {"median": statistics.median(totals) if totals else None,
                                  "p95": percentile(totals, 0.95) if totals else None},
        "split_median_ms": {k: statistics.median(r[k] for r in rows) if rows else None
                            for k in ("vad_end_of_speech_ms", "decode_after_end_ms", "final_decode_ms",
                                      "reply_to_first_audio_ms")},
        "late_frames": {"idle_window": {"seconds": round(s1 - s0, 1), "late": l1 - l0,
                                        "ratio": round((l1 - l0) / max(1, (s1 - s0) * 30), 4)},
                        "recognition_window": {"seconds": round(s2 - s1, 1), "late": l2 - l1,
                                               "ratio": round((l2 - l1) / max(1, (s2 - s1) * 30), 4)}},
    }


async def run_show_part(idle_s: float = 40.0, gap_s: float = 8.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "guest.wav"
        ends = write_wav(wav, idle_s, gap_s)
        total_s = ends[-1] + gap_s
        out: dict[str, Any] = {"idle_s": idle_s, "gap_s": gap_s, "size": "1280x720", "runtime": "torch-inductor"}
        out["scripted+espeak"] = await one_show({"brain": "scripted"}, wav, idle_s, total_s)
        out["scripted+espeak, 2 recognition threads"] = await one_show({"brain": "scripted"}, wav, idle_s, total_s,
                                                                       asr_threads=2)
        async with FakeOpenAIServer(ttft_s=0.2, tokens_per_s=50) as server:
            brain = {"brain": "openai", "openai": {"base_url": server.base_url, "model": "fake"}}
            out["openai-fake(ttft=200ms,50tok/s)+espeak"] = await one_show(brain, wav, idle_s, total_s)
        return out
