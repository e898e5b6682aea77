"""The co-host page's audio socket, `/ws/audio`: a co-host's microphone into one of the listener's inputs.

Protocol: the first message is JSON `{"type": "auth", "token": ..., "input": NAME, "sample_rate": 16000,
"format": "s16le"}` within 5 s; then binary frames of 16-bit little-endian mono PCM at 16 kHz. The
server answers `hello`, then sends the page its input's listening events as JSON (state changes,
partial and final transcripts, barge-ins, switches). Whatever is wrong, the server first sends
`{"type": "error", "code": CODE, "status": HTTP-LIKE, "detail": WHAT}` and then closes with CODE:

  4401 missing or bad token (or a first message that is not the auth message), or revoked meanwhile
  4403 a token whose role cannot stream (viewer)
  4404 an input the show does not offer to the page
  4400 a sample rate or format other than 16000 / s16le, a text message after auth, an odd byte count
  1009 a frame over 32 KiB (frames over the server's 64 KiB message limit are closed by the WebSocket
       layer itself with 1009 and no JSON)
  4429 more than 2x real time of audio per second sustained, or more than 100 frames per second, or
       too many token checks from this client (see streamer/panel/auth.py)
  4408 no auth message within 5 s, or no audio for 15 s after it (a page in push-to-talk sends silence)
  4409 another co-host page took this input over (the newest connection wins)

Each frame costs a length check, two token buckets and one numpy conversion on the event loop
(microseconds for a 50 ms frame); the samples go to the input's `push`, which hands them to the
listener through its own bounded queue. Nothing here waits on the show.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import WebSocket

from streamer.control import AudioInlet
from streamer.panel.auth import Principal, Throttled, TokenBucket
from streamer.panel.live import Client

if TYPE_CHECKING:
    from streamer.panel.app import Panel

log = logging.getLogger("stagecast.panel.audio")

SAMPLE_RATE = 16_000
FORMAT = "s16le"
AUTH_TIMEOUT_S = 5.0
IDLE_S = 15.0
MAX_FRAME_BYTES = 32 * 1024
REALTIME_FACTOR = 2.0  # seconds of audio a client may send per second, sustained
AUDIO_BURST_S = 2.0  # ... with this much slack (a page catching up after a hiccup)
FRAMES_PER_S = 100.0
FRAMES_BURST = 100
HTTP_LIKE = {4400: 400, 4401: 401, 4403: 403, 4404: 404, 4408: 408, 4409: 409, 4429: 429, 1009: 413, 1001: 503}
AUTH_SHAPE = ('send {"type": "auth", "token": ..., "input": NAME, "sample_rate": 16000, "format": "s16le"} '
              "as the first message")


def error_message(code: int, detail: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "status": HTTP_LIKE.get(code, 400), "detail": detail}


async def close_with(ws: WebSocket, code: int, detail: str) -> None:
    """The error as JSON, then the close frame (its reason: the detail, cut to the protocol's 123 bytes)."""
    with contextlib.suppress(Exception):
        await ws.send_text(json.dumps(error_message(code, detail), ensure_ascii=False))
        await ws.close(code, detail.encode()[:120].decode(errors="ignore"))


def s16le_to_float(data: bytes) -> np.ndarray:
    """16-bit little-endian PCM -> float32 in [-1, 1)."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) * np.float32(1.0 / 32768.0)


class Stream:
    """One authenticated audio socket's counters, shared by its receiver and its watchdog."""

    def __init__(self) -> None:
        self.last_audio = time.monotonic()
        self.samples = 0
        self.frames = 0
        self.audio = TokenBucket(SAMPLE_RATE * REALTIME_FACTOR, int(SAMPLE_RATE * AUDIO_BURST_S))
        self.frame_rate = TokenBucket(FRAMES_PER_S, FRAMES_BURST)

    @property
    def seconds(self) -> float:
        return self.samples / SAMPLE_RATE


async def _hello(panel: Panel, ws: WebSocket) -> tuple[Principal, AudioInlet] | None:
    """The auth message, checked in order: shape and token, role, input, audio format."""
    try:
        message = await asyncio.wait_for(ws.receive(), AUTH_TIMEOUT_S)
    except TimeoutError:
        await close_with(ws, 4408, f"no auth message within {AUTH_TIMEOUT_S:.0f} s; {AUTH_SHAPE}")
        return None
    if message["type"] == "websocket.disconnect":
        return None
    data: Any = None
    with contextlib.suppress(ValueError):
        data = json.loads(message["text"]) if message.get("text") is not None else None
    token = data.get("token") if isinstance(data, dict) and data.get("type") == "auth" else None
    if not isinstance(token, str) or not token:
        await close_with(ws, 4401, f"missing token: {AUTH_SHAPE}")
        return None
    assert isinstance(data, dict)
    try:
        who = await panel.auth.authenticate(token, ws.client.host if ws.client else None)
    except Throttled as exc:
        await close_with(ws, 4429, str(exc))
        return None
    if who is None:
        await close_with(ws, 4401, "invalid or revoked token")
        return None
    name = data.get("input")
    if not who.allows("cohost"):
        await panel.record(who, "audio", {"input": str(name)[:100]}, 403, "forbidden: needs cohost")
        await close_with(ws, 4403, f"streaming audio needs the cohost role; this token has {who.role}")
        return None
    ok, retry = panel.auth.take(who)
    if not ok:
        await close_with(ws, 4429, f"rate limit exceeded for this token; retry in {retry:.1f} s")
        return None
    inlet = panel.feed.control.audio_input(name) if isinstance(name, str) else None
    if inlet is None:
        offered = ", ".join(panel.feed.control.status().listening.inputs) or "none"
        shown = json.dumps(name, ensure_ascii=False)[:100]
        await close_with(ws, 4404, f"unknown input {shown}; the show offers: {offered}")
        return None
    rate, fmt = data.get("sample_rate"), data.get("format")
    if rate != SAMPLE_RATE or fmt != FORMAT or isinstance(rate, bool):
        shown = json.dumps({"sample_rate": rate, "format": fmt}, ensure_ascii=False)[:200]
        await close_with(ws, 4400, f"audio must be sample_rate {SAMPLE_RATE} and format {FORMAT!r} "
                                   f"(16-bit little-endian mono); got {shown}")
        return None
    return who, inlet


async def serve_audio(panel: Panel, ws: WebSocket) -> None:
    await ws.accept()
    hello = await _hello(panel, ws)
    if hello is None:
        return
    who, inlet = hello
    client = Client(who, set(), size=64, input=inlet.name)
    stream = Stream()
    panel.feed.add_audio(client)
    log.info("co-host audio: %s (%s) streams into %s", who.name, who.role, inlet.name)
    try:
        await ws.send_text(json.dumps({"type": "hello", "name": who.name, "role": who.role, "input": inlet.name,
                                       "speaker": inlet.speaker, "sample_rate": SAMPLE_RATE, "format": FORMAT,
                                       "max_frame_bytes": MAX_FRAME_BYTES, "idle_s": IDLE_S}))
        await ws.send_text(json.dumps(panel.feed.input_state(inlet.name), ensure_ascii=False))
        tasks = [asyncio.create_task(_receive(ws, client, stream, inlet)), asyncio.create_task(_send(ws, client)),
                 asyncio.create_task(_watchdog(client, stream)), asyncio.create_task(_guard(panel, client)),
                 asyncio.create_task(client.closed.wait())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if client.closed.is_set() and client.close_code != 1000:
            await close_with(ws, client.close_code, client.detail)
    except Exception as exc:  # the socket went away mid-send
        log.debug("co-host audio socket of %s ended: %s", who.name, exc)
    finally:
        panel.feed.remove_audio(client)
    code = client.close_code if client.closed.is_set() else 1000
    log.info("co-host audio: %s left %s after %.1f s of audio in %d frames (close %d%s)", who.name, inlet.name,
             stream.seconds, stream.frames, code, f": {client.detail}" if client.detail else "")
    with contextlib.suppress(Exception):  # the panel may be closing its database
        await panel.record(who, "audio", {"input": inlet.name, "seconds": round(stream.seconds, 1),
                                          "frames": stream.frames}, 200 if code in (1000, 1001) else code,
                           client.detail or "stream ended")


async def _receive(ws: WebSocket, client: Client, stream: Stream, inlet: AudioInlet) -> None:
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            if message.get("code") == 1009:  # the WebSocket layer refused a message over the server's limit
                client.close(1009, "message over the server's 64 KiB limit")
            return
        data = message.get("bytes")
        if data is None:
            client.close(4400, "after auth the socket takes binary frames of s16le mono audio only, not text")
            return
        size = len(data)
        if size > MAX_FRAME_BYTES:
            client.close(1009, f"frame of {size} bytes is over the {MAX_FRAME_BYTES // 1024} KiB limit")
            return
        if size % 2:
            client.close(4400, f"malformed frame: {size} bytes is an odd count; s16le samples are 2 bytes each")
            return
        now = time.monotonic()
        if not stream.frame_rate.take(now)[0]:
            client.close(4429, f"over the rate limit: more than {FRAMES_PER_S:.0f} frames per second")
            return
        samples = size // 2
        stream.frames += 1
        if samples == 0:
            continue
        if not stream.audio.take(now, samples)[0]:
            client.close(4429, f"over the rate limit: more than {REALTIME_FACTOR:g}x real time of audio "
                               "per second, sustained")
            return
        stream.samples += samples
        stream.last_audio = now
        inlet.push(s16le_to_float(data))


async def _send(ws: WebSocket, client: Client) -> None:
    while True:
        message = await client.queue.get()
        if isinstance(message, str):
            await ws.send_text(message)


async def _watchdog(client: Client, stream: Stream) -> None:
    """No audio for IDLE_S: the socket holds an input and feeds it nothing."""
    while True:
        left = stream.last_audio + IDLE_S - time.monotonic()
        if left <= 0:
            client.close(4408, f"no audio for {IDLE_S:.0f} s; send frames continuously (silence while not talking)")
            return
        await asyncio.sleep(left)


async def _guard(panel: Panel, client: Client) -> None:
    """A revoked token loses its audio socket within the recheck interval, as on the live socket."""
    while True:
        await asyncio.sleep(max(panel.auth.recheck_s, 0.5))
        if not await panel.auth.still_valid(client.principal):
            client.close(4401, "token revoked")
            return
