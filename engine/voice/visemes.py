"""Map espeak-ng phoneme mnemonics (en-us, cmn pinyin, ja voices) to the avatar's six visemes.

The avatar only has ("closed", "a", "i", "u", "e", "o"), so this is deliberately coarse: the viseme of a
phoneme is what the mouth looks like while it starts.  Rules, in order:

* pauses (``_``, ``_:``, ``_|``, ...) and the bilabials p b m -> "closed";
* vowels and diphthongs -> their main vowel (a leading glide i/u/y before another vowel is skipped,
  so pinyin "ia"/"ua" open to "a" and "iE" to "e"); schwa ``@`` counts as "a", the nurse vowel ``3``
  as "e", front-rounded ``y`` (pinyin u-umlaut) as "u";
* rounded consonants (w, sh/zh family) -> "u"; the y-glide j -> "i";
* back consonants (k g h x ng ...) -> "e" (the jaw stays partly open around them);
* every other consonant (t d n l s z r f v th ...) -> "i": a narrow opening with teeth showing.

Anything unrecognised falls back to "i" (or "closed" if it has no letters at all); nothing here raises,
because espeak's phoneme tables differ between versions and voices.
"""

from __future__ import annotations

from functools import lru_cache

# Stress / length / tone decorations espeak puts around phoneme names.
_DECORATION = "'\",%=:;|[]-#!^"

_VOWEL_VISEME: dict[str, str] = {
    "a": "a",
    "A": "a",
    "V": "a",
    "@": "a",
    "&": "a",
    "6": "a",
    "3": "e",
    "e": "e",
    "E": "e",
    "i": "i",
    "I": "i",
    "o": "o",
    "O": "o",
    "0": "o",
    "Q": "o",
    "u": "u",
    "U": "u",
    "y": "u",
    "Y": "u",
}
_GLIDES = "iIuUy"

_CLOSED = {"p", "b", "m", "B", "P", "M"}
_ROUNDED = {"w", "W", "S", "Z", "tS", "dZ", "tS;", "dZ;", "ts.", "tsh.", "s.", "z.", "S;", "Z;"}
_BACK = {"k", "g", "h", "x", "X", "N", "G", "q", "?", "kh", "kw", "gw", "h#", "N\\"}


def _strip(phoneme: str) -> str:
    return phoneme.strip().lstrip(_DECORATION)


def _vowel_viseme(core: str) -> str | None:
    """Viseme of a vowel/diphthong name, or None when `core` does not start with a vowel."""
    if not core or core[0] not in _VOWEL_VISEME:
        return None
    vowels = [c for c in core if c in _VOWEL_VISEME]
    # Pinyin-style glide + nucleus ("ia", "ua", "iE", "uo"): the nucleus shapes the mouth.
    if len(vowels) > 1 and vowels[0] in _GLIDES and vowels[1] not in _GLIDES:
        return _VOWEL_VISEME[vowels[1]]
    return _VOWEL_VISEME[vowels[0]]


@lru_cache(maxsize=1024)
def viseme_for(phoneme: str) -> str:
    """The viseme for one espeak phoneme mnemonic; unknown names degrade gracefully, never raise."""
    raw = phoneme.strip() if isinstance(phoneme, str) else ""
    if not raw or raw.startswith(("_", "(")):
        return "closed"
    core = _strip(raw)
    if not core:
        return "closed"
    vowel = _vowel_viseme(core)
    if vowel is not None:
        return vowel
    if core in _CLOSED or core[0] in _CLOSED:
        return "closed"
    if core in _ROUNDED or core.rstrip(";.") in _ROUNDED or core[0] == "w":
        return "u"
    if core[0] == "j":
        return "i"
    if core in _BACK or core[0] in "kgxXhNGq?":
        return "e"
    if any(ch.isalpha() for ch in core):
        return "i"
    return "closed"
