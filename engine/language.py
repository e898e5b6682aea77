"""Offline script-based language guess for en/zh/ja: enough to pick the reply language and voice.

Kana means Japanese; Han characters without kana mean Chinese; everything else is English.
"""

from __future__ import annotations

SUPPORTED_LANGUAGES = ("en", "zh", "ja")


def _is_kana(ch: str) -> bool:
    return "\u3040" <= ch <= "\u30ff" or "\u31f0" <= ch <= "\u31ff" or "\uff66" <= ch <= "\uff9f"


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff"


def detect_language(text: str, default: str = "en") -> str:
    kana = sum(1 for ch in text if _is_kana(ch))
    han = sum(1 for ch in text if _is_han(ch))
    if kana:
        return "ja"
    if han:
        return "zh"
    return default
