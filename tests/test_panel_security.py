"""Panel security against a real running Show over real HTTP and WebSocket: authentication on every
route, roles, validation messages, rate limits that leave the frame loop alone, revocation, and
tokens that never leak into logs or responses."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from streamer.panel.store import PanelStore
from tests.panel_support import ShowRunner

pytestmark = pytest.mark.integration
HERE = Path(__file__).resolve().parent
ADMIN_ROUTES = [("POST", "/api/ban"), ("POST", "/api/unban"), ("PUT", "/api/banned-words"), ("POST", "/api/reload"),
                ("POST", "/api/stop")]
MOD_ROUTES = [("POST", "/api/interrupt"), ("POST", "/api/say"), ("POST", "/api/emotion"), ("POST", "/api/pause"),
              ("POST", "/api/resume"), ("POST", "/api/skip"), ("POST", "/api/clear"), ("POST", "/api/timeout"),
              ("GET", "/api/audit"), ("GET", "/api/banned-words")]
SEEN: list[str] = []  # every response body and header block, checked for tokens at the end


@pytest.fixture(scope="module")
def runner(tokens: dict[str, str]):
    show = ShowRunner(Path(tokens["db"]), panel={"token_recheck_s": 0.5, "rate_per_s": 10, "burst": 40}).start()
    yield show
    show.stop()
    secrets = [tokens[r] for r in ("viewer", "mod", "admin")]
    leaked = [s for s in secrets if s in show.logs.text or any(s in seen for seen in SEEN)]
    assert not leaked, "a token leaked into the logs or a response"


@pytest.fixture()
def http(runner: ShowRunner):
    with httpx.Client(base_url=runner.url, event_hooks={"response": [_remember]}) as client:
        yield client


def _remember(response: httpx.Response) -> None:
    response.read()
    SEEN.append(str(response.headers) + "\n" + response.text)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_routes(runner: ShowRunner) -> list[tuple[str, str]]:
    app = runner.handle.server.config.app
    found = []
    for route in app.routes:
        path = getattr(route, "path", "")
        for method in sorted(getattr(route, "methods", None) or []):
            if path.startswith("/api/") and method != "HEAD":
                found.append((method, path))
    return found


def tampered(token: str) -> dict[str, str]:
    """The token with its last character changed (never back to itself)."""
    return auth(token[:-1] + ("B" if token.endswith("A") else "A"))


def test_every_api_route_needs_a_token(http: httpx.Client, runner: ShowRunner, tokens: dict[str, str]):
    routes = api_routes(runner)
    assert set(ADMIN_ROUTES + MOD_ROUTES + [("GET", "/api/status"), ("GET", "/api/preview.jpg")]) <= set(routes)
    wrong = [{}, {"Authorization": "Bearer"}, {"Authorization": f"Basic {tokens['admin']}"},
             auth("sc_0123456789ab_" + "x" * 43), tampered(tokens["admin"]), auth("nonsense")]
    for method, path in routes + [("GET", "/api/does-not-exist"), ("POST", "/api/say")]:
        for headers in wrong:
            r = http.request(method, path, headers=headers, content=b"{not json")
            assert r.status_code == 401, (method, path, headers.keys(), r.status_code)
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert r.json() == {"detail": "missing or invalid bearer token"}


def test_websocket_needs_a_token_in_its_first_message(runner: ShowRunner, tokens: dict[str, str]):
    ws_url = runner.url.replace("http://", "ws://") + "/ws"
    for first in ['{"type": "auth", "token": "sc_0123456789ab_' + "x" * 43 + '"}', '{"type": "hello"}', "garbage"]:
        with connect(ws_url) as ws:
            ws.send(first)
            reply = json.loads(ws.recv(timeout=5))
            assert reply["type"] == "error" and reply["status"] == 401
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
            assert closed.value.rcvd.code == 4401
    with connect(ws_url) as ws:  # a viewer gets data but never the audit log
        ws.send(json.dumps({"type": "auth", "token": tokens["viewer"], "topics": ["status", "audit"]}))
        hello = json.loads(ws.recv(timeout=5))
        assert hello == {"type": "hello", "name": "viewer-user", "role": "viewer", "topics": ["status"]}
        assert json.loads(ws.recv(timeout=5))["type"] == "status"


def test_roles_are_enforced_and_denials_are_audited(http: httpx.Client, tokens: dict[str, str]):
    for method, path in ADMIN_ROUTES:
        r = http.request(method, path, headers=auth(tokens["mod"]), json={"user": "x", "words": []})
        assert r.status_code == 403, (path, r.status_code, r.text)
        assert "admin" in r.json()["detail"]
    for method, path in MOD_ROUTES:
        r = http.request(method, path, headers=auth(tokens["viewer"]), json={})
        assert r.status_code == 403, (path, r.status_code)
    assert http.get("/api/status", headers=auth(tokens["viewer"])).status_code == 200
    audit = http.get("/api/audit?limit=100", headers=auth(tokens["admin"])).json()["entries"]
    denied = {(e["actor"], e["action"]) for e in audit if e["status"] == 403}
    assert {("mod-user", "ban"), ("mod-user", "stop"), ("viewer-user", "interrupt")} <= denied


def test_bad_requests_name_the_field(http: httpx.Client, tokens: dict[str, str]):
    cases = [
        ("/api/say", {"text": ""}, "text"),
        ("/api/say", {"text": "hi", "language": "fr"}, "language"),
        ("/api/say", {"text": "hi", "emotion": {"emotion": "joy", "intensity": 2}}, "emotion.intensity"),
        ("/api/emotion", {"emotion": "happy"}, "emotion"),
        ("/api/emotion", {"emotion": "joy", "hold_s": -1}, "hold_s"),
        ("/api/timeout", {"user": "a", "seconds": 0}, "seconds"),
        ("/api/say", {"text": "hi", "volume": 11}, "volume"),
    ]
    for path, body, field in cases:
        r = http.post(path, headers=auth(tokens["admin"]), json=body)
        assert r.status_code == 422, (path, body, r.text)
        assert field in [e["field"] for e in r.json()["errors"]], r.text
        assert field in r.json()["detail"]
    r = http.post("/api/say", headers=auth(tokens["admin"]) | {"content-type": "application/json"}, content=b"{oops")
    assert r.status_code == 422


def test_tokens_stay_out_of_logs(http: httpx.Client, tokens: dict[str, str], caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    for role in ("viewer", "mod", "admin"):
        http.get("/api/whoami", headers=auth(tokens[role]))
    http.post("/api/pause", headers=auth(tokens["mod"]))
    http.post("/api/resume", headers=auth(tokens["mod"]))
    http.post("/api/ban", headers=auth(tokens["mod"]), json={"user": "x"})
    assert "mod-user" in caplog.text  # the actions were logged, by name
    for role in ("viewer", "mod", "admin"):
        assert tokens[role] not in caplog.text
        assert tokens[role].split("_", 2)[2] not in caplog.text


def test_a_flood_from_one_token_gets_429_and_the_frame_loop_keeps_time(runner: ShowRunner, tokens: dict[str, str]):
    runner.recorder.wait_frame(90)  # past startup
    late_before = runner.late_frames()
    frames_before = runner.show.control.status().frames
    host, port = runner.url.removeprefix("http://").split(":")
    proc = subprocess.run(
        [sys.executable, str(HERE / "panel_load.py"), host, port, "/api/whoami", "1000", "3", "10"],
        env={"PANEL_TOKEN": tokens["mod"], "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    late_after = runner.late_frames()
    frames = runner.show.control.status().frames - frames_before
    counts = {int(k): v for k, v in result["counts"].items()}
    print(f"\nflood: {result['sent']} requests at {result['achieved_rate']:.0f}/s -> {counts}; "
          f"p50 {result['p50_ms']:.2f} ms p99 {result['p99_ms']:.2f} ms; {frames} frames, "
          f"{late_after - late_before} late")
    assert result["achieved_rate"] >= 900
    assert counts.get(429, 0) >= result["sent"] - 120
    assert 40 <= counts.get(200, 0) <= 40 + 10 * 4  # burst + rate × duration (+ slack)
    assert late_after - late_before == 0
    r = httpx.get(f"{runner.url}/api/whoami", headers=auth(tokens["admin"]))  # other tokens are unaffected
    assert r.status_code == 200


def test_a_revoked_token_stops_working(http: httpx.Client, runner: ShowRunner, tokens: dict[str, str]):
    store = PanelStore(Path(tokens["db"]))
    _, token = store.add_token("temp", "mod")
    assert http.get("/api/whoami", headers=auth(token)).status_code == 200
    ws_url = runner.url.replace("http://", "ws://") + "/ws"
    with connect(ws_url) as ws:
        ws.send(json.dumps({"type": "auth", "token": token, "topics": []}))
        assert json.loads(ws.recv(timeout=5))["type"] == "hello"
        store.revoke("temp")
        store.close()
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
        assert closed.value.rcvd.code == 4401
    assert http.get("/api/whoami", headers=auth(token)).status_code == 401


def test_prometheus_metrics_need_a_token_and_report_the_show(http: httpx.Client, tokens: dict[str, str]):
    assert http.get("/api/metrics").status_code == 401
    response = http.get("/api/metrics", headers=auth(tokens["viewer"]))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    values = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    assert values["stagecast_frames_total"] > 0
    assert "stagecast_late_frames_total" in values
    assert any(k.startswith("stagecast_stage_ms{stage=\"render\"}") for k in values)
