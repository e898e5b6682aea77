"""The local chat page over real HTTP on 127.0.0.1: what it takes, and what it refuses cheaply."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from streamer.chat.local import LocalChatSource

pytestmark = pytest.mark.integration


def serve(source: LocalChatSource, body: Callable[[str, list[Any]], Awaitable[Any]]) -> tuple[Any, list[Any]]:
    """Run the page, call `body(base_url, received)` and return what it returns with every message taken."""

    async def main() -> tuple[Any, list[Any]]:
        got: list[Any] = []

        async def consume() -> None:
            async for m in source.messages():
                got.append(m)

        consumer = asyncio.create_task(consume())
        try:
            await asyncio.wait_for(source.ready.wait(), 10)
            result = await body(f"http://127.0.0.1:{source.bound_port}", got)
            await asyncio.sleep(0.1)  # let the consumer take what was queued
        finally:
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
        return result, got

    return asyncio.run(main())


def test_local_page_posts_become_messages_and_bad_posts_get_400():
    async def body(base: str, got: list[Any]) -> tuple[str, tuple[int, ...]]:
        async with aiohttp.ClientSession() as http:
            page = await (await http.get(base + "/")).text()
            bad = await http.post(base + "/api/chat", data="{broken", headers={"Content-Type": "application/json"})
            missing = await http.post(base + "/api/chat", json={"user": "a"})
            ok1 = await http.post(base + "/api/chat", json={"user": "ゆき", "text": "こんにちは"})
            ok2 = await http.post(base + "/api/chat", json={"user": "bob", "text": "<script>x</script>"})
            return page, (bad.status, missing.status, ok1.status, ok2.status)

    (page, statuses), got = serve(LocalChatSource("127.0.0.1", 0), body)
    assert "<form" in page
    assert statuses == (400, 400, 200, 200)
    assert got[0].language == "ja" and got[0].user_name == "ゆき"
    assert got[1].text == "<script>x</script>"  # kept verbatim as data; pages render it as text


def test_cross_origin_non_json_and_rebound_host_posts_are_refused_and_same_origin_works():
    async def body(base: str, got: list[Any]) -> dict[str, int]:
        port = base.rsplit(":", 1)[1]
        url = base + "/api/chat"
        message = '{"user": "mallory", "text": "say something terrible"}'
        statuses = {}
        async with aiohttp.ClientSession() as http:
            cases = {
                # what a `fetch(..., {mode: "no-cors"})` from another site sends
                "no-cors text/plain": {"Origin": "http://evil.example", "Content-Type": "text/plain;charset=UTF-8"},
                "cross-origin json": {"Origin": "http://evil.example", "Content-Type": "application/json"},
                "other port": {"Origin": "http://127.0.0.1:1", "Content-Type": "application/json"},
                "null origin": {"Origin": "null", "Content-Type": "application/json"},
                "cross-site fetch": {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"},
                "text/plain, no origin": {"Content-Type": "text/plain"},
                "rebound name": {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}",
                                 "Content-Type": "application/json"},
            }
            for name, headers in cases.items():
                statuses[name] = (await http.post(url, data=message, headers=headers)).status
            page = await http.get(base + "/", headers={"Host": f"evil.example:{port}"})
            statuses["rebound page"] = page.status
            for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
                same = {"Host": host, "Origin": f"http://{host}", "Content-Type": "application/json",
                        "Sec-Fetch-Site": "same-origin"}
                statuses[f"same-origin {host}"] = (await http.post(url, data=message, headers=same)).status
        return statuses

    statuses, got = serve(LocalChatSource("127.0.0.1", 0), body)
    refused = {k: v for k, v in statuses.items() if not k.startswith("same-origin")}
    assert refused == {"no-cors text/plain": 403, "cross-origin json": 403, "other port": 403, "null origin": 403,
                       "cross-site fetch": 403, "text/plain, no origin": 415, "rebound name": 421,
                       "rebound page": 421}
    assert [v for k, v in statuses.items() if k.startswith("same-origin")] == [200, 200]
    assert len(got) == 2  # only the same-origin posts reached the show


def test_page_sends_security_headers():
    async def body(base: str, got: list[Any]) -> list[dict[str, str]]:
        async with aiohttp.ClientSession() as http:
            page = await http.get(base + "/")
            refused = await http.post(base + "/api/chat", data="x", headers={"Content-Type": "text/plain"})
            return [dict(page.headers), dict(refused.headers)]

    headers_list, _ = serve(LocalChatSource("127.0.0.1", 0), body)
    for headers in headers_list:
        csp = headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"


def test_malformed_bodies_answer_400_without_a_traceback(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)

    async def body(base: str, got: list[Any]) -> list[tuple[int, str]]:
        url = base + "/api/chat"
        out = []
        async with aiohttp.ClientSession() as http:
            for data, ctype in [(b'{"user": "a", "text": "hi"}', "application/json; charset=x-klingon"),
                                (b'{"user": "a", "text": "hi"}', "application/json; charset=latin-1"),
                                (b"[" * 8000 + b"]" * 8000, "application/json"),  # deep: fits the size limit
                                (b'{"user": "a", "text": "\xff\xfe"}', "application/json"),
                                (b"[]", "application/json")]:
                r = await http.post(url, data=data, headers={"Content-Type": ctype})
                out.append((r.status, await r.text()))
        return out

    answers, got = serve(LocalChatSource("127.0.0.1", 0), body)
    assert [status for status, _ in answers] == [400] * 5, answers
    assert all(text.startswith("bad chat message:") for _, text in answers), answers
    assert "nested too deeply" in answers[2][1]
    assert not got
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_deep_json_at_the_size_limit_is_refused_with_400():
    """100,000-deep JSON is bigger than a chat message may be: refused by size, unparsed (413), or by depth."""

    async def body(base: str, got: list[Any]) -> int:
        async with aiohttp.ClientSession() as http:
            r = await http.post(base + "/api/chat", data=b"[" * 100_000 + b"]" * 100_000,
                                headers={"Content-Type": "application/json"})
            return r.status

    status, got = serve(LocalChatSource("127.0.0.1", 0), body)
    assert status in (400, 413) and not got


def test_a_flood_from_one_client_gets_429_before_parsing_or_language_detection():
    source = LocalChatSource("127.0.0.1", 0, client_rate_per_s=5, client_burst=20)
    detected: list[str] = []
    source.detect = lambda text: detected.append(text) or "en"

    async def body(base: str, got: list[Any]) -> dict[int, int]:
        counts: dict[int, int] = {}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8)) as http:
            async def one(i: int) -> None:
                r = await http.post(base + "/api/chat", json={"user": "flood", "text": f"spam {i}"})
                counts[r.status] = counts.get(r.status, 0) + 1
                if r.status == 429:
                    assert int(r.headers["Retry-After"]) >= 1

            t0 = time.monotonic()
            await asyncio.gather(*(one(i) for i in range(400)))
            counts[-1] = round(time.monotonic() - t0)  # seconds the flood took (bounds the refill)
        await asyncio.sleep(1.2)  # the page reports its counters every 0.5 s
        return counts

    counts, got = serve(source, body)
    seconds = counts.pop(-1)
    ok = counts.get(200, 0)
    assert counts.get(429, 0) >= 400 - (20 + 5 * (seconds + 1)), counts
    assert 20 <= ok <= 20 + 5 * (seconds + 1), counts
    assert source.stats["parsed"] == ok  # the refused requests were never read or parsed
    assert source.refused.get(429) == counts[429]
    assert len(detected) == len(got) == ok  # languages were guessed only for messages the show took


def listens_in_this_process(port: int) -> bool:
    """Is the socket listening on `port` one of this process's file descriptors (Linux /proc)?"""
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    inodes = [r[9] for r in rows if r[3] == "0A" and int(r[1].split(":")[1], 16) == port]
    assert inodes, f"nothing listens on {port}"
    fds = Path("/proc/self/fd")
    mine = set()
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            mine.add(os.readlink(fd))
    return f"socket:[{inodes[0]}]" in mine


def test_the_page_runs_outside_the_show_process_and_ends_with_it():
    """A flood is answered by the page's own process: the show's interpreter only reads accepted lines."""
    source = LocalChatSource("127.0.0.1", 0)

    async def body(base: str, got: list[Any]) -> int:
        port = int(base.rsplit(":", 1)[1])
        assert not listens_in_this_process(port), "the page's socket is in the show's own process"
        return port

    port, _ = serve(source, body)
    time.sleep(0.5)
    with pytest.raises(OSError):  # the page's process ended with the source
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_half_open_connections_are_closed_and_capped():
    source = LocalChatSource("127.0.0.1", 0, max_connections=10, read_timeout_s=1.0)

    async def body(base: str, got: list[Any]) -> tuple[list[bytes], float, int]:
        port = int(base.rsplit(":", 1)[1])
        held = []
        for i in range(10):  # some say nothing, some stop inside the head, some inside the body
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if i % 3 == 1:
                writer.write(b"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            elif i % 3 == 2:
                writer.write(f"POST /api/chat HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json"
                             "\r\nContent-Length: 100\r\n\r\n{\"user\":".encode())
            held.append((reader, writer))
        await asyncio.sleep(0.2)
        # over the cap: accepted and closed at once
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        over = await asyncio.wait_for(reader.read(), 2)
        writer.close()
        t0 = time.monotonic()
        ends = await asyncio.gather(*(asyncio.wait_for(r.read(), 5) for r, _ in held))
        elapsed = time.monotonic() - t0
        for _, w in held:
            w.close()
        async with aiohttp.ClientSession() as http:  # the page works again once they are gone
            ok = await http.post(base + "/api/chat", json={"user": "a", "text": "back"})
        return [over, *ends], elapsed, ok.status

    (ends, elapsed, status), got = serve(source, body)
    assert ends[0] == b""  # the connection over the cap was closed without an answer
    assert all(b"HTTP/1.1 200" not in e for e in ends[1:])
    assert all(e == b"" or b" 408 " in e.split(b"\r\n")[0] for e in ends[1:]), ends
    assert elapsed < 3.0, f"half-open connections were held {elapsed:.1f} s"
    assert status == 200 and len(got) == 1
