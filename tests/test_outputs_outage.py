"""An RTMP ingest that dies mid-show, as it does in production: a real nginx-rtmp is SIGKILLed and
restarted 20 s later. While it is away, /api/status and the metrics say so (link state, seconds off
air, dropped packets); once it accepts again the stream is back within 2 s, starting at the live
edge: the first frame nginx records after the reconnect left the encoder less than 1 s before. A server
that takes the stream and drops it at once gets the doubling backoff instead of a reconnect loop."""

from __future__ import annotations

import contextlib
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engine.clock import FrameClock, TimeBase
from streamer.events import SinkChanged
from streamer.outputs.encoder import VIDEO_INDEX, AVEncoder, EncoderSettings
from streamer.outputs.hub import OutputHub
from streamer.outputs.rtmp_sink import RtmpSink
from tests.panel_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ShowRunner
from tests.rtmp_support import (
    EncodeLog,
    NginxRtmp,
    PublishLog,
    first_video_packet,
    frame_id,
    free_port,
    have_nginx_rtmp,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not have_nginx_rtmp(), reason="nginx with the rtmp module is not installed "
                                                      "(apt-get install nginx libnginx-mod-rtmp)"),
]
OUTAGE_S = 20.0
FPS = 30


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, keyed by (name, sorted labels)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@contextlib.contextmanager
def pages(url: str, tokens: dict[str, str]) -> Any:
    """The status overlay and the panel (logged in as a moderator) in a real Chromium, or None without one."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        yield None
        return
    if shutil.which(CHROMIUM) is None:
        yield None
        return
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        overlay = browser.new_page(viewport={"width": 700, "height": 160})
        overlay.goto(f"{url}/overlays/status.html#token={tokens['viewer']}")
        panel = browser.new_page(viewport={"width": 1400, "height": 1100})
        panel.goto(url + "/")
        panel.fill("#token", tokens["mod"])
        panel.click("#login-button")
        try:
            yield overlay, panel
        finally:
            browser.close()


class Watcher:
    """Polls /api/status and /api/metrics the way a dashboard would, keeping what rtmp0 looked like."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(base_url=url, headers=auth(token), timeout=5)
        self.samples: list[tuple[float, dict[str, Any], dict[Any, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-watcher", daemon=True)
        self.error: BaseException | None = None

    def sample(self) -> tuple[float, dict[str, Any], dict[Any, float]]:
        status = self.http.get("/api/status").json()
        sink = next(s for s in status["sinks"] if s["name"] == "rtmp0")
        metrics = metric_values(self.http.get("/api/metrics").text)
        return time.monotonic(), sink, metrics

    def _run(self) -> None:
        try:
            while not self._stop.wait(0.5):
                self.samples.append(self.sample())
        except BaseException as exc:  # re-raised by stop(): a failing poll fails the test
            self.error = exc

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        if self.error is not None:
            raise self.error


@pytest.mark.slow  # the 20 s outage is the spec: 40-60 s in all
def test_rtmp_outage_is_reported_and_the_stream_comes_back_fast_at_the_live_edge(
        tmp_path: Path, tokens: dict[str, str]) -> None:
    publishes = PublishLog()
    nginx = NginxRtmp(tmp_path / "nginx", publishes)
    nginx.start()
    encoded = EncodeLog()
    config = {"outputs": {"recording": {"enabled": False},
                          "rtmp": [{"url": f"rtmp://127.0.0.1:{nginx.port}/live/outage", "stream_key_env": None}]}}
    runner = ShowRunner(Path(tokens["db"]), config=config, extra_sinks=[encoded]).start()
    watcher = Watcher(runner.url, tokens["viewer"])
    try:
        publishes.wait_count(1, 30)
        time.sleep(3)  # on air for a while
        _, before, _ = watcher.sample()
        assert before["state"] == "live", before

        with pages(runner.url, tokens) as browser_pages:
            if browser_pages is not None:
                overlay, panel = browser_pages
                sync_api = pytest.importorskip("playwright.sync_api")
                sync_api.expect(overlay.locator('#links .link[data-state="live"]')).to_contain_text("rtmp0 live")
            nginx.kill()
            killed_at = time.monotonic()
            watcher.start()
            if browser_pages is not None:  # the overlay and the panel say it too, with the time off air
                reconnecting = overlay.locator('#links .link[data-state="reconnecting"]')
                sync_api.expect(reconnecting).to_contain_text(re.compile(r"rtmp0 reconnecting · off air \d+ s"))
                sync_api.expect(panel.locator("#health")).to_contain_text(re.compile(r"rtmp0: reconnecting \d+ s"))
                ARTIFACTS.mkdir(exist_ok=True)
                overlay.screenshot(path=str(ARTIFACTS / "overlay_status_outage.png"), omit_background=True)
            time.sleep(max(0.0, killed_at + OUTAGE_S - time.monotonic()))
            accepted_at = nginx.start()
            back_at = publishes.wait_count(2, 15)
            if browser_pages is not None:
                sync_api.expect(overlay.locator('#links .link[data-state="live"]')).to_contain_text("1 reconnects")
            time.sleep(max(0.0, back_at + 3 - time.monotonic()))  # on air again; the recording gets some seconds
        watcher.stop()
        _, after, metrics_after = watcher.sample()
    finally:
        watcher.http.close()
        runner.stop()
        nginx.stop()
        publishes.close()

    # While nginx was away, status and metrics said so, and said how long.
    late = [(t, s, m) for t, s, m in watcher.samples if killed_at + 5 < t < accepted_at]
    assert late, "no status sample during the outage"
    for t, sink, metrics in late:
        assert sink["state"] == "reconnecting", sink
        assert sink["off_air_s"] >= t - killed_at - 2, (t - killed_at, sink)
        assert sink["link"]["error"], sink
        assert metrics[("stagecast_sink_live", (("sink", "rtmp0"),))] == 0.0
        assert metrics[("stagecast_sink_state", (("sink", "rtmp0"), ("state", "reconnecting")))] == 1.0
        assert metrics[("stagecast_sink_outage_seconds", (("sink", "rtmp0"),))] >= t - killed_at - 2
    dropped = [s["dropped"] for _, s, _ in late]
    assert dropped[-1] > dropped[0] > before["dropped"], dropped  # the outage drops what viewers never get

    # Back: live, one reconnect, about 20 s off air in all, in status and metrics.
    assert after["state"] == "live" and after["off_air_s"] == 0.0, after
    assert after["reconnects"] == 1, after
    assert OUTAGE_S - 1 <= after["off_air_total_s"] <= OUTAGE_S + 5, after
    assert metrics_after[("stagecast_sink_live", (("sink", "rtmp0"),))] == 1.0
    assert metrics_after[("stagecast_sink_reconnects_total", (("sink", "rtmp0"),))] == 1.0
    assert metrics_after[("stagecast_sink_off_air_seconds_total", (("sink", "rtmp0"),))] >= OUTAGE_S - 1

    # Fast: back on air within 2 s of nginx accepting connections again.
    reconnect_s = back_at - accepted_at
    # At the live edge: the first picture nginx recorded after the reconnect is one the show had just made.
    recordings = nginx.recordings()
    assert len(recordings) == 2, recordings
    left_encoder, pts = encoded.lookup(frame_id(first_video_packet(recordings[-1])))
    live_pts = encoded.newest_pts(back_at)
    lag_s = back_at - left_encoder
    print(f"\nback {reconnect_s:.2f} s after nginx accepted; first frame after the reconnect: pts {pts}, "
          f"{lag_s:.2f} s after it left the encoder, {(live_pts - pts) / FPS:.2f} s behind the live edge")
    assert reconnect_s <= 2.0, reconnect_s
    assert lag_s <= 1.0, lag_s
    assert (live_pts - pts) / FPS <= 1.0

    # The log said what happened in true words: no failure reported under "live".
    text = runner.logs.text
    assert not re.search(r"rtmp0: live \(", text), text
    assert re.search(r"rtmp0: reconnecting \(link lost", text), text
    # ... and so did the periodic status line (every 10 s: at least one fell inside the outage).
    assert re.search(r"sinks: .*rtmp0 reconnecting \(\d+ s off air now, \d+ s in all, 0 reconnects, \d+ dropped\)",
                     text), text


class CountingRtmpSink(RtmpSink):
    """The real RTMP sink, counting its TCP probes."""

    probes = 0

    def _probe(self) -> str:
        self.probes += 1
        return super()._probe()


def _feed(sink: RtmpSink, seconds: float) -> None:
    """Run a live-paced hub into ``sink`` for ``seconds``."""
    timebase = TimeBase(FPS, 48000)
    clock = FrameClock(timebase)
    frame = np.zeros((96, 128, 3), np.uint8)
    audio = np.zeros(timebase.samples_per_frame, np.float32)
    with OutputHub(EncoderSettings(width=128, height=96, timebase=timebase), [sink]) as hub:
        clock.start()
        for n in range(round(seconds * FPS)):
            clock.wait_for(n)
            hub.submit(n, frame, audio)


def test_a_server_that_is_down_is_probed_cheaply_and_one_that_refuses_gets_the_long_backoff(tmp_path: Path) -> None:
    # Nothing listens: only TCP probes, several a second, and no relay (no publish attempt) at all.
    down = CountingRtmpSink(f"rtmp://127.0.0.1:{free_port()}/live", "key", backoff_initial=1.0, backoff_max=30.0)
    _feed(down, 2.0)
    status = down.status
    assert status.attempts == 0 and down.probes >= 4, (status, down.probes)
    assert status.state == "closed" and "cannot reach 127.0.0.1" in status.last_error, status
    assert status.off_air_total_s >= 1.9 and status.packets_sent == 0, status

    # nginx accepts the connection but has no such application: it refuses to publish. Attempts back off
    # (1 s, 2 s, ...): at most 3 in 4 s, where a 0.5 s probe cadence would have made 8.
    publishes = PublishLog()
    nginx = NginxRtmp(tmp_path / "nginx", publishes)
    nginx.start()
    try:
        refused = CountingRtmpSink(f"rtmp://127.0.0.1:{nginx.port}/nosuchapp", "key", backoff_initial=1.0,
                                   backoff_max=30.0)
        _feed(refused, 4.0)
    finally:
        nginx.stop()
        publishes.close()
    status = refused.status
    print(f"\nrefused: {status.attempts} attempts in 4 s ({status.last_error})")
    assert 2 <= status.attempts <= 3, status
    assert "next try in" in status.last_error and status.packets_sent == 0 and not publishes.times, status


def test_a_requested_keyframe_comes_next_and_keeps_the_gop_cadence() -> None:
    encoder = AVEncoder(EncoderSettings(width=128, height=96, timebase=TimeBase(FPS, 48000), keyframe_seconds=2.0))
    rng = np.random.default_rng(0)
    keys = []
    for n in range(200):
        if n == 45:
            encoder.request_keyframe()
        for packet in encoder.encode(n, rng.integers(0, 255, (96, 128, 3), np.uint8), np.zeros(1600, np.float32)):
            if packet.stream_index == VIDEO_INDEX and packet.is_keyframe:
                keys.append(packet.pts)
    encoder.close()
    assert keys == [0, 45, 60, 120, 180], keys


def test_a_clean_stop_with_obs_and_rtmp_logs_no_degradation(tmp_path: Path, tokens: dict[str, str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Start, go on air, stop: every state word in the log is true. Nothing failed, so no component is
    ever reported degraded, the link is never said to be live with an error, and it ends closed."""
    from streamer.config import ObsConfig
    from streamer.obs_attach import ObsAttachment
    from tests.obs_support import OBS, XVFB, ObsStudio, Xvfb

    if OBS is None or XVFB is None:
        pytest.skip("needs OBS Studio and Xvfb (apt-get install obs-studio xvfb)")
    publishes = PublishLog()
    nginx = NginxRtmp(tmp_path / "nginx", publishes)
    nginx.start()
    display = Xvfb()
    obs = ObsStudio(tmp_path / "home", display.display, free_port())
    try:
        obs.start()
        monkeypatch.setenv("STAGECAST_TEST_OBS_PW", obs.password)
        attachment = ObsAttachment(ObsConfig(enabled=True, port=obs.port, password_env="STAGECAST_TEST_OBS_PW",
                                             feed_url=f"udp://127.0.0.1:{free_port()}"))
        config = {"outputs": {"recording": {"enabled": False},
                              "rtmp": [{"url": f"rtmp://127.0.0.1:{nginx.port}/live/clean", "stream_key_env": None}]}}
        runner = ShowRunner(Path(tokens["db"]), config=config, attachments=[attachment]).start()
        try:
            publishes.wait_count(1, 30)
            deadline = time.monotonic() + 30
            while attachment.controller is None or not attachment.controller.status.connected:
                assert time.monotonic() < deadline, "OBS did not connect"
                time.sleep(0.1)
            time.sleep(1)
        finally:
            runner.stop()
    finally:
        obs.stop()
        display.close()
        nginx.stop()
        publishes.close()
    health = [line for line in runner.logs.lines if "stagecast.health" in line]
    assert health and not [line for line in health if "degraded" in line or "down" in line], health
    link = [line for line in runner.logs.lines if "rtmp0: " in line and "stagecast.outputs" in line]
    assert link and link[-1].endswith("rtmp0: closed"), link
    assert not [line for line in link if re.search(r"rtmp0: (live|closed) \(", line)], link


def test_resume_is_configured_per_rtmp_output_and_a_wrong_value_is_named() -> None:
    from streamer.config import ConfigError, parse_config
    from streamer.outputs.factory import build_sinks

    url = "rtmp://127.0.0.1:1935/live/x"
    config = parse_config({"outputs": {"recording": {"enabled": False}, "rtmp": [
        {"url": url, "stream_key_env": None}, {"url": url, "stream_key_env": None, "resume": "buffered"}]}})
    sinks, _ = build_sinks(config)
    assert [s.resume for s in sinks if isinstance(s, RtmpSink)] == ["live", "buffered"]
    with pytest.raises(ConfigError, match=r"outputs\.rtmp\.0\.resume"):
        parse_config({"outputs": {"rtmp": [{"url": url, "stream_key_env": None, "resume": "replay"}]}})


@pytest.mark.slow  # six publishes, each held off by the backoff it earned: about 25 s
def test_a_server_that_takes_the_stream_and_drops_it_gets_the_backoff_until_a_link_holds(tmp_path: Path) -> None:
    """A platform that accepts the publish and ends it a moment later (a bad key on some ingests, an
    overloaded edge) must not be hammered: each short-lived link earns the doubling backoff (1, 2, 4, 4 s).
    A link that held past STABLE_S was a working stream, so losing it reconnects at once and starts the
    backoff over."""
    from streamer.outputs.network_sink import STABLE_S

    lives = [0.5, 0.5, 0.5, 0.5, STABLE_S + 1.0, 0.5]  # how long nginx lets each publish stay live
    holds = [1.0, 2.0, 4.0, 4.0, 0.0, 1.0]  # the wait the sink owes after each drop
    states: list[tuple[float, str]] = []
    publishes = PublishLog()
    nginx = NginxRtmp(tmp_path / "nginx", publishes)
    nginx.start()

    def on_change(event: object) -> None:
        assert isinstance(event, SinkChanged), event
        states.append((time.monotonic(), event.state))

    sink = RtmpSink(f"rtmp://127.0.0.1:{nginx.port}/live", "flappy", backoff_initial=1.0, backoff_max=4.0,
                    publish=on_change)
    drops: list[float] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def live_after(t: float) -> float:
        deadline = time.monotonic() + 20
        while not (live := [at for at, s in list(states) if s == "live" and at >= t]):
            assert time.monotonic() < deadline, f"the sink did not go live after the publish: {states}"
            time.sleep(0.01)
        return live[0]

    def server() -> None:
        try:
            for i, life in enumerate(lives, 1):
                on_air = live_after(publishes.wait_count(i, 30))
                time.sleep(max(0.0, on_air + life - time.monotonic()))
                nginx.drop_publisher("flappy")
                drops.append(time.monotonic())
            publishes.wait_count(len(lives) + 1, 30)
        except BaseException as exc:
            failure.append(exc)
        finally:
            done.set()

    timebase = TimeBase(FPS, 48000)
    clock = FrameClock(timebase)
    frame = np.zeros((96, 128, 3), np.uint8)
    audio = np.zeros(timebase.samples_per_frame, np.float32)
    thread = threading.Thread(target=server, name="test-flappy-server", daemon=True)
    try:
        with OutputHub(EncoderSettings(width=128, height=96, timebase=timebase), [sink]) as hub:
            clock.start()
            thread.start()
            n = 0
            while not done.is_set():
                assert n < 90 * FPS, "the test ran past 90 s"
                clock.wait_for(n)
                hub.submit(n, frame, audio)
                n += 1
        thread.join(5)
    finally:
        nginx.stop()
        publishes.close()
    if failure:
        raise failure[0]
    gaps = [publishes.times[i + 1] - drops[i] for i in range(len(drops))]
    print("\ndrop -> next publish: " + ", ".join(f"{g:.2f} s (owed {h:.0f})" for g, h in zip(gaps, holds, strict=True)))
    for i, (gap, hold) in enumerate(zip(gaps, holds, strict=True)):
        assert gap >= hold, f"drop {i + 1}: published again {gap:.2f} s after, before its {hold} s backoff"
        assert gap < hold + 2.0, f"drop {i + 1}: published again only {gap:.2f} s after (owed {hold} s)"
    assert sink.status.reconnects >= len(lives), sink.status
