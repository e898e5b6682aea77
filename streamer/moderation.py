"""Moderation: clean every text, then run the rules that protect the stream — on chat input and
on the brain's output before it is spoken. Cleaning never raises: hostile text becomes plain text.

Text rules (input and output): empty, too_long, banned_word (folded for case, width, accents,
zero-width characters, look-alike letters, leetspeak and separators inside a word: "b.a.d",
"b a d"), link, spam. Message rules (input, need the ChatMessage): blocked_user, emote_only,
language, duplicate, copypasta, rate_limit. Every decision is logged with the rule that fired and
kept in a bounded list (`decisions`) for the moderator panel.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field

from engine.clock import StreamClock, WallClock
from streamer.config import ModerationRulesConfig
from streamer.events import ChatMessage, ModerationDecision

log = logging.getLogger("stagecast.moderation")

# Bidi overrides/isolates/marks and invisible joiners/spaces that can hide or reorder text.
_INVISIBLE = dict.fromkeys(
    [0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xFEFF, 0x061C, 0x180E]
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A)),
    None,
)
MAX_COMBINING_RUN = 2  # more stacked marks than this is zalgo, not language
HARD_INPUT_LIMIT = 20_000  # characters looked at at all; the rest of a huge message is dropped unread
_WS = re.compile(r"\s+")
_NON_WORD = re.compile(r"[\W_]+")


def _clean(text: str) -> str:
    """NFC, no control/bidi/zero-width characters, zalgo flattened, whitespace collapsed (no cap)."""
    text = text[:HARD_INPUT_LIMIT]
    if text.isascii() and text.isprintable():  # most chat: nothing to remove, skip the per-character walk
        return _WS.sub(" ", text).strip()
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    out: list[str] = []
    run = 0
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Cs", "Co", "Cn"):
            out.append(" " if ch in "\t\n\r" else "")
            continue
        if cat.startswith("M"):
            run += 1
            if run > MAX_COMBINING_RUN:
                continue
        else:
            run = 0
        out.append(ch)
    return _WS.sub(" ", "".join(out)).strip()


def _cap(text: str, max_length: int) -> str:
    if len(text) > max_length:
        return text[: max(1, max_length - 1)].rstrip() + "…"
    return text


def clean_text(text: str, max_length: int) -> str:
    """NFC, no control/bidi/zero-width characters, zalgo flattened, whitespace collapsed, capped."""
    return _cap(_clean(text), max_length)


def _fold(text: str) -> str:
    """Case, width and accent folding so 'ＢＡＤ', 'Bád' and 'bad' compare equal."""
    if text.isascii():
        return text.casefold()
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in text if not unicodedata.combining(ch))


# Letters that look like Latin ones (Cyrillic/Greek) and the usual leetspeak digits and symbols.
# 'l' and '1' both become 'i' on BOTH sides of the comparison, so "h3ll0" and "hello" meet.
_SKELETON = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i", "ј": "j", "ѕ": "s",
        "ԁ": "d", "ո": "n", "α": "a", "ε": "e", "ο": "o", "ι": "i", "κ": "k", "ν": "v", "τ": "t", "υ": "u",
        "0": "o", "1": "i", "l": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
        "@": "a", "$": "s", "€": "e", "£": "l",
    }
)  # fmt: skip
# What may hide between the letters of a banned word: spaces and punctuation, a few at a time.
_SEP = r"[\s.\-_*,'\"`~^+/\\|:;!?()\[\]{}<>#=&%]{0,3}"


def skeleton(text: str) -> str:
    """The comparison form of a text: folded, look-alikes and leetspeak mapped to plain letters."""
    return _fold(text).translate(_SKELETON)


def _word_pattern(word: str) -> str:
    letters = [ch for ch in skeleton(word) if not ch.isspace()]
    body = _SEP.join(re.escape(ch) for ch in letters)
    if all(ch.isascii() for ch in letters):  # whole words only: "class" must not hit "ass"
        return rf"(?<![a-z0-9]){body}(?![a-z0-9])"
    return body  # CJK has no spaces between words


_TLDS = (
    "com|net|org|io|gg|tv|ly|me|co|xyz|ru|info|biz|app|dev|link|site|online|live|shop|top|cn|jp|de|uk|us|fr|"
    "to|sh|cc|ws|click|store|stream|club|vip|win|bet|su|tk|ml|ga|cf|gq"
)
_LINK = re.compile(
    rf"(?:\b(?:https?|ftp)://[^\s]+)|(?:\bwww\.[^\s]+)"
    rf"|(?:\b(?:[a-z0-9](?:[a-z0-9-]{{0,61}}[a-z0-9])?\.)+(?:{_TLDS})\b(?:[/:?#][^\s]*)?)"
    rf"|(?:\b[a-z0-9-]{{2,}}\s*[(\[]?\s*dot\s*[)\]]?\s*(?:{_TLDS})\b)"
)
_HOST = re.compile(r"^(?:[a-z]+://)?(?:www\.)?([^/\s:?#]+)")


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
        self._blocked: dict[str, tuple[float, str]] = {}  # user key -> (until, reason)
        self.set_banned_words(banned_words if banned_words is not None else self.rules.banned_words)

    # ----- configuration and the panel's ban/timeout API -----------------------------------------
    def set_banned_words(self, words: list[str]) -> None:
        folded = [w.strip() for w in words if w.strip() and skeleton(w).strip()]
        self._banned = folded
        parts = sorted({_word_pattern(w) for w in folded}, key=len, reverse=True)
        self._banned_re = re.compile("|".join(parts)) if parts else None

    def ban(self, user_key: str, reason: str = "") -> None:
        """Block a viewer (`ChatMessage.user_key`, e.g. "twitch:1234") until unbanned."""
        self._blocked[user_key] = (float("inf"), reason)
        log.info("moderation: banned %s (%s)", user_key, reason or "no reason given")

    def timeout(self, user_key: str, seconds: float, reason: str = "") -> None:
        self._blocked[user_key] = (self.clock.now() + max(0.0, seconds), reason)
        log.info("moderation: timed out %s for %.0f s (%s)", user_key, seconds, reason or "no reason given")

    def unban(self, user_key: str) -> bool:
        return self._blocked.pop(user_key, None) is not None

    def blocked(self) -> dict[str, tuple[float, str]]:
        """Currently blocked viewers: key -> (monotonic time the block ends, or inf; reason)."""
        now = self.clock.now()
        for key in [k for k, (until, _) in self._blocked.items() if until <= now]:
            del self._blocked[key]
        return dict(self._blocked)

    # ----- checks ----------------------------------------------------------------------------------
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
            log.exception("moderation rule failed on message %s", msg.message_id)
            decision = ModerationDecision(False, "", "error", f"chat input: {type(exc).__name__}")
        return self._record("chat input", decision, msg)

    def _message_rules(self, msg: ChatMessage) -> ModerationDecision:
        where = "chat input"
        now = self.clock.now()
        block = self._blocked.get(msg.user_key)
        if block is not None:
            if block[0] > now:
                return ModerationDecision(False, "", "blocked_user", f"{where}: {msg.user_key} is blocked")
            del self._blocked[msg.user_key]
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
        cleaned = _clean(text)
        if not cleaned:
            return ModerationDecision(False, "", "empty", f"{where}: nothing left after cleaning")
        capped = _cap(cleaned, self.max_length)
        folded = skeleton(cleaned)
        if self._banned_re is not None and (hit := self._banned_re.search(folded)):
            return ModerationDecision(False, capped, "banned_word", f"{where}: matched {hit.group(0)!r}")
        if exempt:
            return ModerationDecision(True, capped)
        if rules.block_links and (link := self._find_link(_fold(cleaned))):
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
            user_name=msg.user_name[:100] if msg else "",
            message_id=msg.message_id[:200] if msg else "",
        )
        self.decisions.append(record)
        if decision.accepted:
            log.debug("moderation accepted %s %s", where, record.message_id)
        else:
            log.info(
                "moderation blocked %s%s (rule=%s): %s",
                where,
                f" from {record.user_key}" if record.user_key else "",
                decision.rule,
                decision.detail,
            )
        return decision
