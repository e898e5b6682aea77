"""Offline language guess: enough to pick the reply language and voice, and to filter chat by language.

Kana means Japanese; Han characters without kana mean Chinese (a fast path, no model). Other
text with enough letters goes to lingua, restricted to a handful of languages so it stays fast
(~0.1 ms a message) and cannot answer with something exotic. Short or ambiguous text (chat is
full of "lol", "gg", "Kappa", which lingua happily calls Italian) gets the default instead.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

log = logging.getLogger("stagecast.language")

SUPPORTED_LANGUAGES = ("en", "zh", "ja")
# What lingua may answer: the voices we have plus the chat languages we most often see, so a
# moderator can allow-list them and the show can tell "not English" from "unknown".
DETECTABLE_LANGUAGES = ("en", "zh", "ja", "es", "fr", "de", "pt", "it", "ko", "ru")

MIN_WORDS = 2  # fewer words than this is too little evidence
MIN_LETTERS = 8
MIN_CONFIDENCE = 0.45
MIN_MARGIN = 0.08  # over the runner-up
# Words that (nearly) only English uses: ASCII text where they make up a good share is English,
# without asking the model (~0.2 ms a message, which matters at thousands of messages a second).
_ENGLISH_MARKERS = frozenset(
    "the you your you're i'm i've it's is are was were what what's how why who when where this that these "
    "those and but with have has had not don't can't can could would should will just like love really "
    "think know want get got to of in on for my me we they he she it do does did be been from about".split()
)
ENGLISH_MARKER_SHARE = 0.3
_LETTER_RUN = re.compile(r"[^\W\d_]+")


def _is_kana(ch: str) -> bool:
    return "\u3040" <= ch <= "\u30ff" or "\u31f0" <= ch <= "\u31ff" or "\uff66" <= ch <= "\uff9f"


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff"


def _is_hangul(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7a3" or "\u1100" <= ch <= "\u11ff" or "\u3130" <= ch <= "\u318f"


@functools.cache
def _detector() -> Any | None:
    """Build the lingua detector once, its models loaded now.

    Loaded lazily, the models arrive with the first message that needs them: ~1 s inside lingua's
    Rust code, which holds the GIL all that time, so every thread of the show (the frame loop
    too) stalls mid-stream. `warmup()` pays it at start-up instead.
    """
    try:
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder
    except ImportError:  # pragma: no cover - lingua is a main dependency; degrade rather than crash
        log.warning("lingua-language-detector is not installed; Latin-script text is taken as the default language")
        return None
    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in DETECTABLE_LANGUAGES]
    return LanguageDetectorBuilder.from_languages(*languages).with_preloaded_language_models().build()


def warmup() -> None:
    """Load the detector's models now (start-up), not on the first chat message of a live show."""
    _detector()


def detect_language(text: str, default: str = "en") -> str:
    """ISO 639-1 code of the text's language; `default` when the text says too little to tell."""
    kana = han = hangul = 0
    for ch in text:
        if ch < "\u1100":
            continue
        if _is_kana(ch):
            kana += 1
        elif _is_han(ch):
            han += 1
        elif _is_hangul(ch):
            hangul += 1
    if kana:
        return "ja"
    if han:
        return "zh"
    if hangul:
        return "ko"
    words = _LETTER_RUN.findall(text[:2000])
    if len(words) < MIN_WORDS or sum(map(len, words)) < MIN_LETTERS:
        return default
    if text.isascii():
        lowered = [w.casefold() for w in text.split()]
        if sum(w.strip(".,!?;:'\"()") in _ENGLISH_MARKERS for w in lowered) >= ENGLISH_MARKER_SHARE * len(lowered):
            return "en"
    detector = _detector()
    if detector is None:
        return default
    values = detector.compute_language_confidence_values(" ".join(words))
    if not values:
        return default
    top = values[0]
    runner_up = values[1].value if len(values) > 1 else 0.0
    if top.value < MIN_CONFIDENCE or top.value - runner_up < MIN_MARGIN:
        return default
    return top.language.iso_code_639_1.name.lower()


def reply_language(language: str, default: str = "en") -> str:
    """The language the character can answer in: the detected one when a voice exists for it."""
    return language if language in SUPPORTED_LANGUAGES else default


def _script_of(ch: str, han_language: str) -> str | None:
    """The language a character's script names, or None for neutral characters (spaces, digits,
    punctuation, symbols) that belong to whichever run surrounds them."""
    if ch < "\u1100":
        return "latin" if ch.isalpha() else None
    if _is_kana(ch):
        return "ja"
    if _is_han(ch):
        return han_language
    if _is_hangul(ch):
        return "ko"
    return "latin" if ch.isalpha() else None


def script_runs(text: str, default: str = "en") -> list[tuple[str, str]]:
    """Split a line into (text, language) runs by script, so each run can be voiced in its own language.

    Han characters are Japanese when the line has kana, Chinese otherwise; a run of Latin letters
    gets its own language guess (`default` when too short to tell). Spaces, digits and punctuation
    stay with the run before them (the first run takes any that lead the line), so the runs
    concatenate back to `text` exactly. A line in one script is one run.
    """
    han_language = "ja" if any(_is_kana(ch) for ch in text) else "zh"
    runs: list[list[str]] = []  # [script, text]
    lead = ""
    for ch in text:
        script = _script_of(ch, han_language)
        if script is None or (runs and runs[-1][0] == script):
            if runs:
                runs[-1][1] += ch
            else:
                lead += ch
            continue
        runs.append([script, lead + ch])
        lead = ""
    if not runs:
        return [(text, default)] if text else []
    latin_default = default if default not in ("zh", "ja", "ko") else "en"
    out: list[tuple[str, str]] = []
    for script, chunk in runs:
        guess = detect_language(chunk, latin_default) if script == "latin" else script
        language = reply_language(guess, latin_default if script == "latin" else default)
        if out and out[-1][1] == language:
            out[-1] = (out[-1][0] + chunk, language)
        else:
            out.append((chunk, language))
    return out
