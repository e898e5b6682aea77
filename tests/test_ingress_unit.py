"""The ingress checks on their own: Host (DNS rebinding), Origin, content types and keyed buckets."""

from __future__ import annotations

import time

import pytest

from streamer.ingress import KeyedBuckets, charset, host_allowed, is_json, origin_allowed, utf8_charset

pytestmark = pytest.mark.unit


def test_host_must_be_an_ip_localhost_or_a_listed_name_on_the_bound_port():
    assert host_allowed("127.0.0.1:8766", 8766)
    assert host_allowed("localhost:8766", 8766)
    assert host_allowed("[::1]:8766", 8766)
    assert not host_allowed("evil.example:8766", 8766)  # a rebound name
    assert not host_allowed("127.0.0.1:8767", 8766)
    assert not host_allowed("127.0.0.1", 8766)  # port 80 implied
    assert not host_allowed(None, 8766) and not host_allowed("", 8766)
    assert not host_allowed("user@127.0.0.1:8766", 8766) and not host_allowed("127.0.0.1:8766/x", 8766)
    assert host_allowed("panel.example.org", 8766, ["Panel.Example.org"])  # behind a proxy, any port


def test_origin_must_be_this_host_and_port():
    assert origin_allowed(None, "127.0.0.1:8766")  # not a browser
    assert origin_allowed("http://127.0.0.1:8766", "127.0.0.1:8766")
    assert not origin_allowed("http://127.0.0.1:8766", "localhost:8766")
    assert not origin_allowed("http://evil.example", "127.0.0.1:8766")
    assert not origin_allowed("http://127.0.0.1:9999", "127.0.0.1:8766")
    assert not origin_allowed("null", "127.0.0.1:8766")
    assert not origin_allowed(None, "127.0.0.1:8766", "cross-site")
    assert origin_allowed("https://panel.example.org", "panel.example.org")


def test_content_types():
    assert is_json("application/json") and is_json("Application/JSON; charset=utf-8")
    assert not is_json("text/plain;charset=UTF-8") and not is_json(None)
    assert charset('application/json; charset="UTF-8"') == "utf-8"
    assert utf8_charset("application/json") and not utf8_charset("application/json; charset=x-klingon")


def test_keyed_buckets_forget_the_oldest_key_past_their_size():
    buckets = KeyedBuckets(rate=1.0, burst=2, size=3)
    t = time.monotonic() + 1.0  # after every bucket's creation
    for key in "abcd":
        assert buckets.take(key, now=t)[0]
    assert len(buckets) == 3
    assert buckets.take("b", now=t)[0] and not buckets.take("b", now=t)[0]
    ok, retry = buckets.take("b", now=t + 0.5)
    assert not ok and retry == pytest.approx(0.5)
