"""MPEG-TS over UDP (or SRT) for an OBS Media Source on the same machine or LAN.

OBS: add a Media Source, untick "Local File", Input ``udp://127.0.0.1:PORT``, Input Format
``mpegts``. UDP needs no handshake, so PyAV's in-process ``avio_open`` cannot hang here; the
own-thread pattern of :class:`ThreadedMuxSink` still keeps a slow send off the hub thread.
SRT needs an FFmpeg built with libsrt; PyAV's bundled FFmpeg has none, which is reported at
construction with what to do instead.
"""

from __future__ import annotations

import logging

import av

from .encoder import AUDIO_INDEX, VIDEO_INDEX, AVEncoder
from .network_sink import Publish, ThreadedMuxSink, ffmpeg_protocols, mask_url

log = logging.getLogger("stagecast.outputs.udp")


class _TsConnection:
    """An MPEG-TS muxer writing straight to the UDP/SRT URL."""

    def __init__(self, encoder: AVEncoder, url: str) -> None:
        self.out = av.open(url, "w", format="mpegts")
        try:
            video, audio = encoder.add_streams(self.out)
        except Exception:
            self.out.close()
            raise
        self.streams = {VIDEO_INDEX: video, AUDIO_INDEX: audio}

    def send(self, packet: av.Packet) -> None:
        packet.stream = self.streams[packet.stream_index]
        self.out.mux_one(packet)

    def check(self) -> None:
        """UDP has no connection to lose; send errors surface from :meth:`send`."""

    def ready(self) -> bool:
        return True

    def close(self) -> None:
        try:
            self.out.close()
        except Exception:
            log.debug("udp: closing the muxer failed", exc_info=True)


class UdpSink(ThreadedMuxSink):
    """Send the shared packets as MPEG-TS to ``udp://host:port`` or ``srt://host:port``.

    ``pkt_size=1316`` (7 TS packets, fits a 1500-byte MTU) is added to UDP URLs that lack it.
    """

    def __init__(
        self,
        url: str,
        buffer_seconds: float = 2.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        name: str | None = None,
        publish: Publish | None = None,
    ) -> None:
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in ("udp", "srt"):
            raise ValueError(f"url must start with udp:// or srt://, got {mask_url(url)!r}")
        protocols = ffmpeg_protocols(output=True)
        if protocols is not None and scheme not in protocols:
            raise RuntimeError(
                f"the FFmpeg inside PyAV {av.__version__} has no {scheme!r} protocol; use udp:// "
                "or install PyAV built against a system FFmpeg with libsrt "
                "(pip install av --no-binary av)"
            )
        if scheme == "udp" and "pkt_size=" not in url:
            url += ("&" if "?" in url else "?") + "pkt_size=1316"
        self.url = url
        super().__init__(name or f"{scheme}:{mask_url(url)}", buffer_seconds, backoff_initial, backoff_max,
                         publish, drain_seconds=1.0)

    def _connect(self, encoder: AVEncoder) -> _TsConnection:
        return _TsConnection(encoder, self.url)
