"""Raw frames to a virtual camera (pyvirtualcam) for Zoom/Discord/OBS "Video Capture Device".

A camera takes pictures, not packets, so this is a *frame sink* of :class:`OutputHub`
(``frame_sinks=[...]``): it gets ``(n, rgb)`` on the hub thread before encoding. Audio does not
travel through a virtual camera; route the show's audio separately (e.g. a loopback audio
device, or use the UDP/RTMP outputs which carry both).

Optional dependency: ``pip install 'stagecast[vcam]'``. A device must exist:
Linux ``sudo modprobe v4l2loopback devices=1 exclusive_caps=1``; Windows/macOS: install OBS and
start its Virtual Camera once.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import numpy as np

log = logging.getLogger("stagecast.outputs.vcam")


def no_device_hint() -> str:
    """One line telling the user how to create a virtual camera on this OS."""
    if sys.platform.startswith("linux"):
        return ("no virtual camera: run `sudo modprobe v4l2loopback devices=1 exclusive_caps=1` "
                "(from apt package v4l2loopback-dkms)")
    return "no virtual camera: install OBS Studio and click 'Start Virtual Camera' once (Windows/macOS)"


class VirtualCameraError(RuntimeError):
    """The virtual camera could not be opened; the message says how to fix it."""


class VirtualCameraSink:
    """Forwards each RGB frame to a pyvirtualcam camera (opened lazily on the first frame)."""

    def __init__(self, width: int, height: int, fps: int, device: str | None = None, backend: str | None = None,
                 name: str = "vcam") -> None:
        self.width, self.height, self.fps = width, height, fps
        self.device, self.backend = device, backend
        self.name = name
        self._cam: Any = None
        self.frames = 0

    def open(self) -> None:
        """Open the camera now (the hub would do it on the first frame); raises with a fix hint."""
        try:
            import pyvirtualcam
        except ImportError as exc:
            raise VirtualCameraError("pyvirtualcam is not installed: pip install 'stagecast[vcam]'") from exc
        try:
            self._cam = pyvirtualcam.Camera(self.width, self.height, self.fps, fmt=pyvirtualcam.PixelFormat.RGB,
                                            device=self.device, backend=self.backend)
        except RuntimeError as exc:
            raise VirtualCameraError(f"{no_device_hint()} ({exc})") from exc
        log.info("%s: sending frames to %s", self.name, self._cam.device)

    def write_frame(self, n: int, rgb: np.ndarray) -> None:
        """Send frame ``n``; pacing is the show's (live mode), never the camera's."""
        if self._cam is None:
            self.open()
        self._cam.send(rgb)
        self.frames += 1

    def close(self) -> None:
        if self._cam is not None:
            self._cam.close()
            self._cam = None
