"""Build the configured sinks. Secrets (stream keys) are read from the environment here and
nowhere else; a missing key is an error that names the variable, never the value."""

from __future__ import annotations

import os

from streamer.config import ConfigError, StagecastConfig
from streamer.outputs.file_sink import SegmentedFileSink
from streamer.outputs.network_sink import Publish
from streamer.outputs.rtmp_sink import RtmpSink
from streamer.outputs.sink import FrameSink, PacketSink
from streamer.outputs.udp_sink import UdpSink
from streamer.outputs.vcam_sink import VirtualCameraSink


def build_sinks(config: StagecastConfig, publish: Publish | None = None) -> tuple[list[PacketSink], list[FrameSink]]:
    """(packet sinks, frame sinks) for the config; network sinks publish their link changes."""
    sinks: list[PacketSink] = []
    frame_sinks: list[FrameSink] = []
    rec = config.outputs.recording
    if rec.enabled:
        sinks.append(SegmentedFileSink(rec.directory, prefix=rec.prefix, segment_seconds=rec.segment_minutes * 60,
                                       container=rec.container, max_files=rec.max_files, max_bytes=rec.max_bytes))
    for i, rtmp in enumerate(config.outputs.rtmp):
        key = None
        if rtmp.stream_key_env:
            key = os.environ.get(rtmp.stream_key_env)
            if not key:
                raise ConfigError(f"outputs.rtmp[{i}].stream_key_env: environment variable {rtmp.stream_key_env} "
                                  "is not set (export the stream key there, or set stream_key_env: null)")
        sinks.append(RtmpSink(rtmp.url, key, buffer_seconds=rtmp.buffer_seconds, name=f"rtmp{i}", publish=publish,
                              resume=rtmp.resume))
    for udp in config.outputs.udp:
        sinks.append(UdpSink(udp.url, publish=publish))
    cam = config.outputs.virtual_camera
    if cam.enabled:
        frame_sinks.append(VirtualCameraSink(config.video.width, config.video.height, config.video.fps, cam.device))
    return sinks, frame_sinks
