"""What the output hub needs from an output: typed as Protocols, so any object with these methods is a sink."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import av
import numpy as np

from .encoder import AVEncoder
from .network_sink import LinkStatus


class PacketSink(Protocol):
    """An output of encoded packets (recording, RTMP, UDP)."""

    name: str

    def start(self, encoder: AVEncoder) -> None:
        """Called once on the sink's thread before the first packet; create streams lazily here."""

    def write(self, packet: av.Packet) -> None:
        """Consume one packet. Must not mutate it (clone first: other sinks share it)."""

    def close(self) -> None:
        """Finalize output; called once when the hub closes."""


@runtime_checkable
class LinkedSink(Protocol):
    """A packet sink with a network link of its own (RTMP, UDP): its link state goes into status."""

    @property
    def status(self) -> LinkStatus: ...


class FrameSink(Protocol):
    """An output that wants pictures, not packets (virtual camera, preview)."""

    name: str

    def write_frame(self, n: int, rgb: np.ndarray) -> None:
        """Consume frame ``n`` on the hub thread, before it is encoded. Must not keep ``rgb``."""

    def close(self) -> None:
        """Release the device; called once on the hub thread when the hub closes."""
