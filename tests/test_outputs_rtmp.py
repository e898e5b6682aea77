"""Broadcast outputs against real servers: nginx-rtmp on 127.0.0.1, a PyAV UDP reader, ffprobe."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from engine.clock import FrameClock, TimeBase
from streamer.events import SinkChanged
from streamer.outputs.encoder import EncoderSettings
from streamer.outputs.file_sink import SegmentedFileSink
from streamer.outputs.hub import OutputHub
from streamer.outputs.rtmp_sink import RtmpSink
from streamer.outputs.udp_sink import UdpSink
from tests.media import ffprobe, stream_summary
from tests.rtmp_support import NginxRtmp, have_nginx_rtmp

W, H, FPS, RATE = 320, 240, 30, 48000
SPF = RATE // FPS
KEY = "s3cr3t-key"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe not installed"),
]


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[NginxRtmp]:
    if not have_nginx_rtmp():
        pytest.skip("nginx with the rtmp module is not installed (apt-get install nginx libnginx-mod-rtmp)")
    server = NginxRtmp(tmp_path / "nginx")
    server.start()
    yield server
    server.stop()


def _settings() -> EncoderSettings:
    return EncoderSettings(width=W, height=H, timebase=TimeBase(FPS, RATE), keyframe_seconds=2.0)


def _frame(n: int, flash_at: int | None) -> np.ndarray:
    """Dark moving gradient; pure white from ``flash_at`` on."""
    if flash_at is not None and n >= flash_at:
        return np.full((H, W, 3), 255, np.uint8)
    x = (np.arange(W, dtype=np.int32)[None, :] + 4 * n) % 64
    return np.repeat(np.broadcast_to(x, (H, W))[..., None], 3, axis=2).astype(np.uint8)


def _audio(n: int, flash_at: int | None) -> np.ndarray:
    """Silence; a 1 kHz tone from sample ``flash_at * SPF`` on (the same instant as the flash)."""
    if flash_at is None or n < flash_at:
        return np.zeros(SPF, np.float32)
    t = (np.arange(SPF) + n * SPF) / RATE
    return (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)


def _first_packet_times(path: Path) -> dict[str, float]:
    info = ffprobe(path, "-show_streams", "-show_packets")
    kinds = {s["index"]: s["codec_type"] for s in info["streams"]}
    first: dict[str, float] = {}
    for p in info["packets"]:
        kind = kinds[p["stream_index"]]
        first[kind] = min(first.get(kind, 1e9), float(p["pts_time"]))
    return first


def _onsets(path: Path) -> tuple[float, float]:
    """(first white video frame time, first loud audio sample time), decoded with PyAV."""
    t_video = t_audio = None
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            if frame.to_ndarray(format="gray").mean() > 200:
                t_video = float(frame.time)
                break
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            samples = np.abs(frame.to_ndarray()).max(axis=0)
            loud = np.flatnonzero(samples > 0.1)
            if loud.size:
                t_audio = float(frame.time) + loud[0] / frame.sample_rate
                break
    assert t_video is not None and t_audio is not None, "flash or tone not found in the recording"
    return t_video, t_audio


def _link_state(event: object, record: Callable[[str], object]) -> None:
    """A network sink's `publish`: record the state of each SinkChanged it sends."""
    assert isinstance(event, SinkChanged), event
    record(event.state)


def _push_virtual(nginx: NginxRtmp, seconds: int, flash_at: int | None) -> Path:
    """Push a show in virtual time; the buffer holds it all since encoding outruns the network
    (``resume="buffered"``: nothing that was encoded before the link came up is dropped)."""
    states: list[str] = []
    sink = RtmpSink(f"rtmp://127.0.0.1:{nginx.port}/live", KEY, buffer_seconds=seconds + 10,
                    drain_seconds=60, publish=lambda e: _link_state(e, states.append), resume="buffered")
    with OutputHub(_settings(), [sink]) as hub:
        for n in range(seconds * FPS):
            hub.submit(n, _frame(n, flash_at), _audio(n, flash_at))
    assert hub.stats().sinks[sink.name].state == "closed"
    assert states[:2] == ["connecting", "live"], states
    assert sink.status.packets_dropped == 0
    nginx.stop()  # closes the recording
    files = nginx.recordings()
    assert len(files) == 1, files
    return files[0]


def test_rtmp_recording_has_every_frame_and_aligned_starts(nginx: NginxRtmp) -> None:
    path = _push_virtual(nginx, 20, flash_at=None)
    streams = stream_summary(path)
    assert streams["video"]["codec_name"] == "h264"
    assert streams["audio"]["codec_name"] == "aac"
    assert int(streams["video"]["nb_read_frames"]) == 20 * FPS
    first = _first_packet_times(path)
    assert abs(first["video"] - first["audio"]) <= 1 / FPS, first


def test_rtmp_av_sync_flash_and_tone(nginx: NginxRtmp) -> None:
    k = 95  # not on a keyframe, not on an AAC frame boundary
    path = _push_virtual(nginx, 6, flash_at=k)
    t_video, t_audio = _onsets(path)
    first = _first_packet_times(path)
    print(f"flash {t_video * 1000:.1f} ms, tone {t_audio * 1000:.1f} ms, offset {(t_audio - t_video) * 1000:+.1f} ms")
    # The recording is rebased, so compare both onsets with each other and with frame k.
    assert abs(t_video - t_audio) <= 1 / FPS, (t_video, t_audio)
    assert abs((t_video - first["video"]) - k / FPS) <= 1 / FPS / 2


def test_rtmp_reconnects_after_server_restart_and_pipeline_never_stops(nginx: NginxRtmp, tmp_path: Path) -> None:
    seconds, down_at, up_at = 20, 5 * FPS, 10 * FPS
    events: list[tuple[float, str]] = []
    sink = RtmpSink(f"rtmp://127.0.0.1:{nginx.port}/live", KEY, backoff_initial=0.5, backoff_max=2.0,
                    publish=lambda e: _link_state(e, lambda s: events.append((time.monotonic(), s))))
    record = SegmentedFileSink(tmp_path / "rec", segment_seconds=1000)
    clock = FrameClock(TimeBase(FPS, RATE))  # live pacing: the outage must take wall time
    restarted_at = 0.0
    with OutputHub(_settings(), [sink, record]) as hub:
        clock.start()
        for n in range(seconds * FPS):
            clock.wait_for(n)
            if n == down_at:
                nginx.stop()
            if n == up_at:
                nginx.start()
                restarted_at = time.monotonic()
            hub.submit(n, _frame(n, None), _audio(n, None))
    stats = hub.stats()
    assert stats.frames_encoded == seconds * FPS
    assert stats.sinks[sink.name].state == "closed" and stats.sinks[record.name].state == "closed"
    # The parallel recording has every frame: the outage never reached the pipeline.
    assert int(stream_summary(record.segments[0])["video"]["nb_read_frames"]) == seconds * FPS
    # Dead connection detected, reconnected within 10 s of the server coming back.
    states = [s for _, s in events]
    assert "reconnecting" in states and sink.status.reconnects >= 1, states
    back = [t for t, s in events if s == "live" and t > restarted_at]
    assert back, events
    reconnect_s = back[0] - restarted_at
    print(f"reconnected {reconnect_s:.2f}s after restart; states {states}")
    assert reconnect_s <= 10
    nginx.stop()
    files = nginx.recordings()
    assert len(files) >= 2, files
    second = stream_summary(files[-1])
    assert second["video"]["codec_name"] == "h264" and second["audio"]["codec_name"] == "aac"
    frames_after = seconds * FPS - round((back[0] - restarted_at) * FPS) - up_at
    assert int(second["video"]["nb_read_frames"]) >= frames_after, (second["video"]["nb_read_frames"], frames_after)
    with av.open(str(files[-1])) as c:
        decoded = sum(1 for _ in c.decode(video=0))
    assert decoded == int(second["video"]["nb_read_frames"])


def test_udp_mpegts_reader_decodes_h264() -> None:
    port = _free_port(socket.SOCK_DGRAM)
    decoded: list[tuple[int, int, str]] = []
    opened = threading.Event()

    def read() -> None:
        with av.open(f"udp://127.0.0.1:{port}", format="mpegts", timeout=15) as c:
            opened.set()
            for frame in c.decode(video=0):
                decoded.append((frame.width, frame.height, c.streams.video[0].codec_context.name))
                if len(decoded) >= 30:
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    sink = UdpSink(f"udp://127.0.0.1:{port}")
    settings = EncoderSettings(width=W, height=H, timebase=TimeBase(FPS, RATE), keyframe_seconds=1.0)
    clock = FrameClock(TimeBase(FPS, RATE))
    with OutputHub(settings, [sink]) as hub:
        clock.start()
        for n in range(4 * FPS):  # live pacing: UDP has no backpressure, a burst would overflow the reader
            clock.wait_for(n)
            hub.submit(n, _frame(n, None), _audio(n, None))
        st = hub.stats().sinks[sink.name]  # what status, panel and metrics show for a network output
        assert st.state == "live" and st.link is not None and st.link["packets_sent"] > 0, st
    reader.join(15)
    assert len(decoded) >= 30, len(decoded)
    assert decoded[0] == (W, H, "h264")


def test_srt_without_libsrt_is_a_clear_error() -> None:
    from streamer.outputs.network_sink import ffmpeg_protocols

    protocols = ffmpeg_protocols()
    assert protocols is not None and "udp" in protocols and "rtmp" in protocols
    if "srt" in protocols:
        pytest.skip("this FFmpeg has SRT")
    with pytest.raises(RuntimeError, match="no 'srt' protocol"):
        UdpSink("srt://127.0.0.1:9000")


def test_stream_key_is_masked_in_names() -> None:
    sink = RtmpSink("rtmp://live.twitch.tv/app", KEY)
    assert KEY not in sink.name and KEY not in sink.masked_url
    assert sink.masked_url == "rtmp://live.twitch.tv/app/****"

