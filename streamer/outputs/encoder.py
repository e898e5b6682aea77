"""Encode once (H.264 + AAC) so that every output sink can mux the same packets.

Time model: frame ``n`` is video pts ``n`` in time base ``1/fps`` and carries audio samples
``[n*S, (n+1)*S)`` with ``S = sample_rate // fps``; audio pts are sample indices in ``1/sample_rate``.
Conversion to other time bases happens only when a sink muxes a packet.

PyAV can only copy codec parameters (extradata included) into a new container stream via
``add_stream_from_template(stream)``, which needs a *Stream*, not a bare ``CodecContext``. So the
codec contexts live in a private in-memory Matroska "template" container whose header is written
once (that opens the encoders with the global-header flag and fills ``codecpar``). Sinks then call
:meth:`AVEncoder.add_streams` to create their own streams without opening a second encoder.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np
from av.audio.codeccontext import AudioCodecContext
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType
from av.video.stream import VideoStream

from engine.clock import TimeBase

log = logging.getLogger("stagecast.outputs.encoder")

VIDEO_INDEX = 0
"""``packet.stream_index`` of video packets produced by :class:`AVEncoder`."""
AUDIO_INDEX = 1
"""``packet.stream_index`` of audio packets produced by :class:`AVEncoder`."""


@dataclass
class EncoderSettings:
    """Encoder configuration; defaults target a 2.5 Mbit/s 30 fps live stream."""

    width: int = 1280
    height: int = 720
    timebase: TimeBase = field(default_factory=TimeBase)  # the show's clock: F fps, R Hz, R/F checked there
    video_codec: str = "libx264"
    preset: str = "veryfast"
    tune: str | None = "zerolatency"  # None (or "") = no tune
    video_bitrate_kbps: int = 2500
    audio_bitrate_kbps: int = 128
    keyframe_seconds: float = 2.0
    threads: int = 0  # 0 = let the codec decide
    audio_channels: int = 2
    extra_video_options: dict[str, str] = field(default_factory=dict)

    @property
    def fps(self) -> int:
        return self.timebase.fps

    @property
    def sample_rate(self) -> int:
        return self.timebase.sample_rate

    @property
    def samples_per_frame(self) -> int:
        """Audio samples carried by one video frame (S = R / F)."""
        return self.timebase.samples_per_frame

    @property
    def keyframe_interval(self) -> int:
        """GOP length in frames; fixed so segment/ingest cuts land on predictable frames."""
        return max(1, round(self.keyframe_seconds * self.fps))

    def validate(self) -> None:
        """Fail early on settings the encoder cannot take (the time base checked its own rule)."""
        if self.width % 2 or self.height % 2:
            raise ValueError("yuv420p needs even width and height")
        if self.audio_channels not in (1, 2):
            raise ValueError("audio_channels must be 1 or 2")


def packet_pts(packet: av.Packet) -> int:
    """``packet.pts``, which every packet from :class:`AVEncoder` carries (PyAV types it optional)."""
    if packet.pts is None:
        raise ValueError("packet has no pts")
    return packet.pts


def clone_packet(packet: av.Packet) -> av.Packet:
    """Copy a packet so a sink's muxer may rebase/retag it without affecting other sinks.

    ``OutputContainer.mux`` rewrites ``pts``/``time_base``/``stream_index`` in place, so a packet
    fanned out to several containers must never be muxed directly.
    """
    out = av.Packet(bytes(packet))
    out.pts = packet.pts
    out.dts = packet.dts
    out.duration = packet.duration
    out.time_base = packet.time_base
    out.is_keyframe = packet.is_keyframe
    if packet.stream is not None:
        out.stream = packet.stream
    return out


class AVEncoder:
    """Turns (frame index, RGB image, audio block) into H.264/AAC packets with exact timestamps.

    Not thread-safe: use it from one thread (the :class:`OutputHub` worker).
    """

    def __init__(self, settings: EncoderSettings) -> None:
        settings.validate()
        self.settings = settings
        self.video_time_base = Fraction(1, settings.fps)
        self.audio_time_base = Fraction(1, settings.sample_rate)
        self._template: OutputContainer = av.open(io.BytesIO(), mode="w", format="matroska")
        self.video_template: VideoStream = self._add_video_stream()
        self.audio_template: AudioStream = self._add_audio_stream()
        # Writing the (throw-away) header opens both codecs and fills codecpar incl. extradata.
        self._template.start_encoding()
        self.audio_frame_size: int = self.audio_context.frame_size or 1024
        self._audio_buf = np.zeros((settings.audio_channels, 0), dtype=np.float32)
        self._audio_next_pts = 0  # sample index of the first sample in _audio_buf
        self._next_n: int | None = None
        self._pending: list[av.Packet] = []  # encoded, waiting for the audio watermark
        self._audio_watermark = Fraction(-1)
        self._flushed = False
        self._keyframe_wanted = False  # set from a sink's thread; a bool store is atomic under the GIL

    def request_keyframe(self) -> None:
        """Make the next encoded frame a keyframe (any thread): a network sink that (re)connects
        starts its viewers on it, at the live edge, instead of waiting up to a whole GOP."""
        self._keyframe_wanted = True

    # -- setup -------------------------------------------------------------------------------
    def _add_video_stream(self) -> VideoStream:
        s = self.settings
        options: dict[str, str] = {}
        if s.video_codec == "libx264":
            kbps = s.video_bitrate_kbps
            gop = s.keyframe_interval
            params = f"keyint={gop}:min-keyint={gop}:scenecut=0:vbv-maxrate={kbps}:vbv-bufsize={kbps}"
            options["x264-params"] = params
        if s.preset:
            options["preset"] = s.preset
        if s.tune:
            options["tune"] = s.tune
        options.update(s.extra_video_options)
        stream = self._template.add_stream(s.video_codec, rate=s.fps, options=options)
        if not isinstance(stream, VideoStream):  # video_codec is a free string: PyAV types the union
            raise ValueError(f"video_codec {s.video_codec!r} is not a video encoder")
        ctx = stream.codec_context
        ctx.width = s.width
        ctx.height = s.height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = self.video_time_base
        ctx.framerate = Fraction(s.fps)
        ctx.bit_rate = s.video_bitrate_kbps * 1000
        ctx.gop_size = s.keyframe_interval
        ctx.max_b_frames = 0  # keeps dts == pts and latency minimal
        if s.threads:
            ctx.thread_count = s.threads
        stream.time_base = self.video_time_base
        return stream

    def _add_audio_stream(self) -> AudioStream:
        s = self.settings
        stream = self._template.add_stream("aac", rate=s.sample_rate)
        ctx = stream.codec_context
        ctx.layout = "stereo" if s.audio_channels == 2 else "mono"
        ctx.format = "fltp"
        ctx.time_base = self.audio_time_base
        ctx.bit_rate = s.audio_bitrate_kbps * 1000
        stream.time_base = self.audio_time_base
        return stream

    @property
    def video_context(self) -> VideoCodecContext:
        """The opened video encoder context (extradata, width, height, time_base)."""
        return self.video_template.codec_context

    @property
    def audio_context(self) -> AudioCodecContext:
        """The opened audio encoder context (extradata, sample_rate, layout, frame_size)."""
        return self.audio_template.codec_context

    def add_streams(self, container: OutputContainer) -> tuple[av.stream.Stream, av.stream.Stream]:
        """Create (video, audio) streams in ``container`` copying this encoder's parameters.

        Must be called before the container's first mux. The new streams are not opened as
        encoders; they only describe the packets produced here. Map packets to them with
        ``packet.stream_index`` (:data:`VIDEO_INDEX` / :data:`AUDIO_INDEX`).
        """
        video = container.add_stream_from_template(self.video_template, opaque=True)
        audio = container.add_stream_from_template(self.audio_template, opaque=True)
        video.time_base = self.video_time_base  # muxers that can't honour it pick their own
        audio.time_base = self.audio_time_base
        return video, audio

    # -- encoding ----------------------------------------------------------------------------
    def encode(self, n: int, rgb: np.ndarray, audio: np.ndarray) -> list[av.Packet]:
        """Encode frame ``n`` and its ``S`` audio samples; returns the packets now ready.

        Returned packets across calls are in time order (video first on ties); video may come
        out one or two calls late (see :meth:`_release`). A skipped ``n`` is filled with
        silence so audio pts stay equal to ``n * S``.
        """
        if self._flushed:
            raise RuntimeError("encoder already flushed")
        s = self.settings
        spf = s.samples_per_frame
        # Validate before touching state so a rejected frame can't desync audio from n.
        if rgb.shape != (s.height, s.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(f"frame must be uint8 [{s.height}, {s.width}, 3], got {rgb.dtype} {rgb.shape}")
        block = self._normalize_audio(audio, spf)
        if self._next_n is None:
            self._next_n = n
            self._audio_next_pts = n * spf
        elif n < self._next_n:
            raise ValueError(f"frame index went backwards: {n} < {self._next_n}")
        elif n > self._next_n:
            missing = n - self._next_n
            log.warning("encoder: %d frame(s) missing before n=%d; padding audio with silence", missing, n)
            self._push_audio(np.zeros((s.audio_channels, missing * spf), dtype=np.float32))
        self._next_n = n + 1

        try:
            self._pending += self._encode_video(n, rgb)
        finally:  # even if x264 fails, audio for frame n goes in: pts must stay n * S
            audio_packets = self._encode_audio_block(block)
            if audio_packets:
                last = audio_packets[-1]
                self._audio_watermark = (packet_pts(last) + (last.duration or 0)) * self.audio_time_base
            self._pending += audio_packets
        return self._release(self._audio_watermark)

    def flush(self) -> list[av.Packet]:
        """Drain both encoders (the last partial AAC frame is sent short); call once at the end."""
        if self._flushed:
            return []
        self._flushed = True
        packets: list[av.Packet] = []
        if self._audio_buf.shape[1]:
            packets += self._encode_audio_frame(self._audio_buf)
            self._audio_buf = self._audio_buf[:, :0]
        packets += self._tag(self.video_context.encode(None), VIDEO_INDEX)
        packets += self._tag(self.audio_context.encode(None), AUDIO_INDEX)
        self._pending += packets
        return self._release(None)

    def _release(self, watermark: Fraction | None) -> list[av.Packet]:
        """Pop pending packets up to ``watermark`` (all if None) in (time, video-first) order.

        The AAC encoder lags its input by ~2 frames, so a video packet is held until every audio
        packet that starts before it has come out. The merged stream is then monotonic and a
        segmenting sink cutting at a video keyframe puts each audio packet on the right side.
        """
        self._pending.sort(key=self._sort_key)
        if watermark is None:
            out, self._pending = self._pending, []
            return out
        i = 0
        while i < len(self._pending) and self._sort_key(self._pending[i])[0] <= watermark:
            i += 1
        out, self._pending = self._pending[:i], self._pending[i:]
        return out

    def close(self) -> None:
        """Release the template container (its buffered header bytes are discarded)."""
        try:
            self._template.close()
        except Exception:  # closing a never-muxed template can't matter
            log.debug("encoder: template close failed", exc_info=True)

    def _normalize_audio(self, audio: np.ndarray, spf: int) -> np.ndarray:
        """Return planar float32 ``[channels, S]`` from mono ``[S]`` or interleaved ``[S, C]``."""
        a = np.asarray(audio, dtype=np.float32)
        if a.ndim == 1:
            a = a[np.newaxis, :]
        elif a.ndim == 2:
            a = a.T
        else:
            raise ValueError(f"audio must be [S] or [S, C], got shape {a.shape}")
        if a.shape[1] != spf:
            raise ValueError(f"audio block must have {spf} samples, got {a.shape[1]}")
        channels = self.settings.audio_channels
        if a.shape[0] == channels:
            return a
        if a.shape[0] == 1:
            return np.repeat(a, channels, axis=0)
        return a.mean(axis=0, keepdims=True)  # stereo in, mono out

    def _encode_video(self, n: int, rgb: np.ndarray) -> list[av.Packet]:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = n
        frame.time_base = self.video_time_base
        # Keyframes at every multiple of the GOP are forced too, so a requested one in between does
        # not shift the cadence that segment and ingest cuts rely on.
        if self._keyframe_wanted or n % self.settings.keyframe_interval == 0:
            self._keyframe_wanted = False
            frame.pict_type = PictureType.I
        return self._tag(self.video_context.encode(frame), VIDEO_INDEX)

    def _encode_audio_block(self, block: np.ndarray) -> list[av.Packet]:
        self._push_audio(block)
        packets: list[av.Packet] = []
        size = self.audio_frame_size
        while self._audio_buf.shape[1] >= size:
            packets += self._encode_audio_frame(self._audio_buf[:, :size])
            self._audio_buf = self._audio_buf[:, size:]
        return packets

    def _push_audio(self, block: np.ndarray) -> None:
        self._audio_buf = np.concatenate([self._audio_buf, block], axis=1)

    def _encode_audio_frame(self, samples: np.ndarray) -> list[av.Packet]:
        layout = "stereo" if self.settings.audio_channels == 2 else "mono"
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp", layout=layout)
        frame.sample_rate = self.settings.sample_rate
        frame.pts = self._audio_next_pts
        frame.time_base = self.audio_time_base
        self._audio_next_pts += samples.shape[1]
        return self._tag(self.audio_context.encode(frame), AUDIO_INDEX)

    def _tag(self, packets: list[av.Packet], index: int) -> list[av.Packet]:
        # Packets from a stream's codec context come back with stream_index 0 whatever the stream;
        # pointing them at the template stream sets the index (stream_index itself is read-only).
        stream = self.video_template if index == VIDEO_INDEX else self.audio_template
        for p in packets:
            p.stream = stream
        return packets

    @staticmethod
    def _sort_key(packet: av.Packet) -> tuple[Fraction, int]:
        pts = packet.pts if packet.pts is not None else 0
        return (pts * packet.time_base, packet.stream_index)
