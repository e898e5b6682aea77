"""Listening benchmark: the VAD's decision latency and cost, Whisper's real-time factor, and how long
`final()` takes once an utterance has ended when `partial()` ran while it was spoken.

The live runs feed real speech (espeak en, kokoro ja) in 20 ms blocks paced by the wall clock, through
`VadSegmenter` into an `Utterance`, with a worker thread calling `partial()` every `--every` seconds
(back to back when a decode takes longer) and at once on a Pause event, since a pause may be the
end. At SpeechEnd the worker finishes the partial it is in and calls `final()`: `final_after_end_s`
is from the SpeechEnd event to the transcript, measured twice, with `final(end)` told where the
speech ended (a partial that began in the pause is then reused) and without.

    python benchmarks/listen.py [--threads 1,2] [--every 0.5]
    python benchmarks/listen.py --show     the same inside a live show (benchmarks/listen_show.py)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import threading
import time
from pathlib import Path

import numpy as np

from engine.listen.asr import SAMPLE_RATE, Utterance, WhisperRecognizer
from engine.listen.transcript import Transcript
from engine.listen.vad import CHUNK, Pause, SileroVad, SpeechEnd, SpeechStart, VadSegmenter
from engine.voice.espeak import EspeakVoice
from tests.listen_support import cer, silence, sound_span, wer

RESULTS = Path(__file__).resolve().parent / "results" / "listen.json"
ENGLISH = [
    "Yesterday I walked to the market, and I bought some fresh apples for my grandmother.",
    "Could you tell me what time the next train leaves for the city?",
    "I think the new song sounds great, but the drums are a little loud.",
    "The weather has been really nice this week.",
]
JAPANESE = ["今日はいい天気なので、公園で散歩しましょう。", "明日は友達と一緒に映画を見に行きます。"]
BLOCK = 320  # 20 ms
PREROLL = 4000  # 250 ms of audio kept before SpeechStart.sample (Whisper misses a first word cut at its onset)


def speeches() -> list[tuple[str, str, np.ndarray]]:
    espeak = EspeakVoice(sample_rate=SAMPLE_RATE)
    out = [("en", text, espeak.synthesize(text, "en").pcm) for text in ENGLISH]
    try:
        from engine.voice.kokoro import KokoroJaVoice

        kokoro = KokoroJaVoice(sample_rate=SAMPLE_RATE)
        out += [("ja", text, kokoro.synthesize(text, "ja").pcm) for text in JAPANESE]
    except Exception as exc:  # the kokoro-ja extra is optional here
        print(f"no Japanese: {exc}")
    return out


def vad_numbers(items: list[tuple[str, str, np.ndarray]]) -> dict[str, float]:
    """SpeechStart's delay after the true onset (audio ms) and the VAD's cost per 32 ms chunk."""
    delays, emitted, costs = [], [], []
    for _, _, speech in items:
        pcm = np.concatenate([silence(1.0), speech, silence(0.8)])
        onset = SAMPLE_RATE + sound_span(speech)[0]
        seg = VadSegmenter(SileroVad())
        t0 = time.perf_counter()
        for at in range(0, pcm.shape[0], BLOCK):
            for e in seg.feed(pcm[at : at + BLOCK]):
                if isinstance(e, SpeechStart):
                    delays.append((e.sample - onset) / 16)
                    emitted.append((at + BLOCK - onset) / 16)
        costs.append((time.perf_counter() - t0) / (pcm.shape[0] / CHUNK) * 1000)
    return {
        "start_sample_after_onset_ms": round(statistics.median(delays), 1),
        "start_emitted_after_onset_ms": round(statistics.median(emitted), 1),
        "cost_per_chunk_ms": round(statistics.median(costs), 3),
    }


def live(rec: WhisperRecognizer, speech: np.ndarray, every_s: float, tell_end: bool) -> dict[str, float | str]:
    """One utterance spoken in real time; returns the final transcript and its latencies."""
    pcm = np.concatenate([silence(0.5), speech, silence(1.0)])
    seg = VadSegmenter(SileroVad())
    utt: Utterance | None = None
    first = 0
    ended = threading.Event()
    wake = threading.Event()  # a Pause, or the end
    box: dict[str, object] = {}
    partials: list[Transcript] = []

    def worker(u: Utterance) -> None:
        while not ended.is_set():
            t = time.monotonic()
            p = u.partial()
            if p is not None:
                partials.append(p)
            wake.wait(max(0.0, every_s - (time.monotonic() - t)))
            wake.clear()
        end = box["end"]
        box["final"] = u.final(end if tell_end else None)  # type: ignore[arg-type]
        box["done"] = time.monotonic()

    thread = None
    t0 = time.monotonic()
    for i, at in enumerate(range(0, pcm.shape[0], BLOCK)):
        time.sleep(max(0.0, t0 + i * BLOCK / SAMPLE_RATE - time.monotonic()))
        block = pcm[at : at + BLOCK]
        events = seg.feed(block)
        if utt is not None:
            utt.feed(block)
        for e in events:
            if isinstance(e, SpeechStart) and utt is None:
                first = max(0, e.sample - PREROLL)
                utt = rec.utterance()
                utt.feed(pcm[first : at + BLOCK])
                thread = threading.Thread(target=worker, args=(utt,), daemon=True)
                thread.start()
            elif isinstance(e, Pause):
                wake.set()
            elif isinstance(e, SpeechEnd) and thread is not None:
                box["end"], box["end_at"] = e.sample - first, time.monotonic()
                ended.set()
                wake.set()
        if ended.is_set():
            break
    assert thread is not None, "no speech detected"
    thread.join()
    final = box["final"]
    assert isinstance(final, Transcript)
    return {
        "text": final.text,
        "audio_s": round(final.audio_s, 2),
        "partials": len(partials),
        "partial_decode_s": round(statistics.median(p.decode_s for p in partials), 3) if partials else 0.0,
        "final_decode_s": round(final.decode_s, 3),
        "final_after_end_s": round(float(box["done"]) - float(box["end_at"]), 3),  # type: ignore[arg-type]
    }


def main(threads: list[int], every_s: float) -> dict[str, object]:
    items = speeches()
    report: dict[str, object] = {"vad": vad_numbers(items), "every_s": every_s, "runs": []}
    for n in threads:
        rec = WhisperRecognizer(cpu_threads=n)
        t = time.perf_counter()
        rec.prewarm()
        load_s = time.perf_counter() - t
        rows = []
        for language, text, speech in items:
            rate = wer if language == "en" else cer
            pcm = np.concatenate([silence(0.2), speech, silence(0.3)])
            whole = rec.recognize(pcm)
            row: dict[str, object] = {
                "language": language, "detected": whole.language, "audio_s": round(whole.audio_s, 2),
                "whole_decode_s": round(whole.decode_s, 3), "rtf": round(whole.decode_s / whole.audio_s, 3),
                "whole_error": round(rate(text, whole.text), 3),
            }  # fmt: skip
            for tell in (True, False):
                run = live(rec, speech, every_s, tell)
                row["told_end" if tell else "untold"] = {**run, "error": round(rate(text, str(run["text"])), 3)}
            rows.append(row)
            print(n, json.dumps(row, ensure_ascii=False))
        report["runs"].append({"cpu_threads": n, "load_s": round(load_s, 2), "utterances": rows})  # type: ignore[union-attr]
    report["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--every", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--show", action="store_true", help="measure inside a live show, merged as 'show'")
    args = parser.parse_args()
    if args.show:
        import asyncio
        import logging

        from benchmarks.listen_show import run_show_part

        logging.basicConfig(level=logging.WARNING)
        result = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
        result["show"] = asyncio.run(run_show_part())
        print(json.dumps(result["show"], indent=2, ensure_ascii=False))
    else:
        result = main([int(n) for n in args.threads.split(",")], args.every)
        print(json.dumps(result["vad"]))
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
