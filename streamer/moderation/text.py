"""Text cleaning and folding: what is shown (clean), and what banned words are compared with (match form).

`clean` makes any text displayable: NFC, no control/bidi/zero-width characters, zalgo flattened,
whitespace collapsed. It never raises.

`match_form` turns cleaned text into the form the banned-word patterns run on:
  - every character folded to what it looks like: case, width and accents (NFKD), then the Unicode
    confusables data (UTS #39, from the `confusable-homoglyphs` package) for look-alikes from other
    blocks (Greek β, Cyrillic к, ƅ, ƒ), then the names of Latin letters (small capitals);
  - leetspeak digits and symbols kept as symbols that a pattern may read as a letter or as a
    separator ("b4d", "sh!t", "badword1");
  - mask characters (* # _ ? % •) become "*": a pattern may read one as any one letter ("f*ck");
  - any other run of non-letters (punctuation, emoji, digits, U+30FC, middle dots) becomes "." — a
    separator that may sit inside a word; whitespace becomes " ", a real word boundary, except beside a
    lone letter ("b a d w o r d" and "badwor d" are one spaced-out word; "bad word" and "a bad day"
    are real words);
  - a letter repeated more than three times is cut to three (patterns allow any repeat count ≥ the
    word's own; the cap keeps the regex linear).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from confusable_homoglyphs.confusables import confusables_data

# Bidi overrides/isolates/marks and invisible joiners/spaces that can hide or reorder text.
_INVISIBLE = dict.fromkeys(
    [0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xFEFF, 0x061C, 0x180E]
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A)),
    None,
)
# Letters that render as nothing (Hangul fillers, braille blank): dropped like zero-width characters.
_BLANK_LETTERS = dict.fromkeys([0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800], None)
MAX_COMBINING_RUN = 2  # more stacked marks than this is zalgo, not language
HARD_INPUT_LIMIT = 20_000  # characters looked at at all; the rest of a huge message is dropped unread
_WS = re.compile(r"\s+")


def clean(text: str) -> str:
    """NFC, no control/bidi/zero-width characters, zalgo flattened, whitespace collapsed (no cap)."""
    text = text[:HARD_INPUT_LIMIT]
    if text.isascii() and text.isprintable():  # most chat: nothing to remove, skip the per-character walk
        return _WS.sub(" ", text).strip()
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE).translate(_BLANK_LETTERS)
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


def cap(text: str, max_length: int) -> str:
    if len(text) > max_length:
        return text[: max(1, max_length - 1)].rstrip() + "…"
    return text


def clean_text(text: str, max_length: int) -> str:
    """NFC, no control/bidi/zero-width characters, zalgo flattened, whitespace collapsed, capped."""
    return cap(clean(text), max_length)


# ----- folding -------------------------------------------------------------------------------------------
def fold_case(text: str) -> str:
    """Case, width and accent folding: 'ＢＡＤ', 'Bád' and 'bad' fold alike."""
    if text.isascii():
        return text.casefold()
    return _strip(text)


def _strip(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.casefold()).casefold()
    return "".join(ch for ch in text if not unicodedata.combining(ch))


_LATIN_NAME = re.compile(r"^LATIN (?:SMALL |CAPITAL )?LETTER (?:SMALL CAPITAL |SMALL |CAPITAL )?([A-Z])\b")


def _look_alike(ch: str, stripped: str) -> str | None:
    """The ASCII letter(s) a non-ASCII character is confusable with, from UTS #39 data, else None."""
    forms = list(dict.fromkeys([ch, ch.upper(), ch.lower(), stripped, stripped.upper()]))
    for form in forms:  # a single ASCII letter it is listed with ('Β' with 'B', so 'β' -> 'b')
        for entry in confusables_data.get(form, ()):
            glyph = entry["c"]
            if len(glyph) == 1 and glyph.isascii() and glyph.isalpha():
                return glyph.lower()
    for form in forms:  # or one that folds to ASCII letters ('ƒ' with 'f' + comma below)
        for entry in confusables_data.get(form, ()):
            glyph = _strip(entry["c"])
            if glyph.isascii() and glyph.isalpha():
                return glyph
    try:
        named = _LATIN_NAME.match(unicodedata.name(ch))  # 'ᴋ' LATIN LETTER SMALL CAPITAL K
    except ValueError:
        named = None
    return named.group(1).lower() if named else None


# Leetspeak: a digit or symbol that may stand for a letter. Each folds to one canonical symbol (the
# first of its group) that patterns read as that letter *or* as a separator.
_LEET_GROUPS = {"a": "4@", "b": "8", "e": "3€", "g": "9", "i": "1!|£", "o": "0", "s": "5$", "t": "7+"}
LEET: dict[str, str] = {sym: group[0] for group in _LEET_GROUPS.values() for sym in group}
LEET_FOR: dict[str, str] = {letter: group[0] for letter, group in _LEET_GROUPS.items()}  # letter -> its symbol
MASKS = frozenset("*#_?%•●·")  # '·' middle dot: a mask or a separator; either way not a real letter
_LETTER_ALIASES = {"l": "i"}  # 'l', '1' and 'I' look alike: all compare as 'i'


@lru_cache(maxsize=65536)
def fold_char(ch: str) -> str:
    """One character's match form: letters, '*' (mask), a leet symbol, '.' (separator) or ' ' (space)."""
    if ch.isspace():
        return " "
    if ord(ch) in _BLANK_LETTERS:
        return ""
    if ch in LEET:
        return LEET[ch]
    if ch in MASKS:
        return "*"
    if ch.isascii():
        low = ch.lower()
        return _LETTER_ALIASES.get(low, low) if ch.isalpha() else "."
    stripped = _strip(ch)
    if stripped and all(c.isascii() for c in stripped):  # fullwidth, mathematical, circled, accented
        return "".join(fold_char(c) for c in stripped)
    cat = unicodedata.category(ch)
    if cat.startswith("M"):  # a mark on its own (strike-through, zalgo): nothing
        return ""
    if not cat.startswith("L") or cat == "Lm":  # punctuation, symbols, emoji, 'ー', modifier letters
        if ch in MASKS or stripped in MASKS:
            return "*"
        alike = _look_alike(ch, stripped) if cat.startswith("S") else None  # '€' 'ℓ'-style symbols
        return "".join(fold_char(c) for c in alike) if alike else "."
    alike = _look_alike(ch, stripped)
    if alike:
        return "".join(_LETTER_ALIASES.get(c, c) for c in alike)
    return stripped or "."


_END_PUNCT = re.compile(r"(?<=\S)[!?|.,;:]+(?=\s|$)")
_SEP_RUN_WITH_SPACE = re.compile(r"[. ]*[ ][. ]*")
_DOTS = re.compile(r"\.{2,}")
_LONG_RUN = re.compile(r"(.)\1{3,}")
# A space that does not part two real words: between two single letters ("b a d"), or beside a single
# letter that is not a word of its own ("badwor d", "b adword"; but "a", "I", "o", "u" are words).
_SPACED_OUT = re.compile(r"(?<=[ .][^ .]) (?=[^ .][ .])|(?<=[ .][^ .aiou]) | (?=[^ .aiou][ .])")
CJK = "\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"  # no spaces
# Where a script without spaces meets another ("这是bad"), a word ends: a space there.
_SCRIPT_CHANGE = re.compile(f"(?<=[{CJK}])(?=[^ .{CJK}])|(?<=[^ .{CJK}])(?=[{CJK}])")
_ASCII_FOLD = str.maketrans({chr(c): fold_char(chr(c)) for c in range(128)})


def match_form(text: str) -> str:
    """`text` (cleaned) as banned-word patterns see it, padded with a space at both ends."""
    text = _END_PUNCT.sub(".", text)  # "shit!" ends a word: the '!' is no 'i', the '?' no mask
    if text.isascii():
        folded = text.translate(_ASCII_FOLD)
    else:
        folded = _SCRIPT_CHANGE.sub(" ", "".join(fold_char(ch) for ch in text))
    folded = _LONG_RUN.sub(r"\1\1\1", _DOTS.sub(".", _SEP_RUN_WITH_SPACE.sub(" ", folded)))
    return _SPACED_OUT.sub(".", f" {folded} ")


def skeleton(text: str) -> str:
    """The comparison form of a text for duplicate and name keys: folded, look-alikes and leet digits
    mapped to letters (leet punctuation like '!' stays punctuation here: "there!" is not "therei")."""
    return "".join("." if ch in _PUNCT_LEET else ch if ch in _DIGITS else fold_char(ch) for ch in text
                   ).translate(_UNLEET)


_UNLEET = str.maketrans({sym: letter for letter, sym in LEET_FOR.items()})
_PUNCT_LEET = frozenset(sym for sym in LEET if not sym.isalnum())
_DIGITS = frozenset("0123456789") - set(LEET)  # digits that are no letter stay digits in a key
