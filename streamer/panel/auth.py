"""Bearer-token authentication with a verified-token cache, and per-token rate limits.

argon2 costs ~0.3 s of CPU by design, so each token is verified once (on the DB thread) and then
remembered under an HMAC of the token with a per-process key: later requests cost one HMAC and a
dict lookup. Revocation by the CLI (another process) is noticed within `recheck_s` by a cheap
indexed read. Wrong tokens are remembered too, so guessing cannot turn into an argon2 DoS.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from streamer.panel.store import ROLE_LEVEL, AsyncPanelStore, split_token


@dataclass(frozen=True)
class Principal:
    """Who is asking: never carries the token itself."""

    token_id: str
    name: str
    role: str

    def allows(self, role: str) -> bool:
        return ROLE_LEVEL[self.role] >= ROLE_LEVEL[role]


class TokenBucket:
    """`rate` tokens per second up to `burst`; `take()` says whether a request may go and when to retry."""

    __slots__ = ("burst", "level", "rate", "stamp")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.level = float(burst)
        self.stamp = time.monotonic()

    def take(self, now: float | None = None, amount: float = 1.0) -> tuple[bool, float]:
        now = time.monotonic() if now is None else now
        self.level = min(self.burst, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.level >= amount:
            self.level -= amount
            return True, 0.0
        return False, (amount - self.level) / self.rate


class Authenticator:
    def __init__(self, store: AsyncPanelStore, rate_per_s: float, burst: int, recheck_s: float = 2.0,
                 negative_ttl_s: float = 60.0, cache_size: int = 4096) -> None:
        self.store = store
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.recheck_s = recheck_s
        self.negative_ttl_s = negative_ttl_s
        self.cache_size = cache_size
        self._key = secrets.token_bytes(32)
        self._good: dict[bytes, tuple[Principal, float]] = {}  # digest -> (principal, last DB check)
        self._bad: OrderedDict[bytes, float] = OrderedDict()  # digest -> expiry
        self._buckets: dict[str, TokenBucket] = {}
        self._verify_slot = asyncio.Semaphore(1)  # one argon2 verification at a time (2-core machines)
        self.rejected_rate = 0
        self.rejected_auth = 0

    def _digest(self, token: str) -> bytes:
        return hmac.new(self._key, token.encode("utf-8", "replace"), hashlib.sha256).digest()

    async def authenticate(self, token: str | None) -> Principal | None:
        """The principal for a token, or None. Fast path: no await at all."""
        if not token or len(token) > 200 or split_token(token) is None:
            self.rejected_auth += 1
            return None
        digest = self._digest(token)
        good = self._good.get(digest)
        now = time.monotonic()
        if good is not None:
            principal, checked = good
            if now - checked < self.recheck_s:
                return principal
            if await self.store.is_active(principal.token_id):
                self._good[digest] = (principal, now)
                return principal
            self._forget(digest)
            self.rejected_auth += 1
            return None
        expiry = self._bad.get(digest)
        if expiry is not None and expiry > now:
            self.rejected_auth += 1
            return None
        return await self._verify(token, digest)

    async def _verify(self, token: str, digest: bytes) -> Principal | None:
        async with self._verify_slot:
            # another request may have verified the same token while this one waited for the slot
            good = self._good.get(digest)
            if good is not None:
                return good[0]
            expiry = self._bad.get(digest)
            if expiry is not None and expiry > time.monotonic():
                return None
            info = await self.store.verify(token)
        if info is None:
            self._bad[digest] = time.monotonic() + self.negative_ttl_s
            while len(self._bad) > self.cache_size:
                self._bad.popitem(last=False)
            self.rejected_auth += 1
            return None
        principal = Principal(info.id, info.name, info.role)
        if len(self._good) >= self.cache_size:
            self._good.clear()
        self._good[digest] = (principal, time.monotonic())
        return principal

    async def still_valid(self, principal: Principal) -> bool:
        """For long-lived WebSocket sessions: has the token been revoked meanwhile?"""
        return await self.store.is_active(principal.token_id)

    def _forget(self, digest: bytes) -> None:
        principal = self._good.pop(digest, (None, 0.0))[0]
        if principal is not None:
            self._buckets.pop(principal.token_id, None)

    def take(self, principal: Principal) -> tuple[bool, float]:
        """One request's worth from this token's bucket."""
        bucket = self._buckets.get(principal.token_id)
        if bucket is None:
            bucket = self._buckets[principal.token_id] = TokenBucket(self.rate_per_s, self.burst)
        ok, retry = bucket.take()
        if not ok:
            self.rejected_rate += 1
        return ok, retry


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None
