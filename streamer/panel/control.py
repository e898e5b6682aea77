"""What the panel may do to a running show, and what it may see of it.

Every action is a plain method on the event loop's thread (the director is not thread-safe);
every view is a JSON-ready snapshot built from attributes the show already keeps.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.events import EmotionCue
from engine.state import EMOTIONS
from streamer.events import ChatMessage, ModerationDecision

if TYPE_CHECKING:
    from streamer.director import Turn
    from streamer.show import Show

log = logging.getLogger("stagecast.panel")


class ActionError(RuntimeError):
    """An action that cannot be carried out now (HTTP 409); the message says why."""


def user_keys(message: ChatMessage) -> set[str]:
    """Every name a moderator may use for this viewer: platform key, platform:id and the plain name."""
    keys = {message.user_name.casefold(), f"{message.platform}:{message.user_name.casefold()}"}
    if message.user_id:
        keys.add(f"{message.platform}:{message.user_id}".casefold())
    key = getattr(message, "user_key", None)  # ChatMessage.user_key where the chat layer provides it
    if isinstance(key, str):
        keys.add(key.casefold())
    return keys


def primary_key(message: ChatMessage) -> str:
    key = getattr(message, "user_key", None)
    return key if isinstance(key, str) else f"{message.platform}:{message.user_id or message.user_name.casefold()}"


class UserBlocks:
    """Banned and timed-out viewers as the panel knows them (persisted by the app in SQLite).

    Where the Moderator has the ban API (`ban(user_key, reason)`, `timeout(user_key, seconds, reason)`,
    `unban(user_key)`), every block is handed to it and the Moderator enforces it in `check_message`.
    Otherwise this class is the adapter: `enforce` is True and the panel's chat tap rejects blocked
    senders itself (matching platform:id, platform:name or the plain name)."""

    def __init__(self, moderator: Any, clock: Callable[[], float] = time.time) -> None:
        self.moderator = moderator
        self.clock = clock
        self.delegate = all(callable(getattr(moderator, name, None)) for name in ("ban", "timeout", "unban"))
        self.enforce = not self.delegate
        self._until: dict[str, float | None] = {}  # casefolded user -> wall-clock expiry (None: ban)

    def block(self, user: str, seconds: float | None, reason: str = "") -> float | None:
        until = None if seconds is None else self.clock() + seconds
        self._until[user.casefold()] = until
        if self.delegate:
            if seconds is None:
                self.moderator.ban(user, reason)
            else:
                self.moderator.timeout(user, seconds, reason)
        return until

    def restore(self, user: str, until: float | None, reason: str = "") -> None:
        """Re-apply a block loaded from the database (expired timeouts are dropped)."""
        if until is None or until > self.clock():
            self.block(user, None if until is None else until - self.clock(), reason)

    def unblock(self, user: str) -> bool:
        found = self._until.pop(user.casefold(), 0.0) != 0.0
        if self.delegate:
            found = bool(self.moderator.unban(user)) or found
        return found

    def rule_for(self, message: ChatMessage) -> str | None:
        """'banned' / 'timeout' when the sender is blocked now, else None."""
        if not self._until:
            return None
        now = self.clock()
        for key in user_keys(message):
            if key in self._until:
                until = self._until[key]
                if until is None:
                    return "banned"
                if until > now:
                    return "timeout"
                del self._until[key]
        return None

    def listing(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [{"user": u, "until": t, "kind": "ban" if t is None else "timeout"}
                for u, t in self._until.items() if t is None or t > now]


def _turn_view(turn: Turn, now: float) -> dict[str, Any]:
    return {
        "id": turn.id,
        "priority": turn.priority.name.lower(),
        "user": turn.prompt.user_name,
        "text": turn.prompt.text[:300],
        "language": turn.prompt.language,
        "status": turn.status,
        "waiting_s": round(now - turn.created, 1),
    }


def chat_view(message: ChatMessage, decision: ModerationDecision) -> dict[str, Any]:
    return {
        "platform": message.platform,
        "user": message.user_name,
        "user_key": primary_key(message),
        "text": message.text[:500],
        "ts": message.timestamp,
        "accepted": decision.accepted,
        "rule": decision.rule,
        "detail": decision.detail[:200],
        "paid": message.amount,
        "currency": message.currency,
    }


class ShowControl:
    """The panel's hands on the show. Methods run on the show's event loop."""

    def __init__(self, show: Show, blocks: UserBlocks) -> None:
        self.show = show
        self.blocks = blocks
        self.banned_words: list[str] = list(show.config.moderation.banned_words)
        self.started = time.time()

    # ----- mod actions ---------------------------------------------------------------------------
    def interrupt(self) -> dict[str, Any]:
        results = self.show.director.interrupt()
        spf = self.show.timebase.samples_per_frame
        return {
            "cut_at": time.time(),
            "cut_frame": results[0].end_sample // spf if results else None,
            "heard": [r.played_text for r in results],
            "was_speaking": bool(results),
        }

    def say(self, text: str, language: str | None, emotion: EmotionCue | None) -> dict[str, Any]:
        turn = self.show.director.say(text, language, emotion)
        return {"turn": turn.id, "language": turn.prompt.language, "queued": len(self.show.director.queued)}

    def emotion(self, cue: EmotionCue) -> dict[str, Any]:
        frame = self.show.director.emotion(cue)
        return {"start_frame": frame, "emotion": cue.emotion, "intensity": cue.intensity, "hold_s": cue.hold_s}

    def pause(self) -> dict[str, Any]:
        self.show.pause()
        return {"paused": True}

    def resume(self) -> dict[str, Any]:
        self.show.resume()
        return {"paused": False}

    def skip(self) -> dict[str, Any]:
        director = self.show.director
        target = director.current.id if director.current is not None else (
            director.queued[0].id if director.queued else None)
        if target is None:
            raise ActionError("nothing to skip: not speaking and the queue is empty")
        director.skip()
        return {"skipped": target}

    def clear(self) -> dict[str, Any]:
        return {"dropped": self.show.director.clear()}

    def timeout(self, user: str, seconds: float, reason: str = "") -> dict[str, Any]:
        return {"user": user, "until": self.blocks.block(user, seconds, reason)}

    # ----- admin actions ---------------------------------------------------------------------------
    def ban(self, user: str, reason: str = "") -> dict[str, Any]:
        self.blocks.block(user, None, reason)
        return {"user": user, "until": None}

    def unban(self, user: str) -> dict[str, Any]:
        if not self.blocks.unblock(user):
            raise ActionError(f"{user!r} is not banned or timed out")
        return {"user": user}

    def set_banned_words(self, words: list[str]) -> dict[str, Any]:
        cleaned = sorted({w.strip() for w in words if w.strip()})
        self.show.parts.moderator.set_banned_words(cleaned)
        self.banned_words = cleaned
        return {"banned_words": cleaned}

    def apply_config(self, config: Any) -> dict[str, Any]:
        """Apply the parts of a reloaded config that can change live; returns what changed."""
        changed: dict[str, Any] = {}
        moderator = self.show.parts.moderator
        if sorted(config.moderation.banned_words) != self.banned_words:
            changed["moderation.banned_words"] = self.set_banned_words(config.moderation.banned_words)["banned_words"]
        if config.moderation.max_length != moderator.max_length:
            moderator.max_length = config.moderation.max_length
            changed["moderation.max_length"] = moderator.max_length
        director = self.show.director
        for key in ("cooldown_s", "queue_cap"):
            value = getattr(config.director, key)
            if getattr(director, key) != value:
                setattr(director, key, value)
                changed[f"director.{key}"] = value
        return {"changed": changed}

    def stop(self) -> dict[str, Any]:
        self.show.request_stop()
        return {"stopping": True}

    # ----- views ---------------------------------------------------------------------------------
    def speech_view(self, word: tuple[int, int] | None) -> dict[str, Any] | None:
        turn = self.show.director.current
        if turn is None:
            return None
        speeches = []
        for item in turn.scheduled:
            speeches.append({
                "id": item.id,
                "text": item.speech.text,
                "language": item.speech.language,
                "words": [w.text for w in item.speech.words],
                "current": word[1] if word is not None and word[0] == item.id else None,
            })
        return {**_turn_view(turn, time.monotonic()), "played_text": turn.played_text, "speeches": speeches}

    def words_of(self, speech_id: int) -> tuple[list[str], str] | None:
        turn = self.show.director.current
        for item in turn.scheduled if turn is not None else []:
            if item.id == speech_id:
                return [w.text for w in item.speech.words], item.speech.language
        return None

    def status(self, word: tuple[int, int] | None, emotions: list[float], extra: dict[str, Any]) -> dict[str, Any]:
        show = self.show
        stats = show.loop.stats
        hub = show.hub.stats()
        director = show.director
        now = time.monotonic()
        return {
            "type": "status",
            "ts": time.time(),
            "mode": "virtual" if show.clock.virtual else "live",
            "video": {"width": show.config.video.width, "height": show.config.video.height,
                      "fps": show.timebase.fps},
            "frames": stats.frames,
            "stream_s": round(stats.frames / show.timebase.fps, 2),
            "late_frames": stats.late_frames,
            "render_errors": stats.render_errors,
            "frame_ms": {k: round(v, 2) for k, v in stats.medians().items()},
            "encoder": {
                "frames_encoded": hub.frames_encoded,
                "errors": hub.encode_errors,
                "ms_median": round(hub.encode_ms_median, 2),
                "ms_ema": round(hub.encode_ms_ema, 2),
                "queue": f"{hub.queue_depth}/{hub.queue_capacity}",
            },
            "sinks": [dataclasses.asdict(s) for s in hub.sinks.values()],
            "chat_sources": [s.name for s in show.sources],
            "paused": director.paused,
            "speech": self.speech_view(word),
            "queue": [_turn_view(t, now) for t in director.queued],
            "recent_turns": [{"id": t.id, "status": t.status, "played_text": t.played_text[:300]}
                             for t in list(director.completed)[-8:]],
            "dropped_turns": director.dropped,
            "emotions": dict(zip(EMOTIONS, (round(e, 2) for e in emotions), strict=True)),
            "banned_words": self.banned_words,
            "blocked_users": self.blocks.listing(),
            **extra,
        }

    def chat(self, limit: int = 100) -> list[dict[str, Any]]:
        items = list(self.show.recent_chat)[-limit:]
        return [chat_view(m, d) for m, d in items]
