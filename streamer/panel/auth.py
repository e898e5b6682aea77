"""Bearer-token authentication with a verified-token cache, and per-token rate limits.

argon2 costs ~0.3 s of CPU by design, so each token is verified once (on the DB thread) and then
remembered under an HMAC of the token with a per-process key: later requests cost one HMAC and a
dict lookup. Revocation by the CLI (another process) is noticed within `recheck_s` by a cheap
indexed read. Wrong tokens are remembered too, so guessing cannot turn into an argon2 DoS.

A token not seen before costs a database read and, when its id exists, one argon2 verification: that
work is budgeted per client address, per token id and in all, each a token bucket checked before
the database is touched. Over any budget the answer is `Throttled` (a 429 with a retry time) at the
cost of an HMAC and a few dict lookups, so a flood of wrong secrets for a real id, or of random ids,
costs the show at most `verify_rate_per_s` verifications a second. Tokens already verified keep
working throughout: the cache is consulted first.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from streamer.ingress import KeyedBuckets, TokenBucket
from streamer.panel.store import ROLE_LEVEL, AsyncPanelStore, split_token

__all__ = ["Authenticator", "Principal", "Throttled", "TokenBucket", "bearer"]

VERIFY_RATE_PER_S = 4.0  # argon2 verifications a second, all clients together (~30 ms of one core each)
VERIFY_BURST = 20  # a panel and a few overlays logging in at once
CLIENT_VERIFY_RATE_PER_S = 2.0  # ... from one client address
CLIENT_VERIFY_BURST = 20
ID_VERIFY_RATE_PER_S = 0.2  # ... for one token id (wrong secrets for a real id: a lockout of ~5 s each)
ID_VERIFY_BURST = 5


@dataclass(frozen=True)
class Principal:
    """Who is asking: never carries the token itself."""

    token_id: str
    name: str
    role: str

    def allows(self, role: str) -> bool:
        return ROLE_LEVEL[self.role] >= ROLE_LEVEL[role]


class Throttled(Exception):
    """Too many unverified tokens from this client, for this token id, or in all: retry after `retry_s`."""

    def __init__(self, retry_s: float, scope: str) -> None:
        super().__init__(f"too many token checks {scope}; retry in {retry_s:.1f} s")
        self.retry_s = retry_s
        self.scope = scope


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
        self._verify_all = TokenBucket(VERIFY_RATE_PER_S, VERIFY_BURST)
        self._verify_client = KeyedBuckets(CLIENT_VERIFY_RATE_PER_S, CLIENT_VERIFY_BURST)
        self._verify_id = KeyedBuckets(ID_VERIFY_RATE_PER_S, ID_VERIFY_BURST)
        self.rejected_rate = 0
        self.rejected_auth = 0
        self.throttled = 0  # unknown tokens answered 429 without a database read or a hash
        self.verifications = 0  # database reads + argon2 checks of tokens not seen before

    def _digest(self, token: str) -> bytes:
        return hmac.new(self._key, token.encode("utf-8", "replace"), hashlib.sha256).digest()

    async def authenticate(self, token: str | None, client: str | None = None) -> Principal | None:
        """The principal for a token, or None; raises Throttled when verifying it would go over a budget.
        Fast path (a token seen before): no await at all."""
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
        self._budget(split_token(token)[0], client or "?", now)  # type: ignore[index]
        return await self._verify(token, digest)

    def _budget(self, token_id: str, client: str, now: float) -> None:
        """Take one verification from the client's, the id's and the overall budget, or raise Throttled
        (taking nothing from any when one is empty)."""
        buckets = [(self._verify_client.get(client), "from this client"),
                   (self._verify_id.get(token_id), "for this token id"), (self._verify_all, "in all")]
        for bucket, scope in buckets:
            wait = bucket.peek(now)
            if wait > 0:
                self.throttled += 1
                raise Throttled(wait, scope)
        for bucket, _ in buckets:
            bucket.take(now)

    async def _verify(self, token: str, digest: bytes) -> Principal | None:
        async with self._verify_slot:
            # another request may have verified the same token while this one waited for the slot
            good = self._good.get(digest)
            if good is not None:
                return good[0]
            expiry = self._bad.get(digest)
            if expiry is not None and expiry > time.monotonic():
                return None
            self.verifications += 1
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
