"""End-to-end checks of encoder -> hub -> segmented recording, verified with ffprobe."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from engine.clock import TimeBase
from streamer.events import SinkChanged
from streamer.outputs.encoder import VIDEO_INDEX, AVEncoder, EncoderSettings
from streamer.outputs.file_sink import SegmentedFileSink
from streamer.outputs.hub import OutputHub

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe not installed"),
]

W, H, FPS, RATE = 320, 240, 30, 48000
SPF = RATE // FPS


def _settings(**kw: object) -> EncoderSettings:
    return EncoderSettings(width=W, height=H, timebase=TimeBase(FPS, RATE), **kw)  # type: ignore[arg-type]


def _frame(n: int) -> np.ndarray:
    """A moving gradient so x264 has real (but cheap) work."""
    x = (np.arange(W, dtype=np.int32)[None, :] + 4 * n) % 256
    y = np.arange(H, dtype=np.int32)[:, None]
    rgb = np.empty((H, W, 3), np.uint8)
    rgb[..., 0] = x
    rgb[..., 1] = y
    rgb[..., 2] = (x + y) // 2
    return rgb


def _tone(n: int) -> np.ndarray:
    t = (np.arange(SPF) + n * SPF) / RATE
    return (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def _push(hub: OutputHub, frames: int) -> None:
    for n in range(frames):
        hub.submit(n, _frame(n), _tone(n))


def _probe(path: Path) -> dict:
    out = subprocess.run(
        [
            "ffprobe", "-v", "error", "-of", "json", "-count_frames",
            "-show_streams", "-show_packets", "-show_format", str(path),
        ],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return json.loads(out)


def _record(tmp_path: Path, container: str, seconds: int = 20) -> list[Path]:
    sink = SegmentedFileSink(tmp_path, segment_seconds=6, container=container)
    with OutputHub(_settings(keyframe_seconds=2.0), [sink]) as hub:
        _push(hub, seconds * FPS)
    stats = hub.stats()
    assert stats.frames_encoded == seconds * FPS
    assert stats.sinks[sink.name].state == "closed", stats.sinks
    files = sorted(tmp_path.glob(f"stagecast_*.{container}"))
    assert files == sink.segments
    return files


def _check_segments(files: list[Path], total_frames: int) -> None:
    all_video_pts: list[int] = []
    all_audio_times: list[float] = []
    audio_end = Fraction(0)
    video_frames = 0
    for path in files:
        info = _probe(path)
        streams = {s["codec_type"]: s for s in info["streams"]}
        assert streams["video"]["codec_name"] == "h264", path
        assert streams["audio"]["codec_name"] == "aac", path
        assert int(streams["audio"]["sample_rate"]) == RATE
        video_frames += int(streams["video"]["nb_read_frames"])
        vidx, aidx = streams["video"]["index"], streams["audio"]["index"]
        video = [p for p in info["packets"] if p["stream_index"] == vidx]
        audio = [p for p in info["packets"] if p["stream_index"] == aidx]
        video.sort(key=lambda p: float(p["pts_time"]))
        assert video[0]["flags"].startswith("K"), f"{path.name} does not start on a keyframe"
        all_video_pts += [round(float(p["pts_time"]) * FPS) for p in video]
        all_audio_times += sorted(float(p["pts_time"]) for p in audio)
        last = max(audio, key=lambda p: float(p["pts_time"]))
        end = Fraction(last["pts_time"]) + Fraction(last["duration_time"])
        audio_end = max(audio_end, end)
    assert video_frames == total_frames
    assert all_video_pts == list(range(total_frames))
    # Audio is contiguous across segment cuts: every AAC frame once, 1024 samples apart
    # (1 ms slack for Matroska's millisecond timestamps).
    steps = np.diff(all_audio_times)
    assert np.all(np.abs(steps - 1024 / RATE) <= 0.0011), steps[np.abs(steps - 1024 / RATE) > 0.0011]
    video_end = Fraction(total_frames, FPS)
    assert abs(audio_end - video_end) <= Fraction(1, FPS), (float(audio_end), float(video_end))


def test_segmented_mkv_recording_is_gapless(tmp_path: Path) -> None:
    files = _record(tmp_path, "mkv")
    # Keyframes every 2 s, cut when >= 6 s elapsed: segments start at 0, 6, 12, 18 s.
    assert len(files) == 4
    _check_segments(files, 20 * FPS)


def test_segmented_mp4_recording_plays(tmp_path: Path) -> None:
    files = _record(tmp_path, "mp4")
    assert len(files) == 4
    _check_segments(files, 20 * FPS)
    # A full decode proves the moov atom was written and the streams play.
    for path in files:
        with av.open(str(path)) as container:
            decoded = sum(1 for _ in container.decode(video=0))
        assert decoded > 0


class _ExplodingSink:
    name = "exploding"

    def __init__(self) -> None:
        self.calls = 0
        self.starts = 0
        self.closed = False

    def start(self, encoder: AVEncoder) -> None:
        self.starts += 1

    def write(self, packet: av.Packet) -> None:
        self.calls += 1
        if self.calls == 5:
            raise OSError("disk on fire")

    def close(self) -> None:
        self.closed = True


class _CollectingSink:
    name = "collector"

    def __init__(self) -> None:
        self.packets: list[tuple[int, int]] = []
        self.started_with: AVEncoder | None = None
        self.closed = False

    def start(self, encoder: AVEncoder) -> None:
        self.started_with = encoder

    def write(self, packet: av.Packet) -> None:
        self.packets.append((packet.stream_index, packet.pts))

    def close(self) -> None:
        self.closed = True


def test_failing_sink_is_restarted_and_others_continue(caplog: pytest.LogCaptureFixture) -> None:
    bad, good = _ExplodingSink(), _CollectingSink()
    events: list[SinkChanged] = []
    hub = OutputHub(_settings(), [bad, good], queue_frames=2, publish=events.append)
    hub.open()
    _push(hub, 60)
    # keep the stream going (in real time) until the failed sink has been started again and writes
    deadline, n = time.monotonic() + 15, 60
    while (bad.starts < 2 or bad.calls < 10) and time.monotonic() < deadline:
        hub.submit(n, _frame(n), _tone(n))
        n += 1
        time.sleep(1 / FPS)
    hub.close()
    hub.close()  # idempotent
    stats = hub.stats()
    assert bad.starts == 2 and bad.calls >= 10, (bad.starts, bad.calls)  # restarted, and wrote again
    assert stats.sinks["exploding"].restarts == 1
    states = [(e.state, e.detail) for e in events if e.name == "exploding"]
    assert states == [("degraded", "OSError: disk on fire"), ("ok", ""), ("closed", "")], states
    assert stats.sinks["exploding"].state == "closed" and bad.closed
    assert stats.sinks["collector"].state == "closed" and good.closed
    assert good.started_with is hub.encoder
    video = [pts for idx, pts in good.packets if idx == VIDEO_INDEX]
    assert video == list(range(n))  # the other sink got every frame
    assert stats.sinks["collector"].packets == len(good.packets)
    assert any("exploding" in r.getMessage() and r.exc_info for r in caplog.records)
    with pytest.raises(RuntimeError):
        hub.submit(60, _frame(60), _tone(60))


def test_bad_frame_is_dropped_without_desyncing_audio() -> None:
    good = _CollectingSink()
    with OutputHub(_settings(), [good]) as hub:
        for n in range(30):
            rgb = np.zeros((10, 10, 3), np.uint8) if n == 10 else _frame(n)
            hub.submit(n, rgb, _tone(n))
    assert hub.stats().encode_errors == 1
    video = [pts for idx, pts in good.packets if idx == VIDEO_INDEX]
    assert video == [n for n in range(30) if n != 10]
    audio = [pts for idx, pts in good.packets if idx != VIDEO_INDEX and pts >= 0]
    assert audio == [i * 1024 for i in range(len(audio))]
    assert audio[-1] + 1024 >= 30 * SPF


def test_retention_keeps_newest_files(tmp_path: Path) -> None:
    sink = SegmentedFileSink(tmp_path, segment_seconds=2, max_files=2)
    with OutputHub(_settings(keyframe_seconds=1.0), [sink]) as hub:
        _push(hub, 10 * FPS)
    assert len(sink.segments) == 5
    remaining = sorted(tmp_path.glob("stagecast_*.mkv"))
    assert remaining == sink.segments[-2:]


def test_encoder_timestamps_follow_time_model() -> None:
    enc = AVEncoder(_settings(keyframe_seconds=1.0))
    packets: list[av.Packet] = []
    for n in range(45):
        packets += enc.encode(n, _frame(n), _tone(n))
    packets += enc.flush()
    enc.close()
    video = [p for p in packets if p.stream_index == VIDEO_INDEX]
    audio = [p for p in packets if p.stream_index != VIDEO_INDEX]
    assert [p.pts for p in video] == list(range(45))
    assert [p.pts for p in video if p.is_keyframe] == [0, 30]
    assert all(p.time_base == Fraction(1, FPS) for p in video)
    assert all(p.time_base == Fraction(1, RATE) for p in audio)
    real = [p for p in audio if p.pts >= 0]  # the AAC priming packet sits at -1024
    assert [p.pts for p in real] == [i * 1024 for i in range(len(real))]
    assert real[-1].pts + real[-1].duration == 45 * SPF
    times = [p.pts * p.time_base for p in packets]
    assert times == sorted(times)
