"""Turn display text into what espeak-ng should read, keeping a map back to the display words.

espeak cannot read hanzi or kanji usefully ("Chinese letter"), so Chinese goes through pypinyin (tone
numbers, read by the ``cmn-latn-pinyin`` voice) and Japanese through pyopenjtalk (katakana readings, read
by the ``ja`` voice).  Subtitles and karaoke need the *original* words, so :func:`prepare` returns the
espeak text plus spans ``(start, end, display)`` in espeak-text character offsets; espeak's word events
(1-based character positions) are looked up in those spans.

* en (and any other language): the text itself; emoji and other pictographs are dropped (espeak
  would read their names).
* zh: one pinyin syllable per hanzi (so each hanzi is a word), Latin words and digits pass through
  (the pinyin voice reads digits in Mandarin and non-pinyin words in English), CJK punctuation becomes
  ASCII punctuation so espeak pauses.
* ja: one word per accent phrase (pyopenjtalk ``chain_flag``), e.g. "配信へ" -> "ハイシンエ"; the display
  text is recovered by aligning tokens to the input (pyopenjtalk rewrites digits and full-width forms).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

from engine.voice.base import VoiceError

Span = tuple[int, int, str]

_HAN = r"\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(r"\w+(?:['’.\-]\w+)*")
_ZH_TOKEN = re.compile(rf"(?P<han>[{_HAN}]+)|(?P<latin>[A-Za-z0-9]+(?:['’.\-][A-Za-z0-9]+)*)|(?P<other>.)", re.DOTALL)

# Sentence-final marks keep their intonation; everything pause-like becomes a comma.
_FINAL = {"。": ".", "．": ".", ".": ".", "!": "!", "！": "!", "?": "?", "？": "?"}
_PAUSE = set("、，,;；:：…‥—–~〜")


def _punct(chars: str) -> str:
    """ASCII punctuation (with spacing) espeak should see for a run of display punctuation/symbols."""
    chars = chars.replace("...", "…")  # NFKC turns the ellipsis into dots; it is a pause, not a full stop
    for ch in chars:
        if ch in _FINAL:
            return _FINAL[ch] + " "
    if any(ch in _PAUSE for ch in chars):
        return ", "
    return " "  # brackets, quotes, emoji: no pause of their own


def _is_symbol(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PSZC"


def _normalize(text: str) -> tuple[str, list[int]]:
    """NFKC per character (full-width Latin, half-width kana), with each output char's source index."""
    out: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        for nch in unicodedata.normalize("NFKC", ch):
            out.append(nch)
            index.append(i)
    return "".join(out), index


def _display(text: str, index: list[int], start: int, end: int) -> str:
    """The original text behind normalized positions [start, end)."""
    if end <= start:
        return ""
    return text[index[start] : index[end - 1] + 1].strip()


class _Builder:
    """Accumulates espeak text and the spans that map it back to display words."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[Span] = []

    def add(self, s: str) -> None:
        self.parts.append(s)
        self.length += len(s)

    def word(self, spoken: str, display: str) -> None:
        if self.parts and not self.parts[-1].endswith(" "):
            self.add(" ")
        start = self.length
        self.add(spoken)
        if display:
            self.spans.append((start, self.length, display))

    def pause(self, punct: str) -> None:
        if self.parts and self.parts[-1].endswith(" ") and punct.strip():
            self.parts[-1] = self.parts[-1].rstrip()
            self.length = sum(len(p) for p in self.parts)
        if self.parts:
            self.add(punct)

    def result(self) -> tuple[str, list[Span]]:
        return "".join(self.parts).rstrip(), self.spans


def _prepare_plain(text: str) -> tuple[str, list[Span]]:
    norm, index = _normalize(text)
    # Drop pictographs (So) and unassigned/private chars: espeak would read "smiling face with ...".
    chars = [" " if unicodedata.category(c) in ("So", "Co", "Cn", "Cs") else c for c in norm]
    spoken = "".join(chars)
    spans = [(m.start(), m.end(), _display(text, index, m.start(), m.end())) for m in _WORD.finditer(spoken)]
    if not spans:  # punctuation only: espeak would produce a second of silence
        return "", []
    return spoken.rstrip(), spans


_frontend_lock = threading.Lock()


def _pinyin(run: str) -> list[str]:
    """Tone-numbered syllables (neutral tone 5, ü as v) for a run of hanzi, one per character."""
    try:
        from pypinyin import Style, lazy_pinyin
    except ImportError as exc:  # pragma: no cover - dependency is pinned
        raise VoiceError("Chinese needs the 'pypinyin' package (pip install pypinyin)") from exc
    kwargs: dict[str, Any] = {"style": Style.TONE3, "neutral_tone_with_five": True, "errors": list}
    with _frontend_lock:  # pypinyin's lazily built phrase tables are not documented as thread-safe
        try:
            syllables = lazy_pinyin(run, tone_sandhi=True, **kwargs)
        except TypeError:  # pypinyin < 0.48 has no tone_sandhi
            syllables = lazy_pinyin(run, **kwargs)
        if len(syllables) != len(run):
            syllables = [(lazy_pinyin(ch, **kwargs) or [ch])[0] for ch in run]
    return syllables


def _prepare_zh(text: str) -> tuple[str, list[Span]]:
    norm, index = _normalize(text)
    out = _Builder()
    for m in _ZH_TOKEN.finditer(norm):
        if m.group("han"):
            for offset, syllable in enumerate(_pinyin(m.group("han"))):
                pos = m.start() + offset
                # Without a tone digit the voice would read the syllable as English: skip unknown hanzi.
                if syllable[-1:].isdigit():
                    out.word(syllable, _display(text, index, pos, pos + 1))
        elif m.group("latin"):
            latin = m.group("latin")
            if latin.isdigit() and norm.startswith("年", m.end()):
                latin = " ".join(latin)  # years are read digit by digit: 2024年 -> er ling er si nian
            out.word(latin, _display(text, index, m.start(), m.end()))
        else:
            ch = m.group("other")
            out.pause(" " if ch.isspace() else _punct(ch))
    return out.result()


_KANA = re.compile(r"^[\u30a0-\u30ff\u3040-\u309f\u31f0-\u31ff]+$")


def _frontend(text: str) -> list[Mapping[str, Any]]:
    try:
        import pyopenjtalk
    except ImportError as exc:  # pragma: no cover - dependency is pinned
        raise VoiceError("Japanese needs the 'pyopenjtalk-plus' package (pip install pyopenjtalk-plus)") from exc
    with _frontend_lock:  # the bundled OpenJTalk instance is shared state
        return list(pyopenjtalk.run_frontend(text))


def _prepare_ja(text: str) -> tuple[str, list[Span]]:
    norm, index = _normalize(text)
    units = _align(norm, _frontend(text))

    # Group tokens into accent phrases (chain_flag == 1 continues the phrase) between pauses.
    items: list[list[Any]] = []  # ["word", start, end, pron] or ["pause", punct]
    for start, end, pron, chain in units:
        segment = norm[start:end]
        if not segment.strip():
            continue
        if _only_symbols(segment):
            items.append(["pause", _punct(segment)])
            continue
        pron = _clean_pron(pron, segment)
        if not pron:
            continue
        if chain == 1 and items and items[-1][0] == "word":
            items[-1][2] = end
            items[-1][3] += pron
        else:
            items.append(["word", start, end, pron])

    out = _Builder()
    for item in items:
        if item[0] == "pause":
            out.pause(item[1])
        else:
            out.word(item[3], _display(text, index, item[1], item[2]))
    return out.result()


def _align(norm: str, tokens: list[Mapping[str, Any]]) -> list[tuple[int, int, str, int]]:
    """(start, end, pron, chain_flag) per token, positions in `norm`.

    pyopenjtalk rewrites some input (digits become kanji numerals, one token per numeral): tokens whose
    surface is not found where expected form a pending run that owns the input up to the next match.
    """
    units: list[tuple[int, int, str, int]] = []
    pending: list[Mapping[str, Any]] = []
    cursor = 0

    def flush(until: int) -> None:
        nonlocal cursor
        if not pending:
            return
        pron = "".join(str(t.get("pron", "")) for t in pending)
        if until > cursor:
            units.append((cursor, until, pron, int(pending[0].get("chain_flag", 0))))
            cursor = until
        elif units:  # nothing of the input left to own: the reading belongs to the previous token
            start, end, prev, chain = units[-1]
            units[-1] = (start, end, prev + pron, chain)
        pending.clear()

    for tok in tokens:
        surface = unicodedata.normalize("NFKC", str(tok.get("string", "")))
        at = cursor
        while at < len(norm) and norm[at].isspace():
            at += 1
        found = norm.find(surface, at) if surface else -1
        if found == at or (found > at and (pending or _only_symbols(norm[at:found]))):
            if pending:
                flush(found)
            elif found > at:  # input the frontend dropped (symbols): keep it as a pause
                units.append((at, found, "", 0))
            units.append((found, found + len(surface), str(tok.get("pron", "")), int(tok.get("chain_flag", 0))))
            cursor = found + len(surface)
        else:
            pending.append(tok)
    flush(len(norm.rstrip()))
    return units


def _only_symbols(s: str) -> bool:
    return bool(s) and all(_is_symbol(c) for c in s)


def _clean_pron(pron: str, segment: str) -> str:
    """Katakana espeak can read; the frontend's punctuation readings and accent marks are dropped."""
    pron = pron.replace("’", "").replace("'", "")
    pron = "".join(c for c in pron if not _is_symbol(c) or c == "ー")
    if pron and _KANA.match(pron):
        return pron
    # Non-kana reading (e.g. Latin the dictionary did not know): let espeak try the surface.
    return pron or "".join(c for c in segment if not _is_symbol(c))


_PREPARERS: dict[str, Callable[[str], tuple[str, list[Span]]]] = {
    "en": _prepare_plain,
    "zh": _prepare_zh,
    "ja": _prepare_ja,
}


def prepare(text: str, language: str) -> tuple[str, list[Span]]:
    """espeak input for `text` plus spans (start, end, display word) in espeak-text char offsets.

    Languages other than zh/ja get the plain (English) treatment: espeak reads their script directly.
    """
    if not text or not text.strip():
        return "", []
    return _PREPARERS.get(language, _prepare_plain)(text)
