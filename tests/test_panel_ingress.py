"""What reaches the panel from outside before any token is trusted, against a real Show over real HTTP and
WebSocket: Host and Origin checks (DNS rebinding, cross-site requests), content types, malformed bodies,
security headers, WebSocket limits, and the argon2 budget that keeps wrong tokens cheap."""

from __future__ import annotations

import json
import secrets
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from streamer.panel import app as panel_app
from streamer.panel.auth import CLIENT_VERIFY_BURST, CLIENT_VERIFY_RATE_PER_S, ID_VERIFY_BURST, ID_VERIFY_RATE_PER_S
from tests.panel_support import ShowRunner

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def runner(tokens: dict[str, str]):
    show = ShowRunner(Path(tokens["db"]), panel={"token_recheck_s": 0.5, "rate_per_s": 50, "burst": 200,
                                                 "status_hz": 10, "read_timeout_s": 1.0, "max_connections": 20,
                                                 "preview_fps": 15, "preview_quality": 95}
                      ).start()
    yield show
    show.stop()
    # the test's own WebSocket clients (logger "websockets.client") may log a socket closed under them
    raised = [line for line in show.logs.lines if "Traceback" in line and not line.startswith("websockets.client")]
    assert not raised, f"a request raised inside the panel: {raised[0][:2000]}"


@pytest.fixture()
def http(runner: ShowRunner):
    with httpx.Client(base_url=runner.url) as client:
        yield client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def hostport(runner: ShowRunner) -> str:
    return urlsplit(runner.url).netloc


def test_cross_origin_state_changes_are_refused_and_same_origin_works(http: httpx.Client, runner: ShowRunner,
                                                                      tokens: dict[str, str]):
    mod = auth(tokens["mod"])
    port = urlsplit(runner.url).port
    evil = [{"Origin": "http://evil.example"}, {"Origin": f"http://evil.example:{port}"},
            {"Origin": "http://127.0.0.1:1"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}]
    for headers in evil:
        for path in ("/api/pause", "/api/say"):
            r = http.post(path, headers=mod | headers, json={"text": "from another site"})
            assert r.status_code == 403, (path, headers, r.status_code)
            assert "cross-origin" in r.json()["detail"]
    assert not runner.show.control.status().paused
    # a no-cors page can send only text/plain: refused even from the same origin
    r = http.post("/api/say", headers=mod | {"Content-Type": "text/plain"}, content=b'{"text": "hi"}')
    assert r.status_code == 415
    # DNS rebinding: another name resolving to this address
    r = http.post("/api/pause", headers=mod | {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"})
    assert r.status_code == 421
    assert http.get("/", headers={"Host": f"evil.example:{port}"}).status_code == 421
    # the panel's own pages
    for host in (hostport(runner), f"localhost:{port}"):
        same = mod | {"Host": host, "Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"}
        assert http.post("/api/pause", headers=same).status_code == 200
        assert runner.show.control.status().paused
        assert http.post("/api/resume", headers=same).status_code == 200
    assert http.get("/api/whoami", headers=mod | {"Origin": "http://evil.example"}).status_code == 200  # reads


def test_cross_origin_websockets_are_refused(runner: ShowRunner, tokens: dict[str, str]):
    for path in ("/ws", "/ws/audio"):
        url = runner.url.replace("http://", "ws://") + path
        with pytest.raises(InvalidStatus) as refused:
            connect(url, origin="http://evil.example")  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
    with connect(runner.url.replace("http://", "ws://") + "/ws", origin=runner.url) as ws:  # type: ignore[arg-type]
        ws.send(json.dumps({"type": "auth", "token": tokens["viewer"], "topics": []}))
        assert json.loads(ws.recv(timeout=5))["type"] == "hello"


def test_malformed_bodies_answer_400_or_413_without_a_traceback(http: httpx.Client, runner: ShowRunner,
                                                               tokens: dict[str, str]):
    admin = auth(tokens["admin"])
    json_type = {"Content-Type": "application/json"}
    cases = [
        (b'{"text": "hi"}', {"Content-Type": "application/json; charset=x-klingon"}, 400),
        (b"[" * 20_000 + b"]" * 20_000, json_type, 400),  # deep, under the size cap
        (b"[" * 100_000 + b"]" * 100_000, json_type, 413),  # deep and big: never read
        (b'{"text": "\xff"}', json_type, 400),  # not UTF-8
    ]
    for body, headers, status in cases:
        r = http.post("/api/say", headers=admin | headers, content=body)
        assert r.status_code == status, (headers, body[:20], r.status_code, r.text)

    def chunks():  # no Content-Length: the cap applies as the body streams in
        for _ in range(100):
            yield b" " * 1024

    r = http.post("/api/say", headers=admin | json_type, content=chunks())
    assert r.status_code in (400, 413)
    assert not [line for line in runner.logs.lines if "Traceback" in line and line.startswith(("stagecast", "uvicorn",
                                                                                              "fastapi"))]


def test_pages_and_overlays_send_security_headers(http: httpx.Client):
    for path in ("/", "/cohost", "/static/panel.js", "/overlays/captions.html", "/overlays/chat.html",
                 "/overlays/status.html", "/api/whoami"):
        r = http.get(path)
        assert r.status_code in (200, 401), path
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY", path
        assert r.headers["referrer-policy"] == "no-referrer", path


def test_websocket_limits_message_size_and_rate(runner: ShowRunner, tokens: dict[str, str]):
    url = runner.url.replace("http://", "ws://") + "/ws"
    hello = json.dumps({"type": "auth", "token": tokens["viewer"], "topics": []})
    with connect(url) as ws:
        ws.send(hello)
        assert json.loads(ws.recv(timeout=5))["type"] == "hello"
        ws.send(json.dumps({"type": "topics", "topics": ["x" * 5000]}))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    with connect(url) as ws:
        ws.send(hello)
        assert json.loads(ws.recv(timeout=5))["type"] == "hello"
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(200):
                ws.send(json.dumps({"type": "topics", "topics": []}))
            while True:
                ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429


def test_a_websocket_client_that_never_reads_is_closed(runner: ShowRunner, tokens: dict[str, str],
                                                       monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(panel_app, "WS_SEND_TIMEOUT_S", 1.0)
    feed = runner.handle.panel.feed
    before = len(feed.clients)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window, so the server's sends block
    sock.connect(("127.0.0.1", urlsplit(runner.url).port or 80))
    try:
        with connect(runner.url.replace("http://", "ws://") + "/ws", sock=sock) as ws:
            ws.send(json.dumps({"type": "auth", "token": tokens["viewer"], "topics": ["status", "preview"]}))
            deadline = time.monotonic() + 10
            while len(feed.clients) <= before and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(feed.clients) == before + 1
            deadline = time.monotonic() + 60  # the buffers fill at the preview rate, then 1 s of blocked sending
            while len(feed.clients) > before and time.monotonic() < deadline:
                time.sleep(0.2)
            assert len(feed.clients) == before, "a client that reads nothing is still being served"
    finally:
        sock.close()


def test_half_open_connections_are_closed_and_capped(runner: ShowRunner, http: httpx.Client):
    host, port = "127.0.0.1", urlsplit(runner.url).port or 80
    held = []
    for i in range(15):  # nothing, half a head, a head and half a body
        s = socket.create_connection((host, port))
        if i % 3 == 1:
            s.sendall(b"GET /api/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        elif i % 3 == 2:
            s.sendall(f"POST /api/say HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 100\r\n\r\n{{".encode())
        held.append(s)
    over = [socket.create_connection((host, port)) for _ in range(10)]  # 25 > the cap of 20
    t0 = time.monotonic()
    for s in held + over:
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass
        s.close()
    elapsed = time.monotonic() - t0
    assert elapsed < 3.0, f"half-open connections were held {elapsed:.1f} s"
    assert http.get("/api/status").status_code == 401  # and the panel answers again


def test_wrong_secrets_for_a_real_token_id_are_throttled_without_hashing(runner: ShowRunner, http: httpx.Client,
                                                                          tokens: dict[str, str]):
    """Last in the module: it spends this client's argon2 budget."""
    authn = runner.handle.panel.auth
    assert http.get("/api/whoami", headers=auth(tokens["admin"])).status_code == 200  # verified before the attack
    token_id = tokens["viewer"].split("_")[1]
    before = authn.verifications
    statuses: dict[int, int] = {}
    t0 = time.monotonic()
    for _ in range(100):
        r = http.get("/api/whoami", headers=auth(f"sc_{token_id}_{secrets.token_urlsafe(32)}"))
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1 and "token checks" in r.json()["detail"]
    elapsed = time.monotonic() - t0
    hashed = authn.verifications - before
    # the id's budget bounds argon2
    assert hashed <= ID_VERIFY_BURST + ID_VERIFY_RATE_PER_S * elapsed + 1, (hashed, statuses)
    assert statuses.get(429, 0) >= 100 - hashed and statuses.get(401, 0) == hashed, statuses
    # random ids: no argon2 at all, but each is a database read; the client's budget bounds those too
    before = authn.verifications
    t0 = time.monotonic()
    for _ in range(100):
        r = http.get("/api/whoami", headers=auth(f"sc_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"))
        assert r.status_code in (401, 429)
    assert authn.verifications - before <= CLIENT_VERIFY_BURST + CLIENT_VERIFY_RATE_PER_S * (time.monotonic() - t0) + 1
    # a token verified before the attack keeps working through it
    assert http.get("/api/whoami", headers=auth(tokens["admin"])).status_code == 200
    assert http.post("/api/resume", headers=auth(tokens["mod"])).status_code == 200
