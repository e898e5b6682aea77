"""The panel's actions: each a call on the show's control surface, answered as JSON for the audit
log and the page. Runs on the show's event loop."""

from __future__ import annotations

from typing import Any

from engine.events import EmotionCue
from streamer.control import ShowControl


class PanelActions:
    def __init__(self, control: ShowControl) -> None:
        self.control = control

    def interrupt(self) -> dict[str, Any]:
        r = self.control.interrupt()
        return {"cut_at": r.cut_at, "cut_frame": r.cut_frame, "heard": list(r.heard), "was_speaking": r.was_speaking}

    def say(self, text: str, language: str | None, emotion: EmotionCue | None) -> dict[str, Any]:
        turn = self.control.say(text, language, emotion)
        return {"turn": turn.id, "language": turn.prompt.language, "queued": len(self.control.status().queue)}

    def emotion(self, cue: EmotionCue) -> dict[str, Any]:
        frame = self.control.emotion(cue)
        return {"start_frame": frame, "emotion": cue.emotion, "intensity": cue.intensity, "hold_s": cue.hold_s}

    def pause(self) -> dict[str, Any]:
        self.control.pause()
        return {"paused": True}

    def resume(self) -> dict[str, Any]:
        self.control.resume()
        return {"paused": False}

    def skip(self) -> dict[str, Any]:
        return {"skipped": self.control.skip()}

    def clear(self) -> dict[str, Any]:
        return {"dropped": self.control.clear()}

    def timeout(self, user: str, seconds: float, reason: str = "") -> dict[str, Any]:
        until = self.control.timeout(user, seconds, reason)
        return {"user": user, "until": until, "matched": self.control.matching(user)}

    def ban(self, user: str, reason: str = "") -> dict[str, Any]:
        """`matched`: the viewers seen so far that the ban blocks, so the moderator sees what a typed name hit."""
        return {"user": user, "until": None, "matched": self.control.ban(user, reason)}

    def unban(self, user: str) -> dict[str, Any]:
        self.control.unban(user)
        return {"user": user}

    def set_banned_words(self, words: list[str]) -> dict[str, Any]:
        return {"banned_words": self.control.set_banned_words(words)}

    def apply_config(self, config: Any) -> dict[str, Any]:
        return self.control.apply_config(config)

    def set_listening(self, enabled: bool) -> dict[str, Any]:
        self.control.set_listening(enabled)
        switches = self.control.listen_switches
        return {"enabled": switches.enabled, "muted": sorted(switches.muted)}

    def mute(self, name: str, muted: bool) -> dict[str, Any]:
        self.control.mute_input(name, muted)
        return {"input": name, "muted": name in self.control.listen_switches.muted,
                "all_muted": sorted(self.control.listen_switches.muted)}

    def stop(self) -> dict[str, Any]:
        self.control.stop()
        return {"stopping": True}
