"""A local LLM server as the brain: time to first token and first audio over a 20-turn show, with the
stable prompt prefix and without it (the old sliding window of 12 entries), side by side in one run;
the prefix-cache hit rate of each; and late frames of the live frame loop while the LLM generates,
against the same loop idle, in the same run.

The server is the real llama-cpp-python one with the PyPI GGUF (tests/llama_server.py), restarted
fresh for each prompt style.  A turn: the brain streams the reply; the first audio is the moment the
first sentence is complete and voiced by espeak (the performer's path, without waiting for playback);
the whole reply then joins the history, as a viewer heard it.  Cache hits come from the server's log
("N prefix-match hit, remaining M prompt tokens"); a turn hits when at least half its prompt was cached;
`reused` is cached prompt tokens over all prompt tokens, both over turns 6-20.

Late frames: the show's FrameLoop in live mode (animator, procedural renderer with the configured
runtime, H.264/AAC encoding to a file) runs on its own thread, first `--idle-s` seconds with the LLM
idle, then through the stable-prefix turns; each window's late frames are counted separately.

    python benchmarks/llm.py [--turns 20] [--width 1280 --height 720] [--runtime auto]
                             [--llm-threads 1] [--llm-nice 10] [--frame-nice -5]

The machine this runs on matters more than anything here: numbers from a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.brain.base import BrainError, HistoryEntry, Prompt
from engine.brain.chunking import SentenceChunker
from engine.brain.openai_compat import OpenAICompatBrain
from engine.brain.prompt import BuiltPrompt, PromptBuilder
from engine.brain.tags import split_emotion_tags
from engine.clock import FrameClock
from engine.frameloop import FrameLoop
from engine.voice.espeak import EspeakVoice
from streamer.assembly import build_engine, configure_torch_threads, encoder_settings
from streamer.config import parse_config
from streamer.outputs.file_sink import SegmentedFileSink
from streamer.outputs.hub import OutputHub
from tests.llama_server import MODEL_ALIAS, LlamaServer, missing
from tests.test_llm_server import MESSAGES


class SlidingBuilder(PromptBuilder):
    """The prompt before the stable prefix: the persona's per-turn system prompt (language and memory
    inside it) and the last `max_history` entries, sliding by one turn every turn."""

    async def build(self, prompt: Prompt, history: Any, context: str = "") -> BuiltPrompt:
        messages = self.persona.build_messages(prompt, history, context)
        if self.system_mode == "fold":
            system = messages.pop(0)["content"]
            if messages[0]["role"] == "user":
                messages[0] = {"role": "user", "content": f"{system}\n\n{messages[0]['content']}"}
            else:
                messages.insert(0, {"role": "user", "content": system})
        tokens = sum([await self.counter.count(m["content"]) + 6 for m in messages])
        return BuiltPrompt(messages, tokens, 0, False, tokens)


class LiveFrames:
    """The show's frame loop, live, on its own thread; `mark()` starts a new counting window."""

    def __init__(self, width: int, height: int, runtime: str, frame_nice: int | None) -> None:
        config = parse_config({"video": {"width": width, "height": height}, "character": {"runtime": runtime}})
        self.parts = build_engine(config)
        self.parts.prewarm()
        self.tmp = tempfile.TemporaryDirectory()
        self.hub = OutputHub(encoder_settings(config), [SegmentedFileSink(self.tmp.name)])
        self.loop = FrameLoop(FrameClock(self.parts.timebase, virtual=False), self.parts.timeline, self.parts.animator,
                              self.parts.renderer, self.hub, thread_nice=frame_nice)
        program = getattr(self.parts.renderer, "program", None)  # the procedural one: eager, traced or inductor
        self.renderer = type(self.parts.renderer).__name__ + (f" ({program})" if program else "")
        self.windows: list[dict[str, Any]] = []
        self._mark: tuple[str, float, int, int] | None = None

    def start(self) -> None:
        self.hub.open()
        self.loop._thread = threading.Thread(target=self.loop._run_guarded, name="frame-loop", daemon=True)
        self.loop._thread.start()
        while self.loop.stats.frames < 30:  # past the first renders
            time.sleep(0.1)

    def mark(self, name: str | None) -> None:
        stats = self.loop.stats
        if self._mark is not None:
            label, began, frames0, late0 = self._mark
            frames, late = stats.frames - frames0, stats.late_frames - late0
            self.windows.append({"window": label, "seconds": round(time.monotonic() - began, 1), "frames": frames,
                                 "late_frames": late, "late_pct": round(100 * late / max(1, frames), 2)})
        self._mark = None if name is None else (name, time.monotonic(), stats.frames, stats.late_frames)

    def stop(self) -> None:
        self.loop.stop()
        self.loop.finished.wait(10)
        self.hub.close()
        self.parts.close()
        self.tmp.cleanup()


async def run_turns(server: LlamaServer, style: str, turns: int, voice: EspeakVoice) -> list[dict[str, Any]]:
    brain = OpenAICompatBrain(server.base_url, MODEL_ALIAS, system_mode="fold", max_tokens=40, temperature=0.7,
                              first_token_s=60, first_token_per_1k_s=120, max_first_token_s=180, between_tokens_s=60)
    if style == "sliding":
        brain.builder = SlidingBuilder(brain.persona, brain.builder.counter, system_mode="fold")
    history: list[HistoryEntry] = []
    out = []
    try:
        for i in range(turns):
            user, text = f"viewer{i % 4}", MESSAGES[i % len(MESSAGES)]
            offset = server.log_offset()
            chunker = SentenceChunker(language="en")
            began = time.monotonic()
            first_token = first_audio = None
            reply, error = "", ""
            try:
                async for piece in brain.reply(Prompt(text, "en", user, user), history):
                    first_token = first_token or time.monotonic() - began
                    reply += piece
                    sentences = chunker.feed(piece)
                    if sentences and first_audio is None:
                        _, spoken = split_emotion_tags(sentences[0])
                        await asyncio.to_thread(voice.synthesize, spoken or "hm", "en")
                        first_audio = time.monotonic() - began
            except BrainError as exc:  # a missed deadline on a starved machine: recorded, the show goes on
                error = str(exc)
                print(f"  {style:7s} turn {i + 1:2d}: {error}", flush=True)
            if first_audio is None:
                first_audio = time.monotonic() - began  # a one-sentence reply: voiced at its end
            cache = server.cache_since(offset)
            assert brain.last_prompt is not None
            out.append({"turn": i + 1, "ttft_s": round(first_token or 0.0, 2), "first_audio_s": round(first_audio, 2),
                        "prompt_tokens": cache.total or brain.last_prompt.tokens, "cached_tokens": cache.reused,
                        "hit": cache.hit, "error": error})
            _, heard = split_emotion_tags(reply)
            history += [HistoryEntry("viewer", user, text), HistoryEntry("character", "Aiko", heard)]
            print(f"  {style:7s} turn {i + 1:2d}: ttft {out[-1]['ttft_s']:6.2f} s  first audio "
                  f"{out[-1]['first_audio_s']:6.2f} s  prompt {out[-1]['prompt_tokens']:5d}  cached "
                  f"{cache.reused:5d}", flush=True)
    finally:
        await brain.aclose()
    return out


def summary(turns: list[dict[str, Any]]) -> dict[str, Any]:
    later = turns[5:]

    def median(key: str) -> float:
        values = sorted(t[key] for t in later)
        return values[len(values) // 2] if values else 0.0

    cached = sum(t["cached_tokens"] for t in later)
    total = sum(t["prompt_tokens"] for t in later)
    return {"hit_rate_after_5": round(sum(t["hit"] for t in later) / max(1, len(later)), 3),
            "reused_tokens_after_5": round(cached / max(1, total), 3),
            "ttft_median_s_after_5": median("ttft_s"), "first_audio_median_s_after_5": median("first_audio_s"),
            "ttft_max_s": max((t["ttft_s"] for t in turns), default=0.0),
            "failed_turns": sum(bool(t["error"]) for t in turns)}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    configure_torch_threads()
    voice = EspeakVoice(sample_rate=48000)
    frames = LiveFrames(args.width, args.height, args.runtime, args.frame_nice)
    frames.start()
    runs: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for style in ("stable", "sliding"):
                server = LlamaServer(Path(tmp) / f"{style}.log", threads=args.llm_threads, nice=args.llm_nice)
                server.start()
                try:
                    if style == "stable":
                        frames.mark("idle")
                        await asyncio.sleep(args.idle_s)
                        frames.mark("llm generating")
                    turns = await run_turns(server, style, args.turns, voice)
                    if style == "stable":
                        frames.mark(None)
                finally:
                    server.stop()
                runs[style] = {"summary": summary(turns), "turns": turns}
    finally:
        await asyncio.to_thread(frames.stop)
    return {
        "command": " ".join(["python", "benchmarks/llm.py", *sys.argv[1:]]),
        "server": "llama-cpp-python " + __import__("llama_cpp").__version__ + f", {MODEL_ALIAS} Q4_K_M, "
                  f"--chat_format gemma, {args.llm_threads} thread(s), nice {args.llm_nice}",
        "runs": runs,
        "frames": {"width": args.width, "height": args.height, "fps": 30, "renderer": frames.renderer,
                   "frame_nice": args.frame_nice, "windows": frames.windows},
        "machine": {"cpus": os.cpu_count(), "load_avg": os.getloadavg(), "python": platform.python_version(),
                    "platform": platform.platform()},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--runtime", default="auto", help="procedural renderer runtime (auto: compiled when prepared)")
    parser.add_argument("--idle-s", type=float, default=30.0)
    parser.add_argument("--llm-threads", type=int, default=1)
    parser.add_argument("--llm-nice", type=int, default=10, help="0 on a machine shared with other busy processes: "
                        "at nice 10 the server starves behind them")
    parser.add_argument("--frame-nice", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "llm.json")
    args = parser.parse_args()
    reason = missing()
    if reason:
        sys.exit(f"benchmarks/llm.py needs the real server: {reason}")
    report = asyncio.run(main(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\n{'prompt':8s} {'hit rate':>9s} {'reused':>7s} {'ttft med':>9s} {'audio med':>10s} {'ttft max':>9s}")
    for style, run in report["runs"].items():
        s = run["summary"]
        print(f"{style:8s} {s['hit_rate_after_5']:9.0%} {s['reused_tokens_after_5']:7.0%} "
              f"{s['ttft_median_s_after_5']:8.2f}s {s['first_audio_median_s_after_5']:9.2f}s {s['ttft_max_s']:8.2f}s")
    stable, sliding = report["runs"]["stable"]["summary"], report["runs"]["sliding"]["summary"]
    if stable["ttft_median_s_after_5"]:
        print(f"ttft ratio sliding/stable (turns 6+): "
              f"{sliding['ttft_median_s_after_5'] / stable['ttft_median_s_after_5']:.2f}x")
    f = report["frames"]
    print(f"\nlate frames at {f['width']}x{f['height']}@30 ({f['renderer']}, frame nice {f['frame_nice']}):")
    for w in f["windows"]:
        print(f"  {w['window']:15s} {w['late_frames']:5d} of {w['frames']:6d} ({w['late_pct']:.2f} %)")
