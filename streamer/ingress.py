"""Cheap checks every HTTP ingress (the local chat page, the panel) runs before it does any real work.

A request from a flood, another origin or a rebound DNS name must cost a few dict lookups and a short
answer, never a body read, a JSON parse, a language guess or an argon2 hash: the show's frame thread
shares this interpreter (and the machine's cores) with every request handler.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Iterable
from urllib.parse import urlsplit

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_TYPES = frozenset({"application/json"})


class TokenBucket:
    """`rate` tokens per second up to `burst`; `take()` says whether a request may go and when to retry."""

    __slots__ = ("burst", "level", "rate", "stamp")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.level = float(burst)
        self.stamp = time.monotonic()

    def _refill(self, now: float) -> None:
        self.level = min(self.burst, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def peek(self, now: float | None = None, amount: float = 1.0) -> float:
        """Seconds until `amount` could be taken (0.0: now), taking nothing."""
        self._refill(time.monotonic() if now is None else now)
        return 0.0 if self.level >= amount else (amount - self.level) / self.rate

    def take(self, now: float | None = None, amount: float = 1.0) -> tuple[bool, float]:
        now = time.monotonic() if now is None else now
        self._refill(now)
        if self.level >= amount:
            self.level -= amount
            return True, 0.0
        return False, (amount - self.level) / self.rate


class KeyedBuckets:
    """One TokenBucket per key (a client address, a token id), at most `size` of them: the least recently
    used is forgotten first, so a flood of fresh keys costs memory for `size` buckets and no more."""

    def __init__(self, rate: float, burst: int, size: int = 4096) -> None:
        self.rate = rate
        self.burst = burst
        self.size = size
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def get(self, key: str) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst)
            if len(self._buckets) > self.size:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def take(self, key: str, now: float | None = None) -> tuple[bool, float]:
        return self.get(key).take(now)

    def pop(self, key: str) -> None:
        self._buckets.pop(key, None)

    def __len__(self) -> int:
        return len(self._buckets)


def _split_host(value: str) -> tuple[str, int | None] | None:
    """'name:port', '[v6]:port' or 'name' -> (lower-case name without brackets, port or None)."""
    try:
        parts = urlsplit("//" + value)
        port = parts.port
    except ValueError:
        return None
    if parts.hostname is None or parts.username is not None or parts.path or parts.query:
        return None
    return parts.hostname.lower(), port


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_allowed(host_header: str | None, port: int, extra_names: Iterable[str] = ()) -> bool:
    """Is `Host` one this server answers to? DNS rebinding points an attacker's name at our address, so a
    name must be `localhost` or one the config lists; an IP literal is fine (no name was rebound). Except
    for a listed name, the port must be the one actually bound (a browser sends it for a non-default port)."""
    if not host_header:
        return False
    split = _split_host(host_header)
    if split is None:
        return False
    name, given = split
    if name in {n.lower() for n in extra_names}:
        return True  # a name the config lists (e.g. behind a TLS proxy, on the proxy's port)
    if (given if given is not None else 80) != port:
        return False
    return _is_ip(name) or name == "localhost"


def origin_allowed(origin: str | None, host_header: str | None, sec_fetch_site: str | None = None) -> bool:
    """Same-origin only: a browser names the page's origin on every cross-origin POST and every WebSocket
    handshake, and it must be this very host and port. No Origin at all is a non-browser client (curl, a
    bot, a test), which cannot ride a viewer's browser; `null` (a sandboxed frame, a file://) is refused."""
    if sec_fetch_site is not None and sec_fetch_site.lower() == "cross-site":
        return False
    if origin is None:
        return True
    if not host_header:
        return False
    try:
        parts = urlsplit(origin)
        origin_port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.hostname is None:
        return False
    origin_port = origin_port if origin_port is not None else (443 if parts.scheme == "https" else 80)
    split = _split_host(host_header)
    if split is None:
        return False
    name, port = split
    host_port = port if port is not None else (443 if parts.scheme == "https" else 80)
    return parts.hostname.lower() == name and origin_port == host_port


def is_json(content_type: str | None) -> bool:
    """`application/json` (any parameters): a `text/plain` POST is what a `no-cors` page can send."""
    if not content_type:
        return False
    return content_type.partition(";")[0].strip().lower() in JSON_TYPES


def charset(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type, lower-case, or None."""
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def utf8_charset(content_type: str | None) -> bool:
    """JSON is UTF-8 (RFC 8259): no charset, or utf-8, is all a JSON endpoint takes."""
    return charset(content_type) in (None, "utf-8", "utf8")
