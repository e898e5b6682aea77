"""The character's persona: who it is and how it talks, turned into a system prompt for LLM brains.

The prompt is rebuilt per turn because two parts change with the viewer: the language to answer in
(the viewer's, so a Japanese message gets Japanese speech from the Japanese voice) and what memory knows
about that viewer.  Emotion tags are restricted to the avatar's vocabulary because unknown tags are
silently dropped by :mod:`engine.brain.tags`: telling the model the list keeps its cues visible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.brain.base import HistoryEntry, Prompt
from engine.brain.tags import spoken_name, untagged
from engine.state import EMOTIONS

LANGUAGE_NAMES: dict[str, str] = {"en": "English", "zh": "Simplified Chinese", "ja": "Japanese"}
# Spoken when the brain fails mid-reply, after the sentence on air has finished (see Performer).
COVER_LINES: dict[str, str] = {
    "en": "[surprise] Oops, my thoughts got tangled, one sec!",
    "zh": "[surprise] 哎呀，我的思路打结了，稍等一下！",
    "ja": "[surprise] あれ、考えがこんがらがっちゃった、ちょっと待ってね！",
}


@dataclass(frozen=True)
class Persona:
    """Everything an LLM brain needs to stay in character; loadable from a character pack's YAML."""

    name: str = "Aiko"
    system_prompt: str = (
        "You are {name}, a cheerful virtual streamer who hosts a cozy always-on livestream. "
        "You chat with viewers, remember regulars and keep the mood warm and playful."
    )
    style: str = "Speak casually and warmly. Keep every reply to one to three short sentences meant to be spoken aloud."
    languages: tuple[str, ...] = ("en", "zh", "ja")
    catchphrases: tuple[str, ...] = ()
    emotions: tuple[str, ...] = tuple(EMOTIONS)
    max_history: int = 12  # history entries sent with each request (the rest lives in memory summaries)
    cover_lines: Mapping[str, str] = field(default_factory=lambda: dict(COVER_LINES))
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [e for e in self.emotions if e not in EMOTIONS]
        if unknown:
            raise ValueError(f"persona emotions {unknown} are not avatar emotions {list(EMOTIONS)}")
        if not self.languages:
            raise ValueError("a persona needs at least one language")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Persona:
        """Build from YAML-loaded data; lists become tuples, unknown keys are an error (typos show)."""
        known = {f for f in cls.__dataclass_fields__}
        bad = sorted(set(data) - known)
        if bad:
            raise ValueError(f"unknown persona keys {bad}; known: {sorted(known)}")
        kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs)

    @classmethod
    def load(cls, path: str | Path) -> Persona:
        import yaml

        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a persona file must be a mapping")
        return cls.from_dict(data)

    def reply_language(self, language: str) -> str:
        """The viewer's language when the persona speaks it, else the persona's first language."""
        return language if language in self.languages else self.languages[0]

    def build_system_prompt(self, language: str, context: str = "") -> str:
        """The system message for one turn: identity, style, language rule, tag rule, memory."""
        lang = self.reply_language(language)
        lang_name = LANGUAGE_NAMES.get(lang, lang)
        tags = ", ".join(f"[{e}]" for e in self.emotions)
        parts = [
            self.system_prompt.format(name=self.name).strip(),
            self.style.strip(),
            f"The viewer wrote in {lang_name}. Answer in {lang_name} only ({lang}).",
            f"To show an emotion, put one of these tags before a sentence: {tags}. "
            "Use no other bracketed tags, no emoji, no markdown, no stage directions; everything else is read aloud.",
        ]
        if self.catchphrases:
            parts.append("Now and then use one of your catchphrases: " + " / ".join(self.catchphrases))
        if context.strip():
            parts.append("What you remember:\n" + untagged(context).strip())
        return "\n\n".join(p for p in parts if p)

    def cover_line(self, language: str) -> str | None:
        """The short line that covers a failed reply, in the viewer's language (None: say nothing)."""
        return self.cover_lines.get(language) or self.cover_lines.get(self.reply_language(language)) or None

    def stable_system_prompt(self) -> str:
        """The part of the instructions that never changes during a show (the start of a cacheable prefix):
        identity, style, the tag rule. The viewer's language and memory go in `turn_note` instead."""
        tags = ", ".join(f"[{e}]" for e in self.emotions)
        names = ", ".join(LANGUAGE_NAMES.get(code, code) for code in self.languages)
        parts = [
            self.system_prompt.format(name=self.name).strip(),
            self.style.strip(),
            f"You speak {names}. Answer in {LANGUAGE_NAMES.get(self.languages[0], self.languages[0])} unless a "
            "note asks for another language. Never repeat the notes.",
            f"To show an emotion, put one of these tags before a sentence: {tags}. "
            "Use no other bracketed tags, no emoji, no markdown, no stage directions; everything else is read aloud.",
        ]
        if self.catchphrases:
            parts.append("Now and then use one of your catchphrases: " + " / ".join(self.catchphrases))
        return "\n\n".join(p for p in parts if p)

    def turn_note(self, language: str, context: str = "") -> str:
        """What changes per turn (sent with the viewer's message, after the cached prefix); empty for a
        viewer in the persona's first language with nothing remembered (small models read notes aloud)."""
        lang = self.reply_language(language)
        lang_name = LANGUAGE_NAMES.get(lang, lang)
        notes = []
        if lang != self.languages[0]:
            notes.append(f"(The viewer wrote in {lang_name}. Answer in {lang_name} only ({lang}).)")
        if context.strip():
            notes.append("(What you remember: " + " ".join(untagged(context).split()) + ")")
        return "\n".join(notes)

    def build_messages(
        self, prompt: Prompt, history: Iterable[HistoryEntry], context: str = ""
    ) -> list[dict[str, str]]:
        """OpenAI-style chat messages: system, the recent history, then the viewer's message."""
        messages = [{"role": "system", "content": self.build_system_prompt(prompt.language, context)}]
        recent = list(history)[-self.max_history :] if self.max_history > 0 else []
        for entry in recent:
            if entry.role == "character":
                messages.append({"role": "assistant", "content": entry.text})
            else:
                messages.append({"role": "user", "content": viewer_line(entry.name, entry.text)})
        messages.append({"role": "user", "content": viewer_line(prompt.user_name, prompt.text)})
        return messages


def viewer_line(name: str, text: str) -> str:
    """A viewer's message as a brain reads it: a speakable name, then their words with no tag syntax."""
    return f"{spoken_name(name) or 'viewer'}: {untagged(text)}"
