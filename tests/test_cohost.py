"""The co-host role, page and audio socket against a real running Show with the real panel.

No speech recognition here: `AudioProbe` stands in for the listener (it offers browser inputs and
counts what arrives), and listening events are published on the show's bus as the listener would.
A real Chromium with a fake microphone (a WAV made with espeak at test time) streams through the
page; raw WebSocket clients try every way of getting the audio socket wrong."""

from __future__ import annotations

import json
import shutil
import threading
import time
import wave
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from streamer.events import ChatDecided, ChatMessage, Heard, ListeningChanged, ModerationDecision
from streamer.panel.store import PanelStore
from tests.panel_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, AudioProbe, ShowRunner

RATE = 16_000
SILENCE_RMS = 1e-3  # what a quiet input never reaches; the espeak phrase is ~100x that
MOD_ACTIONS = ["/api/interrupt", "/api/say", "/api/emotion", "/api/pause", "/api/resume", "/api/skip", "/api/clear",
               "/api/timeout", "/api/listening", "/api/mute"]
HOSTILE_SPEAKER = "<b>Co\u202ehost</b>"
HOSTILE_TEXT = '<img src=x onerror="window.__xss=1"> \u202eevil\u202c <script>window.__xss=2</script> ' + "W" * 4000


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64)))) if pcm.size else 0.0


# ----- a running show --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def probe() -> AudioProbe:
    return AudioProbe(("cohost", "Co-host"), ("guest", "Guest"))


@pytest.fixture(scope="module")
def runner(tokens: dict[str, str], probe: AudioProbe):
    show = ShowRunner(Path(tokens["db"]), panel={"token_recheck_s": 0.5}, attachments=[probe]).start()
    yield show
    show.stop()
    for role in ("viewer", "cohost", "mod", "admin"):
        secret = tokens[role].split("_", 2)[2]
        assert secret[:8] not in show.logs.text, "a token (or a piece of it) leaked into the logs"


def publish(runner: ShowRunner, event: object) -> None:
    runner.call(lambda: runner.show.control.publish(event))


def audit_entries(runner: ShowRunner, tokens: dict[str, str]) -> list[dict[str, Any]]:
    r = httpx.get(f"{runner.url}/api/audit?limit=1000", headers=auth(tokens["admin"]))
    r.raise_for_status()
    return r.json()["entries"]


def ws_connect(url: str) -> ClientConnection:
    """An open client connection that the test closes itself (entered: the context-manager form)."""
    return connect(url, open_timeout=10).__enter__()


def ws_url(runner: ShowRunner) -> str:
    return runner.url.replace("http://", "ws://") + "/ws/audio"


def hello(token: str, name: str = "cohost", **over: Any) -> str:
    return json.dumps({"type": "auth", "token": token, "input": name, "sample_rate": RATE, "format": "s16le", **over})


def open_audio(runner: ShowRunner, token: str, name: str = "cohost") -> ClientConnection:
    """An authenticated audio socket past its hello and first state message."""
    ws = ws_connect(ws_url(runner))
    ws.send(hello(token, name))
    first = json.loads(ws.recv(timeout=10))
    assert first["type"] == "hello" and first["input"] == name, first
    state = json.loads(ws.recv(timeout=10))
    assert state["type"] == "listening" and state["input"] == name, state
    return ws


def until_closed(ws: ClientConnection, timeout: float = 20.0) -> tuple[int, list[dict[str, Any]], str]:
    """Read until the server closes: (close code, JSON messages received, close reason)."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            raw = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(raw, str):
                messages.append(json.loads(raw))
    ws.close()
    rcvd = closed.value.rcvd
    assert rcvd is not None, "the server did not close the socket"
    return rcvd.code, messages, rcvd.reason


def sine(seconds: float, amplitude: int = 8000, hz: float = 440.0) -> np.ndarray:
    n = int(seconds * RATE)
    return (np.sin(np.arange(n) * 2 * np.pi * hz / RATE) * amplitude).astype("<i2")


class FrameWatch:
    """Samples the show's frame counter every 0.25 s on its own thread while bad clients do their worst."""

    def __init__(self, runner: ShowRunner) -> None:
        self.runner = runner
        self.samples: list[tuple[float, int, int]] = []  # (monotonic, frames, late frames)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FrameWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            status = self.runner.show.control.status()
            self.samples.append((time.monotonic(), status.frames, status.late_frames))
            self._stop.wait(0.25)


# ----- (c) the role ------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_a_cohost_token_gets_403_on_moderator_actions_and_can_stream(runner: ShowRunner, probe: AudioProbe,
                                                                      tokens: dict[str, str]):
    token = tokens["cohost"]
    with httpx.Client(base_url=runner.url, headers=auth(token)) as http:
        assert http.get("/api/whoami").json() == {"name": "cohost-user", "role": "cohost"}
        status = http.get("/api/status").json()
        assert status["listening"]["inputs"] == ["cohost", "guest"]
        assert status["listening"]["by_input"]["cohost"]["speaker"] == "Co-host"
        for path in MOD_ACTIONS:
            body = {"text": "hi"} if path == "/api/say" else {}
            r = http.post(path, json=body)
            assert r.status_code == 403, (path, r.status_code, r.text)
            assert "mod" in r.json()["detail"]
        assert http.get("/api/audit").status_code == 403
        assert http.put("/api/banned-words", json={"words": []}).status_code == 403
    denied = {e["action"] for e in audit_entries(runner, tokens) if e["actor"] == "cohost-user" and e["status"] == 403}
    assert {"interrupt", "say", "listening", "mute"} <= denied

    start = probe.seconds("cohost")
    tone = sine(1.0)
    ws = open_audio(runner, token)
    try:
        for i in range(20):  # 50 ms frames at real time
            ws.send(tone[i * 800:(i + 1) * 800].tobytes())
            time.sleep(0.05)
        probe.wait_seconds("cohost", start + 1.0, timeout=10)
    finally:
        ws.close()
    got = probe.audio("cohost")[int(start * RATE):int(start * RATE) + RATE]
    assert np.allclose(got, tone.astype(np.float32) / 32768, atol=1e-6)  # s16le decoded sample for sample


# ----- (d) the switches ------------------------------------------------------------------------------------
@pytest.mark.integration
def test_mute_and_listening_switches_reach_the_show_and_the_audit_log(runner: ShowRunner, tokens: dict[str, str]):
    switches = runner.show.control.listen_switches
    live = ws_connect(runner.url.replace("http://", "ws://") + "/ws")
    live.send(json.dumps({"type": "auth", "token": tokens["viewer"], "topics": ["listen"]}))
    assert json.loads(live.recv(timeout=5))["topics"] == ["listen"]
    page = open_audio(runner, tokens["cohost"])
    try:
        with httpx.Client(base_url=runner.url, headers=auth(tokens["mod"])) as http:
            r = http.post("/api/listening", json={"enabled": False})
            assert r.status_code == 200 and r.json()["result"] == {"enabled": False, "muted": []}
            assert runner.call(lambda: switches.enabled) is False
            r = http.post("/api/mute", json={"input": "cohost", "muted": True})
            assert r.status_code == 200 and r.json()["result"]["muted"] is True
            assert runner.call(lambda: set(switches.muted)) == {"cohost"}
            listening = http.get("/api/status").json()["listening"]
            assert listening["enabled"] is False and listening["muted"] == ["cohost"]
            assert listening["by_input"]["cohost"]["muted"] is True
            r = http.post("/api/mute", json={"input": "nobody", "muted": True})
            assert r.status_code == 404 and "unknown input 'nobody'" in r.json()["detail"]
            assert http.post("/api/mute", json={"input": "cohost"}).status_code == 422
            assert http.post("/api/listening", json={"enabled": "sometimes"}).status_code == 422
            http.post("/api/mute", json={"input": "cohost", "muted": False}).raise_for_status()
            http.post("/api/listening", json={"enabled": True}).raise_for_status()
        assert runner.call(lambda: (switches.enabled, set(switches.muted))) == (True, set())
        seen: list[dict[str, Any]] = []
        while len(seen) < 4:  # after the greeting (status, emotion, chat history) only the listen topic
            message = json.loads(live.recv(timeout=5))
            if message["type"] == "listen_switch":
                seen.append(message)
        assert [(m["type"], m["enabled"], m["muted"]) for m in seen] == [
            ("listen_switch", False, []), ("listen_switch", False, ["cohost"]), ("listen_switch", False, []),
            ("listen_switch", True, [])]
        on_page = [json.loads(page.recv(timeout=5)) for _ in range(4)]
        assert on_page == seen  # the co-host page hears the switches too
    finally:
        live.close()
        page.close()
    entries = audit_entries(runner, tokens)
    mine = [(e["action"], e["params"], e["status"]) for e in reversed(entries) if e["actor"] == "mod-user"]
    assert ("listening", {"enabled": False}, 200) in mine and ("listening", {"enabled": True}, 200) in mine
    assert ("mute", {"input": "cohost", "muted": True}, 200) in mine
    assert ("mute", {"input": "cohost", "muted": False}, 200) in mine
    assert ("mute", {"input": "nobody", "muted": True}, 404) in mine


# ----- (b) everything a client can get wrong -------------------------------------------------------------------
@pytest.mark.integration
def test_bad_audio_clients_get_their_close_code_and_the_show_keeps_its_frames(runner: ShowRunner, probe: AudioProbe,
                                                                             tokens: dict[str, str]):
    url = ws_url(runner)
    cohost = tokens["cohost"]
    results: dict[str, tuple[int, list[dict[str, Any]], str, float]] = {}

    def case(name: str, run: Callable[[], ClientConnection]) -> None:
        t0 = time.monotonic()
        ws = run()
        code, messages, reason = until_closed(ws)
        results[name] = (code, messages, reason, time.monotonic() - t0)

    def first(message: str | bytes) -> Callable[[], ClientConnection]:
        def run() -> ClientConnection:
            ws = ws_connect(url)
            ws.send(message)
            return ws
        return run

    def after_auth(send: Callable[[ClientConnection], None], name: str = "cohost") -> Callable[[], ClientConnection]:
        def run() -> ClientConnection:
            ws = open_audio(runner, cohost, name)
            try:
                send(ws)
            except ConnectionClosed:
                pass  # the server closed while we were still sending
            return ws
        return run

    def paced(frame: bytes, per_s: float, seconds: float) -> Callable[[ClientConnection], None]:
        def send(ws: ClientConnection) -> None:
            t0 = time.monotonic()
            i = 0
            while time.monotonic() - t0 < seconds:
                ws.send(frame)
                i += 1
                time.sleep(max(0.0, t0 + i / per_s - time.monotonic()))
        return send

    def flood(ws: ClientConnection) -> None:
        for _ in range(2000):
            ws.send(b"\0\0")

    def revoked() -> ClientConnection:
        store = PanelStore(Path(tokens["db"]))
        try:
            _, temp = store.add_token("temp-cohost", "cohost")
            ws = open_audio(runner, temp)
            ws.send(sine(0.1).tobytes())
            store.revoke("temp-cohost")
        finally:
            store.close()
        return ws

    slow = {  # these take their timeouts: run them alongside the rest
        "never authenticates": lambda: ws_connect(url),
        "authenticates, never sends audio": after_auth(lambda ws: None, "guest"),
    }
    fast = {
        "not JSON": first("hello"),
        "binary first": first(b"\0\0\0\0"),
        "no token": first(json.dumps({"type": "auth", "input": "cohost"})),
        "bad token": first(hello("sc_0123456789ab_" + "x" * 43)),
        "viewer token": first(hello(tokens["viewer"])),
        "unknown input": first(hello(cohost, "nobody")),
        "input not a string": first(hello(cohost, ["cohost"])),
        "48 kHz": first(hello(cohost, sample_rate=48000)),
        "float format": first(hello(cohost, format="f32le")),
        "odd byte count": after_auth(lambda ws: ws.send(b"\0" * 801)),
        "text after auth": after_auth(lambda ws: ws.send('{"type": "ping"}')),
        "40 KiB frame": after_auth(lambda ws: ws.send(b"\0" * 40 * 1024)),
        "100 KiB frame": after_auth(lambda ws: ws.send(b"\0" * 100 * 1024)),
        "3x real time": after_auth(paced(sine(0.15).tobytes(), 20, 8)),
        "a flood of tiny frames": after_auth(flood),
        "revoked token": revoked,
    }
    expected = {  # code, words the error message must hold
        "never authenticates": (4408, "no auth message within 5 s"),
        "authenticates, never sends audio": (4408, "no audio for 15 s"),
        "not JSON": (4401, "missing token"),
        "binary first": (4401, "missing token"),
        "no token": (4401, "missing token"),
        "bad token": (4401, "invalid or revoked token"),
        "viewer token": (4403, "needs the cohost role; this token has viewer"),
        "unknown input": (4404, 'unknown input "nobody"; the show offers: cohost, guest'),
        "input not a string": (4404, "unknown input"),
        "48 kHz": (4400, "sample_rate 16000"),
        "float format": (4400, "'s16le'"),
        "odd byte count": (4400, "801 bytes is an odd count"),
        "text after auth": (4400, "binary frames"),
        "40 KiB frame": (1009, "40960 bytes is over the 32 KiB limit"),
        "100 KiB frame": (1009, None),  # refused by the WebSocket layer (64 KiB), reason in the close frame
        "3x real time": (4429, "2x real time"),
        "a flood of tiny frames": (4429, "100 frames per second"),
        "revoked token": (4401, "token revoked"),
    }
    with FrameWatch(runner) as watch, ThreadPoolExecutor(len(slow)) as pool:
        pending = [pool.submit(case, name, run) for name, run in slow.items()]
        for name, run in fast.items():
            case(name, run)
        # the panel keeps serving while the slow ones wait out their timeouts
        assert httpx.get(f"{runner.url}/api/status", headers=auth(tokens["viewer"])).status_code == 200
        for future in pending:
            future.result(timeout=40)
    for name, (code, want_words) in expected.items():
        got, messages, reason, took = results[name]
        errors = [m for m in messages if m["type"] == "error"]
        print(f"{name:34} -> {got} after {took:5.2f} s: {errors[-1]['detail'] if errors else reason!r}")
        assert got == code, (name, got, messages, reason)
        if want_words is None:
            assert "exceeds limit" in reason, reason
            continue
        assert errors and errors[-1]["code"] == code, (name, messages)
        assert want_words in errors[-1]["detail"], (name, errors[-1]["detail"])
    assert 4.5 <= results["never authenticates"][3] < 8
    assert 15 <= results["authenticates, never sends audio"][3] < 19
    assert 1.5 <= results["3x real time"][3] < 4  # a 2 s burst, then 1 s of excess per second
    assert results["revoked token"][3] < 3  # recheck every 0.5 s
    # the show kept its frames the whole time: every 1 s window advanced by about a second of frames
    fps = runner.show.control.timebase.fps
    samples = watch.samples
    assert samples[-1][0] - samples[0][0] > 14  # the whole 15 s of the slowest case
    for (t0, f0, _), (t1, f1, _) in zip(samples, samples[4:], strict=False):
        assert f1 - f0 >= 0.8 * fps * (t1 - t0), (t1 - t0, f1 - f0)
    late = samples[-1][2] - samples[0][2]
    print(f"frames {samples[0][1]} -> {samples[-1][1]} in {samples[-1][0] - samples[0][0]:.1f} s, {late} late")
    assert late <= 0.02 * (samples[-1][1] - samples[0][1])
    # and a good client still streams
    before = probe.seconds("cohost")
    ws = open_audio(runner, cohost)
    try:
        ws.send(sine(0.5).tobytes())
        probe.wait_seconds("cohost", before + 0.5, timeout=10)
    finally:
        ws.close()
    denied = [e for e in audit_entries(runner, tokens) if e["action"] == "audio" and e["status"] == 403]
    assert denied and denied[0]["actor"] == "viewer-user"


@pytest.mark.integration
def test_a_second_page_on_the_same_input_takes_it_over(runner: ShowRunner, tokens: dict[str, str]):
    old = open_audio(runner, tokens["cohost"], "guest")
    new = open_audio(runner, tokens["mod"], "guest")
    try:
        code, messages, _ = until_closed(old, timeout=5)
        assert code == 4409 and "taken over by another co-host page (mod-user)" in messages[-1]["detail"]
        status = httpx.get(f"{runner.url}/api/status", headers=auth(tokens["viewer"])).json()
        assert status["listening"]["by_input"]["guest"]["streaming"] == "mod-user"
    finally:
        new.close()


# ----- (a) the page in a real Chromium, with a fake microphone ------------------------------------------------
def _fake_microphone(path: Path) -> Path:
    """'Hello Aiko, how are you today?' spoken by espeak: 16-bit 48 kHz mono with a little silence around it."""
    from engine.voice.espeak import EspeakVoice

    pcm = EspeakVoice(sample_rate=48000).synthesize("Hello Aiko, how are you today?", "en").pcm
    pad = np.zeros(int(0.25 * 48000), np.float32)
    data = (np.clip(np.concatenate([pad, pcm, pad]), -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(data.tobytes())
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    if shutil.which(CHROMIUM) is None:
        pytest.skip("Chromium missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    wav = _fake_microphone(tmp_path_factory.mktemp("mic") / "hello.wav")
    args = [*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required"]
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield b
        b.close()


def _since(probe: AudioProbe, name: str, seconds: float) -> np.ndarray:
    return probe.audio(name)[int(seconds * RATE):]


@pytest.mark.integration
def test_the_cohost_page_streams_the_microphone(browser, runner: ShowRunner, probe: AudioProbe,
                                                tokens: dict[str, str]):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 390, "height": 844}, permissions=["microphone"])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(runner.url + "/cohost")
    page.fill("#token", tokens["viewer"])
    page.click("#login-button")
    expect(page.locator("#login-error")).to_contain_text("needs a co-host token")
    page.fill("#token", tokens["cohost"])
    page.click("#login-button")
    expect(page.locator("#who")).to_have_text("cohost-user (cohost)")
    assert page.input_value("#token") == ""
    expect(page.locator("#input option")).to_have_count(2)
    page.select_option("#input", "cohost")

    # open mic: the espeak phrase arrives at the input, clearly louder than silence, and the meter moves
    page.check("input[name=mode][value=open]")
    start = probe.seconds("cohost")
    page.click("#mic")
    expect(page.locator("#conn")).to_have_text("on air")
    expect(page.locator("#sending")).to_have_attribute("data-on", "true")
    page.wait_for_function("() => Number(document.getElementById('meter').getAttribute('aria-valuenow')) >= 40",
                           timeout=15000)
    probe.wait_seconds("cohost", start + 3.0, timeout=20)
    heard = _since(probe, "cohost", start)
    loud = rms(heard)
    print(f"\nco-host page: {heard.shape[0] / RATE:.2f} s received, RMS {loud:.4f} "
          f"({20 * np.log10(loud + 1e-12):.1f} dBFS), peak {np.abs(heard).max():.3f}")
    assert heard.shape[0] >= RATE and loud > 10 * SILENCE_RMS

    # what the show says about the input: state, a partial replaced by its final, a barge-in
    publish(runner, ListeningChanged("cohost", "Co-host", "listening"))
    expect(page.locator("#state")).to_have_attribute("data-state", "listening")
    publish(runner, Heard("cohost", "Co-host", 41, "Hello Ai", "en", True))
    expect(page.locator("#transcript li.partial .text")).to_have_text("Hello Ai")
    publish(runner, Heard("cohost", "Co-host", 41, "Hello Aiko, how are you today?", "en", False, 2.1, 180.0))
    publish(runner, ListeningChanged("cohost", "Co-host", "thinking"))
    expect(page.locator("#transcript li.final .text").first).to_have_text("Hello Aiko, how are you today?")
    expect(page.locator("#transcript li.partial")).to_have_count(0)
    expect(page.locator("#state")).to_have_attribute("data-state", "thinking")
    publish(runner, Heard("guest", "Guest", 1, "not for this page", "en", False))  # another input's words
    publish(runner, Heard("cohost", "Co-host", 42, HOSTILE_TEXT, "en", False))
    expect(page.locator("#transcript li.final")).to_have_count(2)
    assert page.evaluate("window.__xss") is None
    assert page.locator("#transcript img, #transcript script, #transcript b").count() == 0
    expect(page.locator("#transcript")).not_to_contain_text("not for this page")
    publish(runner, ListeningChanged("cohost", "Co-host", "idle"))
    page.evaluate("window.scrollTo(0, 0)")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "cohost_page.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than a phone

    # push to talk: silence while the button is up, the microphone while Space (or the button) is held
    page.check("input[name=mode][value=ptt]")
    expect(page.locator("#sending")).to_have_attribute("data-on", "false")
    time.sleep(0.4)  # frames already on their way
    mark = probe.seconds("cohost")
    probe.wait_seconds("cohost", mark + 1.0, timeout=10)
    assert np.abs(_since(probe, "cohost", mark)).max() == 0.0
    page.keyboard.down("Space")
    expect(page.locator("#talk")).to_have_attribute("data-down", "true")
    time.sleep(0.3)
    mark = probe.seconds("cohost")
    probe.wait_seconds("cohost", mark + 2.5, timeout=10)
    page.keyboard.up("Space")
    expect(page.locator("#talk")).to_have_attribute("data-down", "false")
    assert rms(_since(probe, "cohost", mark)[: int(2.5 * RATE)]) > 10 * SILENCE_RMS
    box = page.locator("#talk").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    expect(page.locator("#sending")).to_have_attribute("data-on", "true")
    page.mouse.up()
    expect(page.locator("#sending")).to_have_attribute("data-on", "false")

    # a moderator mutes the input: the page says so
    with httpx.Client(base_url=runner.url, headers=auth(tokens["mod"])) as http:
        http.post("/api/mute", json={"input": "cohost", "muted": True}).raise_for_status()
        expect(page.locator("#state")).to_have_attribute("data-state", "muted")
        http.post("/api/mute", json={"input": "cohost", "muted": False}).raise_for_status()
        expect(page.locator("#state")).to_have_attribute("data-state", "idle")
    page.click("#mic")
    expect(page.locator("#conn")).to_have_text("mic off")
    assert tokens["cohost"] not in page.content()
    assert not errors, errors
    context.close()


@pytest.mark.integration
def test_the_panel_shows_listening_and_its_switches_work(browser, runner: ShowRunner, tokens: dict[str, str]):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(runner.url + "/")
    page.fill("#token", tokens["mod"])
    page.click("#login-button")
    expect(page.locator("#conn")).to_have_text("live")
    row = page.locator("#listen-inputs tr[data-input=cohost]")
    expect(row.locator(".speaker")).to_have_text("Co-host")
    stream = open_audio(runner, tokens["cohost"])
    try:
        expect(row).to_contain_text("page: cohost-user")  # the status says who streams
        publish(runner, ListeningChanged("cohost", "Co-host", "listening"))
        expect(row.locator(".state")).to_have_text("listening")
        publish(runner, Heard("cohost", "Co-host", 7, "Nice to", "en", True))
        line = page.locator("#heard li").filter(has_text="Nice to")
        expect(line).to_have_class("partial")
        publish(runner, Heard("cohost", "Co-host", 7, "Nice to meet you", "en", False))
        expect(line).to_have_class("final")
        expect(line.locator(".text")).to_have_text("Nice to meet you")
        expect(page.locator("#heard li")).to_have_count(1)
        publish(runner, ListeningChanged("cohost", "Co-host", "idle"))
        from streamer.events import BargeIn

        publish(runner, BargeIn("cohost", "Co-host", 231.4, ("One", "two")))
        expect(page.locator("#heard li.barge-in")).to_contain_text("cut in after 231 ms")
        with page.expect_response("**/api/mute") as info:
            row.locator("button.mute").click()
        assert info.value.status == 200
        expect(row.locator(".state")).to_have_text("muted")
        assert runner.call(lambda: set(runner.show.control.listen_switches.muted)) == {"cohost"}
        with page.expect_response("**/api/mute"):
            row.locator("button.mute").click()
        expect(row.locator(".state")).to_have_text("idle")
        with page.expect_response("**/api/listening"):
            page.click("#listen-toggle")
        expect(page.locator("#listen-summary")).to_have_text("Listening is OFF")
        assert runner.call(lambda: runner.show.control.listen_switches.enabled) is False
        page.locator("#listen-card").screenshot(path=str(ARTIFACTS / "panel_listening.png"))
        with page.expect_response("**/api/listening"):
            page.click("#listen-toggle")
        assert runner.call(lambda: runner.show.control.listen_switches.enabled) is True
        expect(page.locator("#audit")).to_contain_text("listening")
    finally:
        stream.close()
    assert not errors, errors
    page.close()


@pytest.mark.integration
def test_captions_show_the_cohost_beside_the_character(browser, runner: ShowRunner, tokens: dict[str, str]):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 400})
    page.goto(f"{runner.url}/overlays/captions.html#token={tokens['viewer']}&cohost=8")
    chat = browser.new_page(viewport={"width": 600, "height": 400})
    chat.goto(f"{runner.url}/overlays/chat.html#token={tokens['viewer']}")
    time.sleep(0.5)  # both sockets are up
    # the real path: recognised words are moderated, then captioned under the speaker's name
    decision = runner.call(lambda: runner.show.control.submit_voice("Nice to meet you, Aiko!", "Co-host", "en",
                                                                    "cohost"))
    assert decision.accepted
    said = page.locator("#cohost .said").last
    expect(said.locator(".speaker")).to_have_text("Co-host")
    expect(said.locator(".text")).to_have_text("Nice to meet you, Aiko!")
    expect(page.locator("#captions .w.now")).to_have_count(1, timeout=20000)  # the character answers
    expect(said).to_be_visible()
    time.sleep(0.5)  # the character's line has faded in
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "overlay_captions_cohost.png"), omit_background=True)
    # hostile words that got past moderation still render as text: no markup, no reordering, bounded
    message = ChatMessage(platform="voice", user_name=HOSTILE_SPEAKER, text=HOSTILE_TEXT, user_id="voice:cohost")
    publish(runner, ChatDecided(message, ModerationDecision(True, HOSTILE_TEXT)))
    hostile = page.locator("#cohost .said").filter(has_text="onerror").last
    expect(hostile.locator(".speaker")).to_have_text("<b>Cohost</b>")
    text = hostile.locator(".text").text_content()
    assert text.startswith('<img src=x onerror="window.__xss=1"> evil <script>') and len(text) <= 300
    assert "\u202e" not in text and "\u202e" not in hostile.text_content()
    assert page.evaluate("window.__xss") is None
    assert page.locator("#cohost img, #cohost script, #cohost b").count() == 0
    assert hostile.evaluate("e => getComputedStyle(e.querySelector('.text')).unicodeBidi") == "isolate"
    width = hostile.evaluate("e => e.getBoundingClientRect().right")
    assert width <= 1280
    expect(page.locator("#cohost .said")).to_have_count(0, timeout=15000)  # gone after a few seconds
    expect(chat.locator("#chatbox")).not_to_contain_text("Nice to meet you")  # a co-host is not chat
    for p in (page, chat):
        assert tokens["viewer"] not in p.content()
        p.close()
    runner.call(lambda: runner.show.control.interrupt())
