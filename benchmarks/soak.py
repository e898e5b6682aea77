"""Soak: the whole show in virtual time for many stream hours — no drift, no growth, same face.

Runs the real Show (replayed chat every 3 s in three languages, director, scripted brain, espeak,
timeline, animator, procedural renderer at a reduced size, H.264/AAC encoding, segmented files)
and checks what "unlimited duration" promises:
  - video frames = hours × 3600 × fps and audio samples = frames × R/F, exactly;
  - packet timestamps continuous across the whole run and across segment files (no gaps, no dups);
  - RSS sampled every simulated hour; growth after the first hour stays small;
  - the neutral-state frame rendered at the end is identical to the one rendered at the start.

    python benchmarks/soak.py --hours 24          # the full soak (hours of wall time on 2 cores)
    python benchmarks/soak.py --hours 1           # what CI runs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.state import neutral_state
from streamer.attachments import build_attachments
from streamer.config import parse_config
from streamer.events import FrameTick
from streamer.outputs.encoder import AUDIO_INDEX, VIDEO_INDEX
from streamer.show import Show

RESULTS = Path(__file__).resolve().parent / "results" / "soak.json"
CHAT = [
    ("alex", "Hello! How are you?"), ("小明", "你好！你叫什么名字？"), ("ゆき", "こんにちは！元気ですか？"),
    ("sam", "What do you like?"), ("莉莉", "我今天有点累。"), ("taro", "好きな食べ物は何ですか？"),
    ("jordan", "wow amazing stream"), ("mia", "where are you from?"), ("kai", "good night, see you"),
]


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class PtsChecker:
    """A packet sink that checks every packet continues the previous one exactly."""

    name = "pts-checker"

    def __init__(self) -> None:
        self.next_pts: dict[int, int] = {}
        self.gaps = 0
        self.duplicates = 0
        self.video_packets = 0
        self.audio_samples = 0

    def start(self, encoder: object) -> None:
        pass

    def write(self, packet: av.Packet) -> None:
        index, pts, duration = packet.stream_index, packet.pts, packet.duration or 0
        if index == VIDEO_INDEX:
            self.video_packets += 1
            duration = 1
        elif index == AUDIO_INDEX:
            self.audio_samples += duration
        expected = self.next_pts.get(index)
        if expected is not None and pts != expected:
            if pts < expected:
                self.duplicates += 1
            else:
                self.gaps += 1
        self.next_pts[index] = pts + duration

    def close(self) -> None:
        pass


def check_files(files: list[Path], fps: int) -> dict[str, int]:
    """Demux every segment in order: video timestamps must run 0, 1, 2, ... across all files."""
    expected, gaps, dups, frames = 0, 0, 0, 0
    for path in files:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                n = round(Fraction(packet.pts) * stream.time_base * fps)
                frames += 1
                if n > expected:
                    gaps += 1
                elif n < expected:
                    dups += 1
                expected = n + 1
    return {"file_frames": frames, "file_pts_gaps": gaps, "file_pts_duplicates": dups}


def write_chat(path: Path, interval_s: float) -> None:
    lines = [json.dumps({"t": 1.0 + i * interval_s, "user": u, "text": t}, ensure_ascii=False)
             for i, (u, t) in enumerate(CHAT)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(hours: float, width: int, height: int, fps: int, interval_s: float, segment_minutes: float,
        keep: Path | None, rss_every_minutes: float = 60.0, settle_minutes: float = 60.0,
        appearance: str = "procedural") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = keep or Path(tmp)
        chat = folder / "soak-chat.jsonl"
        write_chat(chat, interval_s)
        config = parse_config({
            "video": {"width": width, "height": height, "fps": fps},
            "show": {"mode": "virtual", "duration_s": hours * 3600},
            "chat": {"sources": [{"type": "replay", "path": str(chat), "loop": True, "loop_gap_s": interval_s}]},
            "director": {"cooldown_s": 1.0, "queue_cap": 5},
            "character": {"appearance": appearance, "memory": {"path": str(folder / "memory.db")}},
            "panel": {"enabled": False},
            "outputs": {"encoder": {"preset": "ultrafast", "video_bitrate_kbps": 150, "audio_bitrate_kbps": 48},
                        "recording": {"directory": str(folder / "rec"), "segment_minutes": segment_minutes}},
        })
        checker = PtsChecker()
        show = Show(config, extra_sinks=[checker])
        show.attach(*build_attachments(config, show.clock))
        first = show.parts.renderer.render(neutral_state().unsqueeze(0)).numpy().tobytes()
        frames_per_sample = round(rss_every_minutes * 60 * fps)
        rss: list[dict[str, float]] = [{"minute": 0, "hour": 0, "rss_mb": round(rss_mb(), 1)}]
        audio_samples = [0]

        def on_frame(tick: FrameTick) -> None:
            audio_samples[0] += tick.samples
            n = tick.n
            if (n + 1) % frames_per_sample == 0:
                minute = round((n + 1) / (60 * fps), 2)
                rss.append({"minute": minute, "hour": round(minute / 60, 3), "rss_mb": round(rss_mb(), 1)})
                print(f"  minute {minute:g}: rss {rss[-1]['rss_mb']} MB, late {show.loop.stats.late_frames}, "
                      f"wall {time.perf_counter() - t0:.0f} s", flush=True)

        t0 = time.perf_counter()
        show.control.subscribe(on_frame, FrameTick, inline=True)
        code = asyncio.run(show.run())
        wall = time.perf_counter() - t0
        last = show.parts.renderer.render(neutral_state().unsqueeze(0)).numpy().tobytes()
        files = sorted((folder / "rec").glob("*.mkv"))
        file_check = check_files(files, fps)
        frames = show.loop.stats.frames
        settled = [r["rss_mb"] for r in rss if r["minute"] >= settle_minutes]  # after warm-up
        return {
            "exit_code": code,
            "stream_hours": hours,
            "fps": fps,
            "size": [width, height],
            "appearance": appearance,
            "wall_s": round(wall, 1),
            "speed_x_realtime": round(hours * 3600 / wall, 1),
            "video_frames": frames,
            "expected_video_frames": round(hours * 3600 * fps),
            "audio_samples": audio_samples[0],
            "encoded_audio_samples": checker.audio_samples,
            "expected_audio_samples": frames * show.timebase.samples_per_frame,
            "pts_gaps": checker.gaps + file_check["file_pts_gaps"],
            "pts_duplicates": checker.duplicates + file_check["file_pts_duplicates"],
            **file_check,
            "segments": len(files),
            "late_frames": show.loop.stats.late_frames,
            "speech_turns": show.director.finished["done"],
            "turns_by_status": dict(show.director.finished),
            "rss_mb": rss,
            "rss_settle_minutes": settle_minutes,
            "rss_growth_mb": round(max(settled) - settled[0], 1) if settled else None,
            "identity_equal": first == last,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--height", type=int, default=72)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--chat-interval", type=float, default=3.0)
    parser.add_argument("--segment-minutes", type=float, default=10.0)
    parser.add_argument("--rss-every-minutes", type=float, default=60.0, help="sample RSS this often (stream time)")
    parser.add_argument("--settle-minutes", type=float, default=60.0,
                        help="RSS growth is measured from the sample at this stream minute on")
    parser.add_argument("--appearance", choices=["procedural", "sprites"], default="procedural",
                        help="the appearance to soak (sprites: the shipped demo pack)")
    parser.add_argument("--keep", type=Path, default=None, help="keep recordings in this folder")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = run(args.hours, args.width, args.height, args.fps, args.chat_interval, args.segment_minutes, args.keep,
                 args.rss_every_minutes, args.settle_minutes, args.appearance)
    for key in ("stream_hours", "video_frames", "expected_video_frames", "audio_samples", "expected_audio_samples",
                "pts_gaps", "pts_duplicates", "segments", "late_frames", "speech_turns", "rss_growth_mb",
                "identity_equal", "wall_s", "speed_x_realtime"):
        print(f"{key:>24}: {result[key]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    ok = (result["video_frames"] == result["expected_video_frames"]
          and result["audio_samples"] == result["expected_audio_samples"]
          and result["pts_gaps"] == 0 and result["pts_duplicates"] == 0 and result["identity_equal"])
    sys.exit(0 if ok and result["exit_code"] == 0 else 1)


if __name__ == "__main__":
    main()
