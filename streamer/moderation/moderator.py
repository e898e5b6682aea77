"""The Moderator: every rule that can stop a text, a message or a name.

Text rules (chat, a co-host's words, the brain's output): empty, too_long, banned_word (see
moderation.words: look-alikes, leetspeak, masks, repeats, separators, endings), link, spam. Message
rules (input, need the ChatMessage): blocked_user, emote_only, language, duplicate, copypasta,
rate_limit. Names: cleaned, capped and shown as a placeholder when they break a text rule. Every
decision is logged with the rule that fired and kept in a bounded list (`decisions`) for the panel.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

from engine.clock import StreamClock, WallClock
from engine.logtext import untrusted
from streamer.config import ModerationRulesConfig
from streamer.events import ChatMessage, ModerationDecision
from streamer.moderation.blocks import Blocks, Seen, name_key
from streamer.moderation.text import cap, clean, fold_case, skeleton
from streamer.moderation.words import BannedWords

log = logging.getLogger("stagecast.moderation")

_NON_WORD = re.compile(r"[\W_]+")
_WS = re.compile(r"\s+")
NAME_LIMIT = 40  # characters of a viewer's name shown anywhere (Twitch allows 25)
NAME_PLACEHOLDER = "viewer"  # shown instead of a name that fails moderation
HARD_NAME_LIMIT = 200  # characters of a name looked at at all

_TLDS = (
    "com|net|org|io|gg|tv|ly|me|co|xyz|ru|info|biz|app|dev|link|site|online|live|shop|top|cn|jp|de|uk|us|fr|"
    "to|sh|cc|ws|click|store|stream|club|vip|win|bet|su|tk|ml|ga|cf|gq"
)
_LINK = re.compile(
    rf"(?:\b(?:https?|ftp)://[^\s]+)|(?:\bwww\.[^\s]+)"
    rf"|(?:\b(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.){{1,8}}(?:{_TLDS})\b(?:[/:?#][^\s]*)?)"
    rf"|(?:\b[a-z0-9-]{{2,}}\s*[(\[]?\s*dot\s*[)\]]?\s*(?:{_TLDS})\b)"
)
_HOST = re.compile(r"^(?:[a-z]+://)?(?:www\.)?([^/\s:?#]+)")


NAME_CACHE = 4096  # cleaned names remembered, so a name is folded and checked once


@dataclass(frozen=True)
class DecisionRecord:
    """One moderation decision as the panel shows it."""

    at: float
    where: str  # "chat input" | "character output"
    accepted: bool
    rule: str | None
    detail: str
    text: str  # the cleaned text, cut to 200 characters
    platform: str = ""
    user_key: str = ""
    user_name: str = ""
    message_id: str = ""


@dataclass
class _UserState:
    tokens: float
    refilled: float
    recent: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=8))


class Moderator:
    def __init__(
        self,
        max_length: int = 300,
        banned_words: list[str] | None = None,
        rules: ModerationRulesConfig | None = None,
        clock: StreamClock | None = None,
    ) -> None:
        self.rules = rules or ModerationRulesConfig(max_length=max_length, banned_words=banned_words or [])
        self.max_length = self.rules.max_length if rules is not None else max_length
        self.clock: StreamClock = clock or WallClock()  # stream time in a show: rate limits hold in virtual mode
        self.decisions: deque[DecisionRecord] = deque(maxlen=self.rules.decision_log_size)
        self.counts: Counter[str] = Counter()  # rule -> how often it fired ("accepted" too)
        self._users: OrderedDict[str, _UserState] = OrderedDict()
        self._pasta: OrderedDict[str, deque[tuple[float, str]]] = OrderedDict()
        self._blocks = Blocks(self.rules.tracked_users)
        self.set_banned_words(banned_words if banned_words is not None else self.rules.banned_words)

    # ----- configuration and the panel's ban/timeout API -----------------------------------------
    def set_banned_words(self, words: list[str]) -> None:
        """Words as configured; `*word*` also matches inside longer words (see moderation.words)."""
        self._banned_words = BannedWords(words)
        self._names: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._banned = [w.word for w in self._banned_words.words]

    def ban(self, target: str, reason: str = "") -> list[str]:
        """Block a viewer until unbanned: a key ("twitch:1234"), a "platform:name" or a bare name (every
        platform). Returns the recently seen viewers it matches, as the moderator should see them."""
        hits = self._blocks.add(target, float("inf"), reason)
        log.info("moderation: banned %s (%s); matches %s", untrusted(target), untrusted(reason or "no reason given"),
                 untrusted(", ".join(h.describe() for h in hits) or "no viewer seen yet"))
        return [h.describe() for h in hits]

    def timeout(self, target: str, seconds: float, reason: str = "") -> list[str]:
        """Like `ban`, for `seconds` of stream time."""
        hits = self._blocks.add(target, self.clock.now() + max(0.0, seconds), reason)
        log.info("moderation: timed out %s for %.0f s (%s); matches %s", untrusted(target), seconds,
                 untrusted(reason or "no reason given"),
                 untrusted(", ".join(h.describe() for h in hits) or "no viewer seen yet"))
        return [h.describe() for h in hits]

    def unban(self, target: str) -> bool:
        return self._blocks.remove(target)

    def matching(self, target: str) -> list[str]:
        """The recently seen viewers a ban of `target` would block."""
        return [h.describe() for h in self._blocks.matching(target)]

    def blocked(self) -> dict[str, tuple[float, str]]:
        """Blocks in force: target as typed -> (stream-clock time the block ends, or inf; reason)."""
        return self._blocks.active(self.clock.now())

    def display_name(self, name: str) -> str:
        """A viewer's name as it may be shown, spoken and remembered: cleaned and capped, or a neutral
        placeholder when it is empty or breaks a text rule (a banned word, a link)."""
        return self._name(name)[0]

    def _name(self, name: str) -> tuple[str, str]:
        """(display name, name_key) of a raw name; viewers write many messages under one name, so both
        are kept for the recent names (forgotten when the banned words change)."""
        name = name[:HARD_NAME_LIMIT]  # also bounds the memory the kept names take
        known = self._names.get(name)
        if known is not None:
            return known
        cleaned = clean(name)
        shown = NAME_PLACEHOLDER if not cleaned or self._name_rule(cleaned) is not None else cap(cleaned, NAME_LIMIT)
        known = self._names[name] = (shown, name_key(cleaned))
        if len(self._names) > NAME_CACHE:
            self._names.popitem(last=False)
        return known

    def _name_rule(self, shown: str) -> str | None:
        if self._banned_words.find(shown) is not None:
            return "banned_word"
        if self.rules.block_links and self._find_link(fold_case(shown)):
            return "link"
        return None

    # ----- checks ----------------------------------------------------------------------------------
    def sizes(self) -> dict[str, int]:
        """The size of every table the moderator keeps (a soak checks each stays bounded)."""
        blocks = self._blocks.sizes()
        return {"users": len(self._users), "pasta": len(self._pasta), "blocked": blocks["blocks"],
                "seen": blocks["seen"], "names": len(self._names), "decisions": len(self.decisions)}

    def check_input(self, text: str) -> ModerationDecision:
        """For viewer chat before it reaches the director (text rules only; see check_message)."""
        return self._record("chat input", self._text_rules(text, "chat input", exempt=False), None)

    def check_output(self, text: str) -> ModerationDecision:
        """For the brain's words before they are spoken."""
        return self._record("character output", self._text_rules(text, "character output", exempt=False), None)

    def check_message(self, msg: ChatMessage) -> ModerationDecision:
        """Every input rule, including those that need to know who sent it and when."""
        try:
            decision = self._message_rules(msg)
        except Exception as exc:  # a rule must never take the show down; fail closed
            log.exception("moderation rule failed on message %s", untrusted(msg.message_id))
            decision = ModerationDecision(False, "", "error", f"chat input: {type(exc).__name__}")
        return self._record("chat input", decision, msg)

    def _message_rules(self, msg: ChatMessage) -> ModerationDecision:
        where = "chat input"
        now = self.clock.now()
        shown, folded = self._name(msg.user_name)
        seen = Seen(msg.user_key, msg.platform, msg.user_id, shown, folded)
        self._blocks.saw(seen)
        block = self._blocks.find(seen, now)
        if block is not None:
            return ModerationDecision(False, "", "blocked_user", f"{where}: {msg.user_key} is blocked ({block.target})")
        exempt = bool(msg.roles & set(self.rules.exempt_roles))
        if self.rules.reject_emote_only and msg.emote_only and not msg.paid and not exempt:
            return ModerationDecision(False, "", "emote_only", f"{where}: only emotes")
        decision = self._text_rules(msg.text, where, exempt)
        if not decision.accepted or exempt:
            return decision
        allowed = self.rules.languages
        if allowed and msg.language not in allowed:
            return ModerationDecision(False, decision.text, "language", f"{where}: {msg.language!r} not allowed")
        folded = skeleton(decision.text)
        key = _NON_WORD.sub("", folded) or _WS.sub("", folded)  # "Hello  there!" repeats "hello there"
        if not msg.paid:
            state = self._user(msg.user_key, now)
            window = self.rules.duplicate_window_s
            if any(k == key and now - t <= window for t, k in state.recent):
                return ModerationDecision(False, decision.text, "duplicate", f"{where}: repeated within {window:g} s")
            state.recent.append((now, key))
            if self._copypasta(key, msg.user_key, now):
                return ModerationDecision(False, decision.text, "copypasta", f"{where}: many viewers, same text")
            refill = (now - state.refilled) * self.rules.rate_per_minute / 60
            state.tokens = min(self.rules.rate_burst, state.tokens + refill)
            state.refilled = now
            if state.tokens < 1:
                return ModerationDecision(False, decision.text, "rate_limit", f"{where}: {msg.user_key} over the limit")
            state.tokens -= 1
        return decision

    def _user(self, key: str, now: float) -> _UserState:
        state = self._users.get(key)
        if state is None:
            state = self._users[key] = _UserState(float(self.rules.rate_burst), now)
            if len(self._users) > self.rules.tracked_users:
                self._users.popitem(last=False)
        else:
            self._users.move_to_end(key)
        return state

    def _copypasta(self, key: str, user_key: str, now: float) -> bool:
        if len(key) < 8:  # "hi", "lol", "gg" from many viewers is chat, not a raid of bots
            return False
        seen = self._pasta.get(key)
        if seen is None:
            seen = self._pasta[key] = deque(maxlen=64)
            if len(self._pasta) > self.rules.tracked_users:
                self._pasta.popitem(last=False)
        else:
            self._pasta.move_to_end(key)
        window = self.rules.copypasta_window_s
        while seen and now - seen[0][0] > window:
            seen.popleft()
        seen.append((now, user_key))
        return len({u for _, u in seen}) >= self.rules.copypasta_users

    def _text_rules(self, text: str, where: str, exempt: bool) -> ModerationDecision:
        rules = self.rules
        if rules.reject_length is not None and len(text) > rules.reject_length:
            return ModerationDecision(False, "", "too_long", f"{where}: {len(text)} characters")
        cleaned = clean(text)
        if not cleaned:
            return ModerationDecision(False, "", "empty", f"{where}: nothing left after cleaning")
        capped = cap(cleaned, self.max_length)
        if (hit := self._banned_words.find(capped)) is not None:  # what goes on is all that is looked at
            return ModerationDecision(False, capped, "banned_word", f"{where}: matched {hit.strip()!r}")
        if exempt:
            return ModerationDecision(True, capped)
        if rules.block_links and (link := self._find_link(fold_case(cleaned))):
            return ModerationDecision(False, capped, "link", f"{where}: link {link[:60]!r}")
        if spam := self._spam(cleaned):
            return ModerationDecision(False, capped, "spam", f"{where}: {spam}")
        return ModerationDecision(True, capped)

    def _find_link(self, folded: str) -> str | None:
        for match in _LINK.finditer(folded):
            host_match = _HOST.match(match.group(0))
            host = host_match.group(1) if host_match else ""
            if not any(host == d or host.endswith("." + d) for d in self.rules.allowed_domains):
                return match.group(0)
        return None

    def _spam(self, text: str) -> str | None:
        limit = self.rules.max_char_run
        run, prev = 0, ""
        for ch in text:
            run = run + 1 if ch == prev and not ch.isspace() else 1
            prev = ch
            if run > limit:
                return f"{ch!r} repeated more than {limit} times"
        words = text.casefold().split()
        if len(words) >= 6:
            word, count = Counter(words).most_common(1)[0]
            if count / len(words) > self.rules.max_word_repeat_ratio:
                return f"{word[:20]!r} fills {count} of {len(words)} words"
        return None

    # ----- bookkeeping -------------------------------------------------------------------------------
    def _record(self, where: str, decision: ModerationDecision, msg: ChatMessage | None) -> ModerationDecision:
        self.counts[decision.rule or "accepted"] += 1
        record = DecisionRecord(
            at=time.time(),
            where=where,
            accepted=decision.accepted,
            rule=decision.rule,
            detail=decision.detail,
            text=decision.text[:200],
            platform=msg.platform if msg else "",
            user_key=msg.user_key if msg else "",
            user_name=self.display_name(msg.user_name) if msg else "",
            message_id=msg.message_id[:200] if msg else "",
        )
        self.decisions.append(record)
        if decision.accepted:
            log.debug("moderation accepted %s %s", where, untrusted(record.message_id))
        else:
            log.info(
                "moderation blocked %s%s (rule=%s): %s",
                where,
                f" from {untrusted(record.user_key)}" if record.user_key else "",
                decision.rule,
                untrusted(decision.detail),
            )
        return decision
