"""OBS control (streamer/obs.py) against a real, headless OBS Studio 29 with obs-websocket 5.

The feed is the real thing: the procedural renderer's frames, encoded by the OutputHub and sent
as MPEG-TS over UDP by a UdpSink, played by the OBS Media Source our controller creates.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import io
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from engine.clock import FrameClock, TimeBase
from streamer.config import ObsConfig, ObsOverlayConfig
from streamer.events import CaptionChanged
from streamer.obs import ObsController
from streamer.obs_captions import CaptionFollower, wrap_caption
from tests.obs_support import OBS, XVFB, ObsStudio, Xvfb, free_port, wait_until

W, H, FPS, RATE = 320, 240, 30, 48000
ARTIFACTS = Path(__file__).parent / "artifacts"
HAVE_OBSWS = importlib.util.find_spec("obsws_python") is not None
needs_obs = pytest.mark.skipif(OBS is None or XVFB is None or not HAVE_OBSWS,
                               reason="needs OBS Studio, Xvfb (apt-get install obs-studio xvfb) and obsws-python")


# ----- unit: config and the caption hook -------------------------------------------------------
@pytest.mark.unit
def test_config_rejects_unknown_keys_and_stores_only_the_env_name() -> None:
    cfg = ObsConfig.model_validate({"enabled": True, "password_env": "MY_OBS_PW",
                                    "overlays": [{"name": "chat", "url": "http://127.0.0.1:8765/overlay/chat"}]})
    assert cfg.password_env == "MY_OBS_PW" and cfg.overlays[0].css.startswith("body")
    with pytest.raises(ValidationError, match="password"):
        ObsConfig.model_validate({"password": "hunter2"})
    with pytest.raises(ValidationError):
        ObsConfig.model_validate({"feed_url": "/tmp/file.ts"})
    with pytest.raises(ValidationError):
        ObsConfig.model_validate({"password_env": "not a name"})


@pytest.mark.unit
def test_caption_follower_shows_heard_words_then_clears() -> None:
    async def scenario() -> list[str]:
        seen: list[str] = []
        follower = CaptionFollower(seen.append, clear_after_s=0.1)
        first, second = ("hello", "there"), ("こんにちは", "世界")
        script = [(1, 0, first), (1, 0, first), (1, 1, first), (2, 0, second), (2, 1, second)]
        for n, (speech, index, words) in enumerate(script):
            follower(CaptionChanged(n, True, speech, index, words, "en" if speech == 1 else "ja"))
        for n in range(len(script), len(script) + 6):
            follower(CaptionChanged(n, False))
        await asyncio.sleep(0.3)  # past clear_after_s
        return seen

    assert asyncio.run(scenario()) == ["hello", "hello there", "こんにちは", "こんにちは世界", ""]


@pytest.mark.unit
def test_wrap_caption_keeps_short_text_and_wraps_long_text_by_display_width() -> None:
    assert wrap_caption("Hello, chat! こんにちは", 44, 2) == "Hello, chat! こんにちは"
    long = "the quick brown fox jumps over the lazy dog and keeps running far away"
    wrapped = wrap_caption(long, 20, 2)
    assert wrapped == "dog and keeps\nrunning far away"  # the newest two lines of four
    assert wrap_caption(long, 20, 9).replace("\n", " ") == long
    ja = wrap_caption("配信へようこそ！今日はいい天気ですね。", 16, 3)
    assert ja.split("\n") == ["配信へようこそ！", "今日はいい天気で", "すね。"]  # 2 columns a character


@pytest.mark.unit
def test_no_obs_means_backoff_not_crash_and_stop_is_prompt() -> None:
    port = free_port()  # nothing listens here

    async def scenario() -> tuple[list[str], float]:
        states: list[str] = []
        cfg = ObsConfig(port=port, backoff_initial_s=0.05, backoff_max_s=0.2, password_env=None)
        controller = ObsController(cfg, publish=lambda change: states.append(change.state))
        await controller.start()
        controller.set_caption("queued while OBS is away")
        async with asyncio.timeout(10):
            status = await controller.wait_for(lambda s: s.last_error is not None)
        assert "ConnectionRefused" in (status.last_error or "")
        t0 = time.monotonic()
        await controller.stop()
        return states, time.monotonic() - t0

    states, stop_s = asyncio.run(scenario())
    assert states[0] == "connecting" and "reconnecting" in states and states[-1] == "stopped"
    assert stop_s < 2.0


# ----- integration: a real OBS -----------------------------------------------------------------
@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    if OBS is None or XVFB is None or not HAVE_OBSWS:
        pytest.skip("needs OBS Studio, Xvfb (apt-get install obs-studio xvfb) and obsws-python")
    server = Xvfb()
    try:
        yield server.display
    finally:
        server.close()


class Feed:
    """The real picture path: ProceduralRenderer -> OutputHub (H.264) -> UdpSink, paced at 30 fps."""

    def __init__(self, url: str) -> None:
        from engine.render.procedural.renderer import ProceduralRenderer
        from engine.state import neutral_state
        from streamer.outputs.encoder import EncoderSettings
        from streamer.outputs.hub import OutputHub
        from streamer.outputs.udp_sink import UdpSink

        self.renderer = ProceduralRenderer(W, H)
        self.state = neutral_state().unsqueeze(0)
        self.reference = self.renderer.render(self.state)[0].numpy()
        settings = EncoderSettings(width=W, height=H, timebase=TimeBase(FPS, RATE), keyframe_seconds=1.0,
                                   video_bitrate_kbps=800)
        self.hub = OutputHub(settings, [UdpSink(url)])
        self.hub.open()
        self.clock = FrameClock(TimeBase(FPS, RATE))
        self.stop_event = threading.Event()
        self.frames = 0
        self.thread = threading.Thread(target=self._run, name="test-obs-feed", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        silence = np.zeros(RATE // FPS, np.float32)
        self.clock.start()
        n = 0
        while not self.stop_event.is_set():
            self.clock.wait_for(n)
            frame = self.renderer.render(self.state)[0].numpy()
            self.hub.submit(n, frame, silence)
            self.frames = n = n + 1

    def close(self) -> None:
        self.stop_event.set()
        self.clock.stop()
        self.thread.join(10)
        self.hub.close(10)


def _screenshot(client, source: str, width: int | None = None) -> np.ndarray | None:  # type: ignore[no-untyped-def]
    data = {"sourceName": source, "imageFormat": "png"}
    if width:
        data["imageWidth"] = width
    try:
        reply = client.send("GetSourceScreenshot", data, raw=True)
    except Exception:  # 702 "Failed to render screenshot" until the first frame is decoded
        return None
    png = base64.b64decode(reply["imageData"].split(",", 1)[-1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _shows_reference(image: np.ndarray | None, reference: np.ndarray) -> bool:
    """True when OBS's picture of the Media Source is our rendered frame (H.264 + YUV round trip)."""
    if image is None or image.shape != reference.shape or image.std() < 10:
        return False
    return float(np.abs(image.astype(np.float32) - reference.astype(np.float32)).mean()) < 12.0


def _scene_items(client, scene: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [i["sourceName"] for i in client.send("GetSceneItemList", {"sceneName": scene}, raw=True)["sceneItems"]]


@pytest.mark.integration
@needs_obs
def test_obs_scene_feed_captions_pause_and_reconnect(display: str, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # everything, obsws-python's own records included: no password anywhere
    port, udp_port = free_port(), free_port(socket.SOCK_DGRAM)
    obs = ObsStudio(tmp_path / "home1", display, port)
    obs_start_s = obs.start()
    feed = Feed(f"udp://127.0.0.1:{udp_port}")
    cfg = ObsConfig(
        enabled=True, port=port, password_env="STAGECAST_TEST_OBS_PW", feed_url=f"udp://127.0.0.1:{udp_port}",
        overlays=[ObsOverlayConfig(name="stagecast chat", url="http://127.0.0.1:8765/overlay/chat")],
        backoff_initial_s=0.2, backoff_max_s=1.0, heartbeat_s=0.5,
    )
    timings: dict[str, float] = {"obs_start_s": obs_start_s}
    obs2: ObsStudio | None = None
    client = client2 = None
    states: list[tuple[str, str]] = []

    async def scenario() -> None:
        nonlocal obs2, client, client2
        controller = ObsController(cfg, publish=lambda c: states.append((c.state, c.detail)), password=obs.password)
        await controller.start()
        try:
            async with asyncio.timeout(30):
                status = await controller.wait_for(lambda s: s.connected)
            timings["setup_ms"] = status.setup_ms or 0.0
            assert status.obs_version and status.obs_version.startswith(("29.", "30.", "31.", "32."))
            client = await asyncio.to_thread(obs.client)

            # Scene and sources exist, stacked feed < overlays < caption.
            kinds = client.send("GetInputKindList", {"unversioned": False}, raw=True)["inputKinds"]
            scenes = [s["sceneName"] for s in client.send("GetSceneList", raw=True)["scenes"]]
            assert cfg.scene in scenes and cfg.pause_scene in scenes
            items = _scene_items(client, cfg.scene)
            expected = [cfg.media_source, cfg.caption_source]
            if "browser_source" in kinds:
                expected.insert(1, "stagecast chat")
            else:  # Debian's OBS has no obs-browser: reported, not fatal
                assert status.missing == ("stagecast chat",)
            assert items == expected
            media = client.send("GetInputSettings", {"inputName": cfg.media_source}, raw=True)
            assert media["inputKind"] == "ffmpeg_source"
            assert media["inputSettings"]["input"] == cfg.feed_url
            assert media["inputSettings"]["is_local_file"] is False
            program = client.send("GetCurrentProgramScene", raw=True)["currentProgramSceneName"]
            assert program == cfg.scene

            # Captions: unicode, coalesced, read back from OBS.
            controller.set_caption("first")
            controller.set_caption("Hello, chat! こんにちは")
            async with asyncio.timeout(10):
                await controller.sync()
            text = client.send("GetInputSettings", {"inputName": cfg.caption_source}, raw=True)
            assert text["inputSettings"]["text"] == "Hello, chat! こんにちは"

            long = "Welcome to the stream, everyone! Today we talk about cats. 今日は猫の話をしましょう。"
            controller.set_caption(long)
            async with asyncio.timeout(10):
                await controller.sync()
            text = client.send("GetInputSettings", {"inputName": cfg.caption_source}, raw=True)
            assert text["inputSettings"]["text"] == wrap_caption(long, cfg.caption_line_chars, cfg.caption_lines)
            assert text["inputSettings"]["text"].count("\n") == 1

            # Our character, through H.264/UDP, in OBS.
            shown = await asyncio.to_thread(
                wait_until, lambda: _shows_reference(_screenshot(client, cfg.media_source), feed.reference),
                45, "the Media Source to show the rendered character")
            timings["first_picture_s"] = shown
            scene_png = await controller.screenshot(width=1280)
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / "obs_scene.png").write_bytes(scene_png)
            scene_img = np.asarray(Image.open(io.BytesIO(scene_png)).convert("RGB"))
            assert scene_img.std() > 10

            # A second controller on the same OBS re-applies without duplicating anything or
            # restarting the playing feed (idempotent setup).
            cursor_before = client.send("GetMediaInputStatus", {"inputName": cfg.media_source}, raw=True)
            other = ObsController(cfg, password=obs.password)
            await other.start()
            async with asyncio.timeout(30):
                await other.wait_for(lambda s: s.connected)
            await other.stop()
            assert _scene_items(client, cfg.scene) == expected
            cursor_after = client.send("GetMediaInputStatus", {"inputName": cfg.media_source}, raw=True)
            assert cursor_after["mediaState"] == "OBS_MEDIA_STATE_PLAYING"
            assert cursor_after["mediaCursor"] >= cursor_before["mediaCursor"]

            # Pause / resume switch the program scene.
            controller.on_pause()
            async with asyncio.timeout(10):
                await controller.sync()
            assert client.send("GetCurrentProgramScene", raw=True)["currentProgramSceneName"] == cfg.pause_scene
            controller.on_resume()
            async with asyncio.timeout(10):
                await controller.sync()
            assert client.send("GetCurrentProgramScene", raw=True)["currentProgramSceneName"] == cfg.scene

            # OBS crashes; a new, empty OBS comes up on the same port: our scene comes back.
            await asyncio.to_thread(client.disconnect)
            client = None
            t_kill = time.monotonic()
            await asyncio.to_thread(obs.kill)
            async with asyncio.timeout(15):
                await controller.wait_for(lambda s: not s.connected)
            controller.set_caption("after the restart")  # wanted while OBS is away: applied on reconnect
            obs2 = ObsStudio(tmp_path / "home2", display, port, password=obs.password)
            timings["obs_restart_s"] = await asyncio.to_thread(obs2.start)
            async with asyncio.timeout(60):
                status = await controller.wait_for(lambda s: s.connected and s.connects == 2)
            timings["kill_to_reapplied_s"] = time.monotonic() - t_kill
            timings["reconnect_s"] = status.reconnect_s or 0.0
            client2 = await asyncio.to_thread(obs2.client)
            scenes = [s["sceneName"] for s in client2.send("GetSceneList", raw=True)["scenes"]]
            assert cfg.scene in scenes and cfg.pause_scene in scenes
            assert _scene_items(client2, cfg.scene) == expected
            text = client2.send("GetInputSettings", {"inputName": cfg.caption_source}, raw=True)
            assert text["inputSettings"]["text"] == "after the restart"
            assert client2.send("GetCurrentProgramScene", raw=True)["currentProgramSceneName"] == cfg.scene
            timings["first_picture_after_restart_s"] = await asyncio.to_thread(
                wait_until, lambda: _shows_reference(_screenshot(client2, cfg.media_source), feed.reference),
                45, "the new OBS to show the character")
        finally:
            await controller.stop()

    try:
        asyncio.run(scenario())
    except BaseException:
        print("OBS log tail:\n" + obs.log_tail() + ("\n--- second OBS:\n" + obs2.log_tail() if obs2 else ""))
        raise
    finally:
        for c in (client, client2):
            if c is not None:
                c.disconnect()
        feed.close()
        t0 = time.monotonic()
        for o in (obs, obs2):
            if o is not None:
                o.stop()
        timings["obs_stop_s"] = time.monotonic() - t0
        print("OBS timings:", {k: round(v, 3) for k, v in timings.items()})
    assert ("connected", "") in states and any(s == "reconnecting" and d for s, d in states)
    assert obs.password not in caplog.text
    assert "****" in caplog.text or "password=''" in caplog.text  # obsws-python's connect log, masked


@pytest.mark.integration
@needs_obs
def test_wrong_password_is_reported_without_leaking_it(display: str, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    obs = ObsStudio(tmp_path / "home", display, port)
    obs.start()
    wrong = "wrong-" + obs.password
    monkeypatch.setenv("STAGECAST_TEST_OBS_PW", wrong)

    async def scenario() -> str:
        controller = ObsController(ObsConfig(port=port, password_env="STAGECAST_TEST_OBS_PW",
                                             backoff_initial_s=0.1, backoff_max_s=0.5))
        await controller.start()
        try:
            async with asyncio.timeout(20):
                status = await controller.wait_for(lambda s: s.last_error is not None)
            return status.last_error or ""
        finally:
            await controller.stop()

    try:
        error = asyncio.run(scenario())
    finally:
        obs.stop()
    assert "password" in error
    assert wrong not in caplog.text and obs.password not in caplog.text
