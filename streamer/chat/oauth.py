"""OAuth user access tokens that keep themselves valid for a whole show (Twitch, Google/YouTube).

A Twitch user token lives a few hours, a Google one an hour; a show runs longer. A
:class:`RefreshingToken` holds the access token, refreshes it with the refresh token and the
client secret (RFC 6749 §6: form-encoded ``grant_type=refresh_token`` to the provider's token
endpoint), and keeps the refresh token the provider hands back, since a refresh may rotate it.

- At start-up it learns how long the token has left: Twitch's ``GET /oauth2/validate``
  (``Authorization: OAuth <token>``, 401 when invalid); Google has no such call here, so a
  refreshable Google token is refreshed at start-up, which answers ``expires_in``.
- Proactively, :meth:`maintain` refreshes shortly before the expiry, validates Twitch tokens
  hourly (as Twitch asks), and reports the expiry to health ("twitch token expires in 3h 58m").
- Reactively, an API call that got 401 calls :meth:`refresh` with the token it used; one refresh
  runs at a time, and callers that raced on the same stale token share its result.

Secrets come from the environment (or a token file the user named, rewritten with 0600
permissions after each refresh); they are never logged, and provider error text is scrubbed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from streamer.backoff import Backoff
from streamer.chat.util import safe_str
from streamer.events import HealthStatus

log = logging.getLogger("stagecast.chat.oauth")

HealthCallback = Callable[[HealthStatus, str], None]
VALIDATE_EVERY_S = 3600.0  # Twitch requires apps to validate their tokens hourly
REPORT_EVERY_S = 3600.0  # refresh the "expires in" text at least this often
MAX_MARGIN_S = 300.0  # refresh this long before the expiry (or a quarter of the lifetime, if shorter)
LOW_WATER_S = 3600.0  # a token that cannot refresh is reported degraded with less than this left
MIN_WAIT_S = 0.5  # never refresh in a tight loop, whatever expires_in a provider answers


class OAuthRefused(RuntimeError):
    """The provider refused the token or the refresh token: a person must act (permanent)."""


class OAuthUnavailable(RuntimeError):
    """The token endpoint could not be reached or failed (network, 5xx, 429): try again later."""


def human_duration(seconds: float) -> str:
    """3h 58m / 12m / 40s: what a moderator reads in health."""
    s = max(0, int(seconds))
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m"
    return f"{s}s"


def _write_private(path: Path, data: bytes) -> None:
    """Atomically, owner-only (0600) from the first byte, and durably (a rotated refresh token
    that is lost in a crash cannot be recovered)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _expires_in(body: dict[str, Any]) -> float | None:
    value = body.get("expires_in")
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


class RefreshingToken:
    """One user's access token for one provider, refreshed before it expires and after a 401."""

    def __init__(self, *, label: str, token_url: str, client_id: str, access_token: str = "",
                 refresh_token: str = "", client_secret: str = "", validate_url: str | None = None,
                 token_file: Path | None = None, hint: str = "") -> None:
        self.label = label  # "twitch" / "youtube": the health and log text
        self.token_url = token_url
        self.validate_url = validate_url
        self.client_id = client_id
        self.token_file = token_file
        self.hint = hint  # how to make refresh possible, named in errors (the env variable names)
        self._access = access_token
        self._refresh = refresh_token
        self._secret = client_secret
        self._expires_at: float | None = None  # time.monotonic() deadline; None while unknown
        self._never_expires = False  # Twitch validate answers expires_in 0 for tokens without expiry
        self._lifetime = 0.0
        self._lock = asyncio.Lock()
        self._failure = ""  # why the last refresh failed; cleared by one that worked
        self._refused = False  # the refresh token was refused: retrying is pointless
        self.refreshes = 0
        self.validations = 0
        self.identity: dict[str, Any] = {}  # Twitch validate: client_id, login, scopes, user_id
        self.on_health: HealthCallback | None = None
        self._saver: asyncio.Task[None] | None = None
        self._dirty = False
        if token_file is not None:
            self._load_file(token_file)

    # ----- state ---------------------------------------------------------------------------------
    @property
    def access_token(self) -> str:
        return self._access

    @property
    def can_refresh(self) -> bool:
        return bool(self._refresh and self._secret and self.client_id) and not self._refused

    def remaining_s(self) -> float | None:
        """Seconds until the access token expires; None when unknown or never."""
        if self._expires_at is None:
            return None
        return self._expires_at - time.monotonic()

    def _secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self._access, self._refresh, self._secret) if len(s) >= 4)

    def scrub(self, text: str) -> str:
        """Provider text with any secret this token holds blanked out (error bodies may echo them)."""
        for secret in self._secrets():
            text = text.replace(secret, "***")
        return text

    def _set_expiry(self, expires_in: float | None) -> None:
        if expires_in is None:
            self._expires_at = None
        elif expires_in == 0 and self.validate_url is not None:
            self._expires_at, self._never_expires = None, True
        else:
            self._expires_at, self._never_expires = time.monotonic() + expires_in, False
            self._lifetime = expires_in

    # ----- health --------------------------------------------------------------------------------
    def describe(self) -> tuple[HealthStatus, str]:
        """(status, detail) for health: how long the token has left and whether it can renew."""
        left = self.remaining_s()
        if self._never_expires:
            head = f"{self.label} token does not expire"
        elif left is None:
            head = f"{self.label} token expiry unknown"
        elif left <= 0:
            head = f"{self.label} token expired"
        else:
            at = datetime.fromtimestamp(time.time() + left, UTC).strftime("%H:%M UTC")
            head = f"{self.label} token expires in {human_duration(left)} (at {at})"
        if self._failure:  # retried while it may pass; a refused refresh token with a dead token is down
            down = self._refused and (left is None or left <= 0)
            return (HealthStatus.DOWN if down else HealthStatus.DEGRADED), f"{head}; refresh failed: {self._failure}"
        if not self.can_refresh and left is not None and left < LOW_WATER_S:
            status = HealthStatus.DOWN if left <= 0 else HealthStatus.DEGRADED
            return status, f"{head}; cannot refresh ({self.hint})"
        return HealthStatus.OK, head

    def report(self) -> None:
        if self.on_health is not None:
            self.on_health(*self.describe())

    # ----- the token file --------------------------------------------------------------------------
    def _load_file(self, path: Path) -> None:
        """The user's token file holds the newest pair (refreshes rotate the refresh token)."""
        if not path.exists():
            return
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise OAuthRefused(f"{self.label} token file {path} is unreadable ({type(exc).__name__}); "
                               "fix or delete it") from None
        if path.stat().st_mode & 0o077:
            log.warning("%s token file %s is readable by others; it should be chmod 600", self.label, path)
        self._access = safe_str(data.get("access_token"), 4096) or self._access
        self._refresh = safe_str(data.get("refresh_token"), 4096) or self._refresh

    def _save_later(self) -> None:
        """Write the newest pair to the token file in the background: fsync can take seconds on a
        busy disk, and the refresh (and every caller waiting on it) must not wait for that."""
        if self.token_file is None:
            return
        self._dirty = True
        if self._saver is None or self._saver.done():
            self._saver = asyncio.get_running_loop().create_task(self._save(self.token_file))

    async def _save(self, path: Path) -> None:
        while self._dirty:
            self._dirty = False
            left = self.remaining_s()
            data = json.dumps({"access_token": self._access, "refresh_token": self._refresh,
                               "expires_at": None if left is None else round(time.time() + left)})
            try:
                await asyncio.to_thread(_write_private, path, data.encode())
            except OSError as exc:
                log.warning("%s: could not save the refreshed token to %s (%s)", self.label, path,
                            type(exc).__name__)

    async def flush(self) -> None:
        """Wait until the token file holds the newest pair (when the source stops)."""
        if self._saver is not None:
            await asyncio.shield(self._saver)

    # ----- provider calls ----------------------------------------------------------------------------
    async def start(self, http: aiohttp.ClientSession) -> None:
        """Learn the token's expiry before the show uses it: validate (Twitch) or refresh (Google).
        An invalid token is refreshed; one that cannot be raises OAuthRefused. An unreachable
        provider is logged and the token used as it is (the API calls will tell)."""
        try:
            if self.validate_url is not None and self._access:
                if await self.validate(http):
                    return
                if not self.can_refresh:
                    raise OAuthRefused(f"{self.label} token is invalid or expired (validate answered 401); "
                                       f"{self.hint}")
                await self.refresh(http)
            elif self.can_refresh:
                await self.refresh(http)
            elif not self._access:
                raise OAuthRefused(f"no {self.label} access token; {self.hint}")
        except OAuthUnavailable as exc:
            if not self._access:
                raise
            log.warning("%s: could not check the token at start-up (%s); using it as it is", self.label, exc)
        finally:
            self.report()

    async def validate(self, http: aiohttp.ClientSession) -> bool:
        """Twitch ``GET /oauth2/validate``: True (and the expiry learned) while the token is valid."""
        assert self.validate_url is not None
        try:
            async with http.get(self.validate_url, headers={"Authorization": f"OAuth {self._access}"}) as resp:
                body = await resp.json(content_type=None) if resp.status == 200 else None
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OAuthUnavailable(f"validate failed: {type(exc).__name__}") from None
        self.validations += 1
        if status == 401:
            self._expires_at, self._never_expires = time.monotonic(), False  # invalid now, whatever it said
            return False
        if status != 200 or not isinstance(body, dict):
            raise OAuthUnavailable(f"validate answered HTTP {status}")
        self.identity = {k: body.get(k) for k in ("client_id", "login", "scopes", "user_id")}
        self._set_expiry(_expires_in(body))
        return True

    async def refresh(self, http: aiohttp.ClientSession, stale: str | None = None, rejected: bool = False) -> str:
        """A new access token. `stale` is the token the caller used: when another caller has already
        replaced it, that token is returned without a second refresh. `rejected`: an API answered
        401 to it, so it is dead now whatever its expiry said."""
        async with self._lock:
            if stale is not None and stale != self._access:
                return self._access
            if rejected:
                self._expires_at, self._never_expires = time.monotonic(), False
            if not self.can_refresh:
                why = "the refresh token was refused" if self._refused else self.hint
                raise OAuthRefused(f"{self.label} token expired and cannot be refreshed: {why}")
            try:
                await self._refresh_once(http)
            except (OAuthRefused, OAuthUnavailable) as exc:
                self._failure = str(exc)
                self.report()
                raise
            self._failure = ""
            self.report()
            return self._access

    async def _refresh_once(self, http: aiohttp.ClientSession) -> None:
        form = {"grant_type": "refresh_token", "refresh_token": self._refresh, "client_id": self.client_id,
                "client_secret": self._secret}
        try:
            async with http.post(self.token_url, data=form) as resp:
                status = resp.status
                raw = await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise OAuthUnavailable(f"token endpoint unreachable: {type(exc).__name__}") from None
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        if status != 200:
            # Twitch: {"status", "message"}; Google: {"error", "error_description"}
            reason = safe_str(body.get("message") or body.get("error_description") or body.get("error"), 200)
            reason = self.scrub(reason) or "no reason given"
            if status in (400, 401, 403):
                self._refused = True
                raise OAuthRefused(f"{self.label} refused the refresh token (HTTP {status}: {reason})")
            raise OAuthUnavailable(f"token endpoint answered HTTP {status} ({reason})")
        access = safe_str(body.get("access_token"), 4096)
        if not access:
            raise OAuthUnavailable("token endpoint answered without an access_token")
        self._access = access
        if rotated := safe_str(body.get("refresh_token"), 4096):
            self._refresh = rotated  # Twitch may rotate it; the old one may stop working
        self.refreshes += 1
        self._set_expiry(_expires_in(body))
        if self._expires_at is None and self.validate_url is not None:
            try:
                await self.validate(http)  # the refresh answer left out expires_in: ask
            except OAuthUnavailable:
                pass
        self._save_later()
        left = self.remaining_s()
        log.info("%s token refreshed%s", self.label, f"; expires in {human_duration(left)}" if left else "")

    # ----- proactive upkeep -----------------------------------------------------------------------------
    def _refresh_due_in(self) -> float | None:
        left = self.remaining_s()
        if left is None or not self.can_refresh:
            return None
        margin = min(MAX_MARGIN_S, self._lifetime / 4 if self._lifetime else MAX_MARGIN_S)
        return left - margin

    async def maintain(self, http: aiohttp.ClientSession) -> None:
        """Until cancelled: refresh shortly before expiry, validate hourly (Twitch), keep health current.
        A failed refresh is retried with backoff and shown as degraded; a refused one is not retried."""
        backoff = Backoff(5.0, 300.0, jitter=True)
        retry_in: float | None = None  # a failed refresh is tried again after this
        validate_in = VALIDATE_EVERY_S
        while True:
            due = self._refresh_due_in()
            waits = [REPORT_EVERY_S, validate_in if self.validate_url else REPORT_EVERY_S]
            waits.append(retry_in if retry_in is not None else due if due is not None else REPORT_EVERY_S)
            wait = max(MIN_WAIT_S, min(waits))
            await asyncio.sleep(wait)
            validate_in -= wait
            due = self._refresh_due_in()
            if retry_in is not None or (due is not None and due <= 0):
                retry_in = await self._try_refresh(http, backoff)
            elif self.validate_url is not None and validate_in <= 0 and self._access:
                validate_in = VALIDATE_EVERY_S
                try:
                    valid = await self.validate(http)
                except OAuthUnavailable as exc:
                    log.warning("%s: hourly token validation failed (%s)", self.label, exc)
                    valid = True
                if not valid:
                    log.warning("%s: the token was invalidated before its expiry", self.label)
                    retry_in = await self._try_refresh(http, backoff)
            self.report()

    async def _try_refresh(self, http: aiohttp.ClientSession, backoff: Backoff) -> float | None:
        """Refresh now; returns when to try again after a failure that may pass, else None."""
        try:
            await self.refresh(http, stale=self._access)
        except OAuthRefused as exc:
            log.error("%s: %s", self.label, exc)
            return None
        except OAuthUnavailable as exc:
            delay = backoff.next_delay()
            log.warning("%s: token refresh failed (%s); retrying in %.0f s", self.label, exc, delay)
            return delay
        backoff.reset()
        return None
