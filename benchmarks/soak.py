"""Soak: the whole show in virtual time for many stream hours — no drift, no growth, same face.

Runs the real Show (replayed chat every 3 s in three languages, director, scripted brain, espeak,
timeline, animator, procedural renderer at a reduced size, H.264/AAC encoding, segmented files)
and checks what "unlimited duration" promises, on the state that could drift:
  - video frames = hours × 3600 × fps and audio samples = frames × R/F, exactly, and the timeline's own
    sample counter (its playhead) agrees with both;
  - packet timestamps continuous across the whole run and across segment files (no gaps, no dups);
  - RSS sampled every simulated hour; growth after the first hour stays small;
  - the sizes that could grow without bound — long-term memory (rows, bytes), the moderator's
    per-viewer tables and decision log, the director's history and queue, what the timeline holds —
    sampled with RSS: they stay within their caps and flat after warm-up;
  - once the last reply has played out, the show's animator and timeline give exactly the idle state a
    fresh animator and timeline give for the same frame (no emotion, viseme or pose left behind).
Virtual time never waits, so it cannot have late frames; `--live-seconds` then runs the same show in
live mode (real time) and counts its late frames.

    python benchmarks/soak.py --hours 24 --live-seconds 600   # the full soak (hours of wall time on 2 cores)
    python benchmarks/soak.py --hours 1 --live-seconds 60     # what CI runs
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
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.animator import Animator
from engine.timeline import Timeline
from streamer.attachments import build_attachments
from streamer.config import StagecastConfig, parse_config
from streamer.events import FrameTick
from streamer.moderation.moderator import NAME_CACHE
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


def sizes(show: Show) -> dict[str, int]:
    """What could grow without bound over a long show (called on the frame thread, between frames)."""
    moderator, director = show.parts.moderator, show.director
    out = {
        **{f"moderator_{k}": v for k, v in moderator.sizes().items()},
        "history": len(director.history), "completed_turns": len(director.completed),
        "waiting_turns": len(director.scheduler._waiting),
        "timeline_speeches": len(show.timeline._speeches), "timeline_cues": len(show.timeline._cues),
    }
    memory = show.parts.memory
    if memory is not None:
        out |= {f"memory_{k}": v for k, v in memory.counts().items()} | {"memory_bytes": memory.size_bytes()}
    return out


def caps(show: Show) -> dict[str, int]:
    """The configured bound of each size that has one."""
    c = show.config
    memory = c.character.memory
    return {"moderator_users": c.moderation.tracked_users, "moderator_decisions": c.moderation.decision_log_size,
            "history": show.director.history.maxlen or 0, "completed_turns": show.director.completed.maxlen or 0,
            "waiting_turns": c.director.queue_cap, "memory_viewers": memory.max_viewers,
            "memory_summaries": memory.max_summaries, "memory_bytes": memory.max_bytes,
            "moderator_seen": c.moderation.tracked_users, "moderator_pasta": c.moderation.tracked_users,
            "moderator_names": NAME_CACHE,
            "memory_turns": memory.window_turns + 100,  # folded into summaries in batches, when a prune is due
            "timeline_speeches": 64, "timeline_cues": 64}


def idle_state_matches(show: Show, fps: int, seed: int, max_seconds: float = 60.0) -> tuple[bool, int]:
    """After the show: cut what is still playing, play on until the timeline is idle, then compare the
    show's animator state with a fresh animator's on a fresh timeline at the same frame."""
    timeline = show.timeline
    timeline.cut()
    n = timeline.next_frame
    for n in range(timeline.next_frame, timeline.next_frame + int(max_seconds * fps)):
        inputs = timeline.pull(n)
        if not inputs.speaking and not timeline._speeches and not timeline._cues:
            break
    n += 1
    mine = show.parts.animator.state(timeline.pull(n))
    fresh = Animator(fps, seed=seed).state(Timeline(show.timebase).pull(n))
    return bool(torch.equal(mine, fresh)), n


def live_slice(seconds: float, width: int, height: int, fps: int, interval_s: float, appearance: str) -> dict:
    """The same show in live mode for `seconds` of real time: the late-frame count means something here."""
    with tempfile.TemporaryDirectory() as tmp:
        config = show_config(Path(tmp), "live", seconds, width, height, fps, interval_s, 10.0, appearance)
        show = Show(config)
        show.attach(*build_attachments(config, show.clock))
        t0 = time.perf_counter()
        code = asyncio.run(show.run())
        stats = show.loop.stats
        return {"exit_code": code, "seconds": seconds, "wall_s": round(time.perf_counter() - t0, 1),
                "frames": stats.frames, "late_frames": stats.late_frames,
                "late_ratio": round(stats.late_frames / max(1, stats.frames), 4),
                "speech_turns": show.director.finished["done"]}


def show_config(folder: Path, mode: str, seconds: float, width: int, height: int, fps: int, interval_s: float,
                segment_minutes: float, appearance: str) -> StagecastConfig:
    chat = folder / "soak-chat.jsonl"
    write_chat(chat, interval_s)
    return parse_config({
        "video": {"width": width, "height": height, "fps": fps},
        "show": {"mode": mode, "duration_s": seconds},
        "chat": {"sources": [{"type": "replay", "path": str(chat), "loop": True, "loop_gap_s": interval_s}]},
        "director": {"cooldown_s": 1.0, "queue_cap": 5},
        "character": {"appearance": appearance, "memory": {"path": str(folder / "memory.db")}},
        "panel": {"enabled": False},
        "outputs": {"encoder": {"preset": "ultrafast", "video_bitrate_kbps": 150, "audio_bitrate_kbps": 48},
                    "recording": {"directory": str(folder / "rec"), "segment_minutes": segment_minutes}},
    })


def run(hours: float, width: int, height: int, fps: int, interval_s: float, segment_minutes: float,
        keep: Path | None, rss_every_minutes: float = 60.0, settle_minutes: float = 60.0,
        appearance: str = "procedural") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = keep or Path(tmp)
        config = show_config(folder, "virtual", hours * 3600, width, height, fps, interval_s, segment_minutes,
                             appearance)
        checker = PtsChecker()
        show = Show(config, extra_sinks=[checker])
        show.attach(*build_attachments(config, show.clock))
        frames_per_sample = round(rss_every_minutes * 60 * fps)
        rss: list[dict[str, float]] = [{"minute": 0, "hour": 0, "rss_mb": round(rss_mb(), 1)}]
        size_samples: list[dict[str, float]] = []
        audio_samples = [0]

        def on_frame(tick: FrameTick) -> None:
            audio_samples[0] += tick.samples
            n = tick.n
            if (n + 1) % frames_per_sample == 0:
                minute = round((n + 1) / (60 * fps), 2)
                rss.append({"minute": minute, "hour": round(minute / 60, 3), "rss_mb": round(rss_mb(), 1)})
                size_samples.append({"minute": minute, **sizes(show)})
                print(f"  minute {minute:g}: rss {rss[-1]['rss_mb']} MB, "
                      f"wall {time.perf_counter() - t0:.0f} s", flush=True)

        t0 = time.perf_counter()
        show.control.subscribe(on_frame, FrameTick, inline=True)
        code = asyncio.run(show.run())
        wall = time.perf_counter() - t0
        playhead_samples = show.timeline.next_frame * show.timebase.samples_per_frame
        idle_equal, idle_frame = idle_state_matches(show, fps, config.show.seed)
        files = sorted((folder / "rec").glob("*.mkv"))
        file_check = check_files(files, fps)
        frames = show.loop.stats.frames
        settled = [r["rss_mb"] for r in rss if r["minute"] >= settle_minutes]  # after warm-up
        limits = caps(show)
        over_cap = sorted({k for sample in size_samples for k, v in sample.items() if k in limits and v > limits[k]})
        settled_sizes = [r for r in size_samples if r["minute"] >= settle_minutes]
        # a size without a cap must stay flat after warm-up (a capped one may fill up to its cap)
        growing = sorted(k for k in (settled_sizes[0] if settled_sizes else {})
                         if k != "minute" and k not in limits
                         and max(r[k] for r in settled_sizes) > settled_sizes[0][k])
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
            "timeline_playhead_samples": playhead_samples,
            "encoded_audio_samples": checker.audio_samples,
            "expected_audio_samples": frames * show.timebase.samples_per_frame,
            "pts_gaps": checker.gaps + file_check["file_pts_gaps"],
            "pts_duplicates": checker.duplicates + file_check["file_pts_duplicates"],
            **file_check,
            "segments": len(files),
            "speech_turns": show.director.finished["done"],
            "turns_by_status": dict(show.director.finished),
            "rss_mb": rss,
            "rss_settle_minutes": settle_minutes,
            "rss_growth_mb": round(max(settled) - settled[0], 1) if settled else None,
            "sizes": size_samples,
            "size_caps": limits,
            "sizes_over_cap": over_cap,
            "sizes_growing_after_settle": growing,
            "idle_state_equal": idle_equal,
            "idle_state_frame": idle_frame,
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
    parser.add_argument("--live-seconds", type=float, default=0.0,
                        help="then run the same show live (real time) this long and count late frames")
    parser.add_argument("--keep", type=Path, default=None, help="keep recordings in this folder")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = run(args.hours, args.width, args.height, args.fps, args.chat_interval, args.segment_minutes, args.keep,
                 args.rss_every_minutes, args.settle_minutes, args.appearance)
    if args.live_seconds > 0:
        result["live"] = live_slice(args.live_seconds, args.width, args.height, args.fps, args.chat_interval,
                                    args.appearance)
    for key in ("stream_hours", "video_frames", "expected_video_frames", "audio_samples", "expected_audio_samples",
                "timeline_playhead_samples", "pts_gaps", "pts_duplicates", "segments", "speech_turns",
                "rss_growth_mb", "sizes_over_cap", "sizes_growing_after_settle", "idle_state_equal", "wall_s",
                "speed_x_realtime"):
        print(f"{key:>26}: {result[key]}")
    if "live" in result:
        live = result["live"]
        print(f"{'live late frames':>26}: {live['late_frames']} of {live['frames']} ({100 * live['late_ratio']:.2f} %) "
              f"in {live['seconds']:g} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    ok = (result["video_frames"] == result["expected_video_frames"]
          and result["audio_samples"] == result["expected_audio_samples"]
          and result["timeline_playhead_samples"] == result["audio_samples"]
          and result["pts_gaps"] == 0 and result["pts_duplicates"] == 0 and result["idle_state_equal"]
          and bool(result["sizes"])  # sampled at all: a failing probe leaves this empty
          and not result["sizes_over_cap"] and not result["sizes_growing_after_settle"])
    sys.exit(0 if ok and result["exit_code"] == 0 else 1)


if __name__ == "__main__":
    main()
