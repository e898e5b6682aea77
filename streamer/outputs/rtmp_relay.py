"""RTMP relay child process: FLV on stdin -> FFmpeg's RTMP client, status lines on stdout.

Why a child process: PyAV opens an output URL (``avio_open``: TCP connect + RTMP handshake +
publish) and writes the trailer while *holding the GIL*, with no timeout and no interrupt
callback for output containers. A server that accepts TCP but never answers (frozen process,
black-holed network) would freeze every Python thread of the show, frame loop included. Here
only this child blocks; the parent kills it when its stdin stops draining.

Protocol: first stdin line is JSON ``{"url", "secret", "stall_seconds"}`` (the key never goes
on a command line), then FLV bytes. stdout lines: ``ready`` once the config is read (the parent
sends no stream before, so the first frame is the newest), ``live`` once publishing started, ``error
<message with the key masked>`` before a failing exit. Standalone on purpose (imports only av).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import threading
import time

import av

_SIOCOUTQ = 0x5411  # bytes not yet acknowledged by the peer (Linux)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class _StdinReader:
    """``read(n)`` returning what the pipe has *now*: a buffered ``read(n)`` would wait for all
    ``n`` (PyAV asks for 32 KiB), holding packets back for seconds at low bitrates."""

    def read(self, n: int) -> bytes:
        return os.read(0, n)


def _read_line() -> bytes:
    """The config line, byte by byte so no FLV byte is consumed into a Python buffer."""
    out = bytearray()
    while (b := os.read(0, 1)) not in (b"", b"\n"):
        out += b
    return bytes(out)


def _tcp_socket() -> socket.socket | None:
    """The process's one TCP socket (the RTMP connection), found through /proc/self/fd."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for entry in fds:
        fd = int(entry)
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        if sock.type == socket.SOCK_STREAM and sock.family in (socket.AF_INET, socket.AF_INET6):
            return sock
        sock.detach()
    return None


def _watchdog(sock: socket.socket, stall_seconds: float, stop: threading.Event) -> None:
    """Shut the socket down when unacknowledged data makes no progress for ``stall_seconds``.

    A peer that stops reading keeps ACKing zero-window probes, so 'last ACK' is no signal; the
    count of acknowledged bytes (tcp_info.tcpi_bytes_acked) not moving while data waits is.
    Shutting down wakes FFmpeg's blocked write with an error, so the relay exits and the
    parent reconnects.
    """
    import fcntl

    last_acked, since = -1, time.monotonic()
    while not stop.wait(0.25):
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 160)
            acked = struct.unpack_from("Q", info, 120)[0] if len(info) >= 128 else 0
            outq = struct.unpack("i", fcntl.ioctl(sock.fileno(), _SIOCOUTQ, b"\0" * 4))[0]
        except OSError:
            return
        now = time.monotonic()
        if outq == 0 or acked != last_acked:
            last_acked, since = acked, now
        elif now - since > stall_seconds:
            _say(f"error connection stalled: {outq} bytes unacknowledged for {stall_seconds:.1f}s")
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return


def main() -> int:
    cfg = json.loads(_read_line())
    _say("ready")
    url: str = cfg["url"]
    secret: str = cfg.get("secret") or ""
    stop = threading.Event()
    try:
        # Probing reads ahead (5 s of stream by default): a delay viewers would see. The FLV
        # sequence headers carry every codec parameter, so a 0.1 s analysis is enough.
        src = av.open(_StdinReader(), "r", format="flv", options={"analyzeduration": "100000"})
        out = av.open(url, "w", format="flv", options={"flvflags": "no_duration_filesize"})
        mapping = {s.index: out.add_stream_from_template(s, opaque=True) for s in src.streams}
        live = False
        for packet in src.demux():
            if packet.dts is None or packet.stream.index not in mapping:
                continue
            packet.stream = mapping[packet.stream.index]
            out.mux_one(packet)
            if not live:
                live = True
                _say("live")
                sock = _tcp_socket()
                if sock is not None and hasattr(socket, "TCP_INFO"):
                    threading.Thread(target=_watchdog, args=(sock, float(cfg.get("stall_seconds", 5)), stop),
                                     daemon=True).start()
        out.close()
        return 0
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        if secret:
            message = message.replace(secret, "****")
        _say(f"error {message}")
        return 1
    finally:
        stop.set()


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # skip PyAV finalizers: a trailer write into a dead socket could block
