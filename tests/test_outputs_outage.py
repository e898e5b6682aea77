"""An RTMP ingest that dies mid-show, as it does in production: a real nginx-rtmp is SIGKILLed and
restarted 20 s later. While it is away, /api/status and the metrics say so (link state, seconds off
air, dropped packets); once it accepts again the stream is back within 2 s, starting at the live
edge: the first frame nginx records after the reconnect left the encoder less than 1 s before."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.panel_support import ShowRunner
from tests.rtmp_support import EncodeLog, NginxRtmp, PublishLog, first_video_packet, frame_id, have_nginx_rtmp

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

        nginx.kill()
        killed_at = time.monotonic()
        watcher.start()
        time.sleep(OUTAGE_S)
        accepted_at = nginx.start()
        back_at = publishes.wait_count(2, 15)
        time.sleep(3)  # on air again; the recording gets some seconds
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
