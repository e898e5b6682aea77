"""Listening through a `stream` input: speech sent as MPEG-TS over UDP with PyAV (what an OBS audio
output or a call bridge delivers), recognised, answered; the stream killed and restarted mid-show; the
character's own voice fed back never interrupting it; a stream that is not audio reported while the show
goes on. Real VAD (Silero), real recognition (Whisper base), a live show."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from engine.state import IDX
from engine.timeline import FrameInputs
from engine.voice.espeak import EspeakVoice
from streamer.attachments import build_show
from streamer.config import parse_config
from streamer.events import BargeIn, HealthChanged, HealthStatus, Heard, TurnChanged
from streamer.show import Show
from tests.listen_support import wer

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parent.parent
FIRST = "Hello Aiko, what is your favourite colour?"
SECOND = "Good evening, can you tell me a story about dogs?"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_wer_helper_can_fail() -> None:
    assert wer(FIRST, "hello aiko what is your favorite color") > 0 and wer(FIRST, FIRST) == 0
    assert wer(FIRST, "something else entirely") > 0.8


def speech_wav(path: Path, text: str, lead_s: float = 2.0, tail_s: float = 1.0) -> Path:
    """Speech after `lead_s` of silence: UDP carries nothing to a port before its reader opens it, so
    the lead covers the moment the input (re)opens."""
    pcm = EspeakVoice(48000).synthesize(text, "en").pcm
    audio = np.concatenate([np.zeros(int(lead_s * 48000), np.float32), pcm, np.zeros(int(tail_s * 48000), np.float32)])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def sender(wav: Path, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.audio_sender", str(wav), url], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Events:
    """The show's events, collected on its loop; the test awaits conditions on them."""

    def __init__(self, show: Show, *types: type) -> None:
        self.items: list[Any] = []
        self._changed = asyncio.Event()
        show.control.subscribe(self._add, *types)

    def _add(self, event: Any) -> None:
        self.items.append(event)
        self._changed.set()

    async def wait(self, predicate: Callable[[Any], bool], limit_s: float = 60) -> Any:
        async with asyncio.timeout(limit_s):
            while True:
                for event in self.items:
                    if predicate(event):
                        return event
                self._changed.clear()
                await self._changed.wait()

    async def health(self, component: str, status: HealthStatus, after: int = 0, limit_s: float = 30) -> int:
        """Wait for a health event of `component` with `status` past index `after`; returns its index."""
        event = await self.wait(lambda e: isinstance(e, HealthChanged) and e.health.component == component
                                and e.health.status == status and self.items.index(e) >= after, limit_s)
        return self.items.index(event)


class ListenTrace:
    """Every frame's listening inputs and the animator's mouth, nod and gaze (frame-loop thread)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, bool, bool, bool, float, float, float]] = []
        self._lock = threading.Lock()

    def __call__(self, n: int, inputs: FrameInputs, state: torch.Tensor) -> None:
        listen = inputs.listen
        with self._lock:
            self.rows.append((n, listen.active, listen.thinking, inputs.speaking, float(state[IDX["mouth_closed"]]),
                              float(state[IDX["head_pitch"]]), float(state[IDX["gaze_y"]])))


def listening_show(tmp_path: Path, port: int, **extra: Any) -> Show:
    config = parse_config({
        "video": {"width": 160, "height": 120}, "chat": {"sources": []}, "panel": {"enabled": False},
        "character": {"memory": {"enabled": False}},
        "outputs": {"recording": {"directory": str(tmp_path / "rec")}, **extra.pop("outputs", {})},
        "listen": {"inputs": [{"type": "stream", "name": "guest", "speaker": "Guest",
                               "url": f"udp://127.0.0.1:{port}", "format": "mpegts",
                               "backoff": {"initial_s": 0.2, "max_s": 1.0}}]},
        **extra,
    })
    return build_show(config)


def test_stream_speech_is_answered_and_a_killed_stream_comes_back(tmp_path: Path) -> None:
    port = free_udp_port()
    url = f"udp://127.0.0.1:{port}?pkt_size=1316"
    first, second = speech_wav(tmp_path / "first.wav", FIRST), speech_wav(tmp_path / "second.wav", SECOND)
    show = listening_show(tmp_path, port)
    trace = ListenTrace()
    show.loop.observers = (*show.loop.observers, trace)
    senders: list[subprocess.Popen[bytes]] = []
    results: dict[str, Any] = {}

    async def script() -> None:
        events = Events(show, Heard, TurnChanged, HealthChanged)
        await events.health("listen:guest", HealthStatus.OK, limit_s=120)  # the input is there
        senders.append(sender(first, url))
        heard = await events.wait(lambda e: isinstance(e, Heard) and not e.partial and e.text, 90)
        reply = await events.wait(lambda e: isinstance(e, TurnChanged) and e.priority == "voice"
                                  and e.status == "done", 60)
        results["first"], results["reply"] = heard, reply
        senders[0].send_signal(signal.SIGKILL)  # the stream dies mid-show
        senders[0].wait()
        down = await events.health("listen:guest", HealthStatus.DEGRADED)
        senders.append(sender(second, url))
        results["second"] = await events.wait(lambda e: isinstance(e, Heard) and not e.partial and e.utterance >= 1
                                              and e is not heard and e.text, 90)
        await events.health("listen:guest", HealthStatus.OK, after=down)

    try:
        run_show(show, script)
    finally:
        for proc in senders:
            proc.kill()
            proc.wait()
    assert wer(FIRST, results["first"].text) <= 0.3, results["first"].text
    assert results["first"].language == "en" and results["first"].speaker == "Guest"
    assert results["reply"].user == "Guest" and results["reply"].played_text and results["reply"].language == "en"
    assert wer(SECOND, results["second"].text) <= 0.3, results["second"].text
    assert show.control.status().restarts.get("listen:guest", 0) >= 1
    assert show.control.status().late_frames <= 3
    rows = trace.rows
    listening = [r for r in rows if r[1] and not r[3]]
    assert listening and all(r[4] == 1.0 for r in listening)  # mouth closed while the guest speaks
    thinking_starts = [i for i in range(1, len(rows)) if rows[i][2] and not rows[i - 1][2]]
    ends = [i for i in range(1, len(rows)) if rows[i - 1][1] and not rows[i][1]]
    assert ends and thinking_starts and thinking_starts[0] - ends[0] <= 3  # thinking within 3 frames
    assert max(r[6] for r in rows[thinking_starts[0] + 3:thinking_starts[0] + 10]) > 0.45  # and it shows


def test_the_characters_own_voice_fed_back_never_interrupts_it(tmp_path: Path) -> None:
    """60 s of the character speaking while its own output (MPEG-TS over UDP) comes back into a stream
    input at its normal level: no barge-in, no turn answering itself."""
    port = free_udp_port()
    show = listening_show(tmp_path, port, outputs={"udp": [{"url": f"udp://127.0.0.1:{port}?pkt_size=1316"}]})
    line = ("Welcome back everyone, today we are talking about cats, dogs, and the best snacks for a long "
            "stream night, so get comfortable.")
    counts: dict[str, int] = {}

    async def script() -> None:
        events = Events(show, BargeIn, TurnChanged, Heard, HealthChanged)
        await events.health("listen:guest", HealthStatus.OK, limit_s=120)
        await asyncio.sleep(2)  # the input has opened the port the show sends to
        started = show.control.status().stream_s
        while show.control.status().stream_s - started < 60:  # a minute of the character talking
            turn = show.control.say(line, "en")
            await turn.wait()
            assert turn.status.value == "done", turn.status
        counts["barge_ins"] = sum(isinstance(e, BargeIn) for e in events.items)
        counts["voice_turns"] = sum(isinstance(e, TurnChanged) and e.priority == "voice" for e in events.items)
        counts["heard_finals"] = sum(isinstance(e, Heard) and not e.partial for e in events.items)

    run_show(show, script)
    listener = next(a for a in show.attachments if a.name == "listen")
    assert counts["barge_ins"] == 0 and listener.barge_ins == 0
    assert counts["voice_turns"] == 0 and counts["heard_finals"] == 0
    assert listener.echo_utterances >= 1  # the echo did reach the input and was recognised as such
    assert health(show, "listen:guest") == HealthStatus.OK


def test_a_stream_that_is_not_audio_is_reported_and_the_show_goes_on(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ts"
    junk.write_bytes(np.random.default_rng(1).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    config = parse_config({
        "video": {"width": 160, "height": 120}, "chat": {"sources": []}, "panel": {"enabled": False},
        "character": {"memory": {"enabled": False}}, "outputs": {"recording": {"enabled": False}},
        "listen": {"inputs": [{"type": "stream", "name": "junk", "speaker": "Nobody", "url": str(junk),
                               "backoff": {"initial_s": 0.2, "max_s": 0.5}}]},
    })
    show = build_show(config)
    events = Events(show, HealthChanged)
    detail: dict[str, str] = {}

    async def script() -> None:
        degraded = await events.health("listen:junk", HealthStatus.DEGRADED)
        frames = show.control.status().frames
        await asyncio.sleep(1.0)
        assert show.control.status().frames > frames + 20  # the picture goes on
        status = show.control.status()
        assert status.restarts.get("listen:junk", 0) >= 2, status.restarts  # it keeps retrying
        # a retry is not recovery: the input stays degraded until audio flows
        since = [e.health for e in events.items[degraded:]
                 if isinstance(e, HealthChanged) and e.health.component == "listen:junk"]
        assert all(h.status == HealthStatus.DEGRADED for h in since), since
        detail["text"] = status.health["listen:junk"].detail

    run_show(show, script)
    assert detail["text"].startswith("junk: "), detail  # the input named, then FFmpeg's reason


# ----- helpers ---------------------------------------------------------------------------------------------
def health(show: Show, component: str) -> HealthStatus | None:
    h = show.control.status().health.get(component)
    return None if h is None else h.status


def run_show(show: Show, script: Callable[[], Any]) -> None:
    async def main() -> None:
        runner = asyncio.create_task(show.run())
        try:
            await script()
        finally:
            show.request_stop()
            assert await runner == 0

    asyncio.run(main())


def test_a_device_input_without_sounddevice_says_how_to_install_it_and_the_show_goes_on(tmp_path: Path) -> None:
    """Without sounddevice (or without PortAudio, or with no such device) the input names the fix."""
    config = parse_config({
        "video": {"width": 160, "height": 120}, "chat": {"sources": []}, "panel": {"enabled": False},
        "character": {"memory": {"enabled": False}}, "outputs": {"recording": {"enabled": False}},
        "listen": {"inputs": [{"type": "device", "name": "desk", "speaker": "Me"}]},
    })
    show = build_show(config)
    events = Events(show, HealthChanged)
    detail: dict[str, str] = {}

    async def script() -> None:
        await events.health("listen:desk", HealthStatus.DEGRADED)
        frames = show.control.status().frames
        await asyncio.sleep(1.0)
        assert show.control.status().frames > frames + 20
        detail["text"] = show.control.status().health["listen:desk"].detail

    run_show(show, script)
    assert "stagecast[mic]" in detail["text"] or "capture device" in detail["text"], detail
