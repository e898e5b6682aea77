"""Segmented local recording of the shared encoder packets (no re-encode).

Segments always start on a video keyframe and keep the stream's absolute timestamps, so the
concatenation of all segments is the original stream with no gap or duplicate. Matroska is the
default because a file cut short by a crash or kill still plays; mp4 only plays once ``close()``
has written its ``moov`` atom.
"""

from __future__ import annotations

import logging
import os
import re
import time
from fractions import Fraction
from pathlib import Path

import av
from av.container import OutputContainer

from .encoder import AUDIO_INDEX, VIDEO_INDEX, AVEncoder, clone_packet, packet_pts

log = logging.getLogger("stagecast.outputs.file")

_FORMATS = {"mkv": "matroska", "mp4": "mp4"}
_MAX_PENDING = 256  # audio packets held while waiting for the first keyframe


class SegmentedFileSink:
    """Writes packets into ``<prefix>_<YYYYmmdd-HHMMSS>_<index>.<ext>`` files of ~segment_seconds.

    Retention (``max_files`` / ``max_bytes``) counts every file matching the prefix and extension
    in ``directory`` (also those from earlier runs) and only ever deletes finished segments,
    oldest first; the file being written is never deleted.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        prefix: str = "stagecast",
        segment_seconds: float = 600,
        container: str = "mkv",
        max_files: int | None = None,
        max_bytes: int | None = None,
        name: str | None = None,
    ) -> None:
        if container not in _FORMATS:
            raise ValueError(f"container must be one of {sorted(_FORMATS)}, got {container!r}")
        if segment_seconds <= 0:
            raise ValueError("segment_seconds must be > 0")
        self.directory = Path(directory)
        self.prefix = prefix
        self.segment_seconds = Fraction(segment_seconds).limit_denominator(1000)
        self.container = container
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.name = name or f"file:{self.directory}/{prefix}*.{container}"
        self._encoder: AVEncoder | None = None
        self._out: OutputContainer | None = None
        self._streams: dict[int, av.stream.Stream] = {}
        self._path: Path | None = None
        self._segment_start: Fraction | None = None
        self._index = 0
        self._pending_audio: list[av.Packet] = []
        self._closed = False
        self.segments: list[Path] = []  # every segment this sink opened, in order

    # -- sink protocol ---------------------------------------------------------------------------
    def start(self, encoder: AVEncoder) -> None:
        """Remember the encoder whose parameters each segment's streams copy."""
        self._encoder = encoder
        self.directory.mkdir(parents=True, exist_ok=True)
        # (re)starting after a failure: the next keyframe opens a fresh segment
        self._closed = False
        self._segment_start = None

    def write(self, packet: av.Packet) -> None:
        """Mux one packet, rolling over to a new segment on a due video keyframe."""
        if self._closed:
            raise RuntimeError("sink is closed")
        if self._encoder is None:
            raise RuntimeError("start(encoder) must be called before write()")
        index = packet.stream_index
        if index == VIDEO_INDEX and packet.is_keyframe:
            t = packet_pts(packet) * packet.time_base
            if self._segment_start is None or t >= self._segment_start + self.segment_seconds:
                self._open_segment(t)
        if self._out is None:
            # Nothing to write into until the first keyframe: keep early audio (the AAC priming
            # packet precedes video frame 0), drop early non-key video.
            if index == AUDIO_INDEX:
                self._pending_audio.append(clone_packet(packet))
                del self._pending_audio[:-_MAX_PENDING]
            return
        self._mux(packet)

    def close(self) -> None:
        """Finalize the current segment (writes mkv cues / mp4 moov) and apply retention."""
        if self._closed:
            return
        self._closed = True
        self._pending_audio.clear()
        self._finish_segment()
        self._enforce_retention()

    # -- internals -------------------------------------------------------------------------------
    def _segment_path(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime())
        while True:  # never overwrite a file from a run restarted within the same second
            path = self.directory / f"{self.prefix}_{stamp}_{self._index:05d}.{self.container}"
            if not path.exists():
                return path
            self._index += 1

    def _open_segment(self, start: Fraction) -> None:
        assert self._encoder is not None
        self._finish_segment()
        self._enforce_retention()
        path = self._segment_path()
        self._index += 1
        # flush_packets: what the muxer emits reaches the file at once, header included (a small stream fills no
        # 32 KiB I/O buffer for seconds); Matroska emits a cluster at the first keyframe past cluster_time_limit
        # (default 5 s). A process killed mid-segment loses at most its open cluster, never the whole segment.
        options = {"flush_packets": "1"}
        if self.container == "mkv":
            options["cluster_time_limit"] = "1000"  # ms
        out = av.open(str(path), mode="w", format=_FORMATS[self.container], options=options)
        try:
            video, audio = self._encoder.add_streams(out)
        except Exception:
            out.close()
            raise
        self._out = out
        self._path = path
        self._streams = {VIDEO_INDEX: video, AUDIO_INDEX: audio}
        self._segment_start = start
        self.segments.append(path)
        log.info("%s: recording segment %s (t=%.3fs)", self.name, path.name, float(start))
        pending, self._pending_audio = self._pending_audio, []
        for p in pending:
            self._mux(p)

    def _mux(self, packet: av.Packet) -> None:
        assert self._out is not None
        copy = clone_packet(packet)  # mux rebases pts in place; other sinks share `packet`
        copy.stream = self._streams[packet.stream_index]
        self._out.mux_one(copy)

    def _finish_segment(self) -> None:
        out, self._out = self._out, None
        if out is None:
            return
        try:
            out.close()
        except Exception:
            log.exception("%s: failed to finalize %s", self.name, self._path)
        finally:
            self._streams = {}

    def _existing_files(self) -> list[Path]:
        pattern = re.compile(rf"{re.escape(self.prefix)}_\d{{8}}-\d{{6}}_\d+\.{self.container}")
        files = sorted(self.directory.glob(f"{self.prefix}_*.{self.container}"))
        return [f for f in files if pattern.fullmatch(f.name) and f.is_file()]

    def _enforce_retention(self) -> None:
        if self.max_files is None and self.max_bytes is None:
            return
        files = self._existing_files()
        current = self._path if self._out is not None else None
        finished = [f for f in files if f != current]
        sizes = {f: _size(f) for f in files}
        total = sum(sizes.values())
        count = len(files)
        for f in finished:  # oldest first (names sort by start time)
            over_files = self.max_files is not None and count > self.max_files
            over_bytes = self.max_bytes is not None and total > self.max_bytes
            if not (over_files or over_bytes):
                break
            try:
                f.unlink()
                log.info("%s: retention removed %s", self.name, f.name)
            except FileNotFoundError:
                pass
            except OSError:
                log.exception("%s: could not remove %s", self.name, f)
                continue
            count -= 1
            total -= sizes[f]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class SingleFileSink(SegmentedFileSink):
    """One file at an exact path (offline renders): a segment that never rolls over."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        path = Path(path)
        container = path.suffix.lstrip(".").lower()
        if container not in _FORMATS:
            raise ValueError(f"{path}: output must end in .mp4 or .mkv")
        super().__init__(path.parent, prefix=path.stem, segment_seconds=10**9, container=container,
                         name=f"file:{path}")
        self.path = path

    def _segment_path(self) -> Path:
        return self.path
