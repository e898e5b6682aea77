"""Frame sinks on the output hub, and the virtual camera's no-device message (no v4l2 device needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.clock import TimeBase
from streamer.outputs.encoder import EncoderSettings
from streamer.outputs.file_sink import SegmentedFileSink
from streamer.outputs.hub import OutputHub
from streamer.outputs.vcam_sink import VirtualCameraError, VirtualCameraSink, no_device_hint
from tests.media import stream_summary

pytestmark = pytest.mark.integration
W, H, FPS = 160, 120, 30


class _FrameRecorder:
    """A real frame sink: keeps (n, mean brightness) of every frame it was handed."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[int, float]] = []
        self.closed = False

    def write_frame(self, n: int, rgb: np.ndarray) -> None:
        self.seen.append((n, float(rgb.mean())))

    def close(self) -> None:
        self.closed = True


def _has_loopback_device() -> bool:
    return any(Path("/sys/devices/virtual/video4linux").glob("video*"))


def test_frame_sinks_get_every_frame_and_a_broken_camera_does_not_stop_recording(tmp_path: Path) -> None:
    recorder = _FrameRecorder()
    camera = VirtualCameraSink(W, H, FPS)  # no device here: fails on the first frame, gets disabled
    if _has_loopback_device():
        pytest.skip("a v4l2 loopback device exists; this test needs it absent")
    record = SegmentedFileSink(tmp_path)
    settings = EncoderSettings(width=W, height=H, timebase=TimeBase(FPS))
    with OutputHub(settings, [record], frame_sinks=[camera, recorder]) as hub:
        for n in range(60):
            hub.submit(n, np.full((H, W, 3), n, np.uint8), np.zeros(1600, np.float32))
    stats = hub.stats().sinks
    assert [n for n, _ in recorder.seen] == list(range(60))
    assert [round(m) for _, m in recorder.seen] == list(range(60))
    assert recorder.closed and stats["recorder"].state == "closed" and stats["recorder"].packets == 60
    assert stats["vcam"].state == "disabled"
    assert "v4l2loopback" in (stats["vcam"].error or "") or "pip install" in (stats["vcam"].error or "")
    assert int(stream_summary(record.segments[0])["video"]["nb_read_frames"]) == 60


def test_no_device_message_says_how_to_create_one() -> None:
    if _has_loopback_device():
        pytest.skip("a v4l2 loopback device exists")
    with pytest.raises(VirtualCameraError) as err:
        VirtualCameraSink(W, H, FPS).open()
    message = str(err.value)
    try:
        import pyvirtualcam  # noqa: F401
    except ImportError:
        assert "pip install 'stagecast[vcam]'" in message
    else:
        assert message.startswith(no_device_hint())
        assert "modprobe v4l2loopback devices=1 exclusive_caps=1" in message
