"""Moderation basics: clean every text, cap its length, and block banned words — on chat input and
on the brain's output before it is spoken. Cleaning never raises: hostile text becomes plain text."""

from __future__ import annotations

import logging
import re
import unicodedata

from streamer.events import ModerationDecision

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


def clean_text(text: str, max_length: int) -> str:
    """NFC, no control/bidi/zero-width characters, zalgo flattened, whitespace collapsed, capped."""
    text = text[:HARD_INPUT_LIMIT]
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
    cleaned = re.sub(r"\s+", " ", "".join(out)).strip()
    if len(cleaned) > max_length:
        cleaned = cleaned[: max(1, max_length - 1)].rstrip() + "…"
    return cleaned


def _fold(text: str) -> str:
    """Case, width and accent folding so 'ＢＡＤ', 'Bád' and 'bad' compare equal."""
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in text if not unicodedata.combining(ch))


class Moderator:
    def __init__(self, max_length: int = 300, banned_words: list[str] | None = None) -> None:
        self.max_length = max_length
        self.set_banned_words(banned_words or [])

    def set_banned_words(self, words: list[str]) -> None:
        folded = [_fold(w).strip() for w in words if w.strip()]
        self._banned = folded
        parts = [re.escape(w) if not w.isascii() else rf"(?<![a-z0-9]){re.escape(w)}(?![a-z0-9])" for w in folded]
        self._banned_re = re.compile("|".join(parts)) if parts else None

    def _check(self, text: str, where: str) -> ModerationDecision:
        cleaned = clean_text(text, self.max_length)
        if not cleaned:
            decision = ModerationDecision(False, "", "empty", f"{where}: nothing left after cleaning")
        elif self._banned_re is not None and (hit := self._banned_re.search(_fold(cleaned))):
            decision = ModerationDecision(False, cleaned, "banned_word", f"{where}: matched {hit.group(0)!r}")
        else:
            decision = ModerationDecision(True, cleaned)
        if not decision.accepted:
            log.info("moderation blocked %s (rule=%s): %s", where, decision.rule, decision.detail)
        return decision

    def check_input(self, text: str) -> ModerationDecision:
        """For viewer chat before it reaches the director."""
        return self._check(text, "chat input")

    def check_output(self, text: str) -> ModerationDecision:
        """For the brain's words before they are spoken."""
        return self._check(text, "character output")
