"""The panel's JSON: the show's typed status and events turned into what the page and overlays read."""

from __future__ import annotations

import dataclasses
from typing import Any

from engine.state import EMOTIONS
from streamer.control import ListenView, ShowStatus, TurnView
from streamer.events import BargeIn, ChatDecided, Heard, ListeningChanged, ListeningSwitched

TEXT_LIMIT = 500  # characters of a transcript sent to pages (a recogniser never says more at once)


def turn_json(turn: TurnView) -> dict[str, Any]:
    return {"id": turn.id, "priority": turn.priority, "user": turn.user, "text": turn.text,
            "language": turn.language, "status": turn.status, "waiting_s": turn.waiting_s}


def chat_json(item: ChatDecided) -> dict[str, Any]:
    message, decision = item.message, item.decision
    return {
        "platform": message.platform,
        "user": message.user_name,
        "user_key": message.user_key,
        "text": message.text[:500],
        "ts": message.timestamp,
        "accepted": decision.accepted,
        "rule": decision.rule,
        "detail": decision.detail[:200],
        "paid": message.amount,
        "currency": message.currency,
    }


def speech_json(status: ShowStatus, word: tuple[int, int] | None) -> dict[str, Any] | None:
    """The turn on air with its sentences, and which word of which sentence is being heard."""
    if status.current is None:
        return None
    speeches = [{"id": s.id, "text": s.text, "language": s.language, "words": list(s.words),
                 "current": word[1] if word is not None and word[0] == s.id else None} for s in status.speeches]
    return {**turn_json(status.current), "played_text": status.current.played_text, "speeches": speeches}


def status_json(status: ShowStatus, word: tuple[int, int] | None, emotions: list[float],
                extra: dict[str, Any]) -> dict[str, Any]:
    enc = status.encoder
    return {
        "type": "status",
        "ts": status.ts,
        "mode": status.mode,
        "video": {"width": status.width, "height": status.height, "fps": status.fps},
        "frames": status.frames,
        "stream_s": status.stream_s,
        "late_frames": status.late_frames,
        "render_errors": status.render_errors,
        "frame_ms": status.frame_ms,
        "encoder": {"frames_encoded": enc.frames_encoded, "errors": enc.errors, "ms_median": enc.ms_median,
                    "ms_ema": enc.ms_ema, "queue": f"{enc.queue_depth}/{enc.queue_capacity}"},
        "sinks": [dataclasses.asdict(s) for s in status.sinks],
        "chat_sources": list(status.chat_sources),
        "health": {name: {"status": h.status.value, "detail": h.detail} for name, h in status.health.items()},
        "paused": status.paused,
        "speech": speech_json(status, word),
        "queue": [turn_json(t) for t in status.queue],
        "recent_turns": [{"id": t.id, "status": t.status, "played_text": t.played_text} for t in status.recent_turns],
        "dropped_turns": status.dropped_turns,
        "emotions": dict(zip(EMOTIONS, (round(e, 2) for e in emotions), strict=True)),
        "banned_words": list(status.banned_words),
        "blocked_users": [{"user": b.user, "until": b.until, "kind": "ban" if b.until is None else "timeout"}
                          for b in status.blocked],
        **extra,
    }


def links_json(status: ShowStatus) -> dict[str, Any]:
    """The network outputs as the status overlay shows them: state, seconds off air now and in
    all, reconnects and dropped packets (no error text: it may name hosts)."""
    return {"type": "links", "links": [
        {"name": s.name, "state": s.state, "off_air_s": round(s.off_air_s), "off_air_total_s": round(s.off_air_total_s),
         "reconnects": s.reconnects, "dropped": s.dropped} for s in status.sinks if s.link is not None]}


# ----- listening -------------------------------------------------------------------------------------
def voice_input(item: ChatDecided) -> str | None:
    """The input a co-host's moderated words came from (`submit_voice` marks them), else None."""
    message = item.message
    if message.platform != "voice" or not message.user_id.startswith("voice:"):
        return None
    return message.user_id.removeprefix("voice:")


def listen_json(event: object) -> dict[str, Any] | None:
    """A listening event as the panel's `listen` topic and the co-host page carry it; None for others."""
    if isinstance(event, Heard):
        return {"type": "heard", "input": event.input, "speaker": event.speaker, "utterance": event.utterance,
                "text": event.text[:TEXT_LIMIT], "language": event.language, "partial": event.partial,
                "audio_s": round(event.audio_s, 2), "decode_ms": round(event.decode_ms, 1)}
    if isinstance(event, ListeningChanged):
        return {"type": "listening", "input": event.input, "speaker": event.speaker, "state": event.state,
                "enabled": event.enabled}
    if isinstance(event, ListeningSwitched):
        return {"type": "listen_switch", "enabled": event.enabled, "muted": list(event.muted)}
    if isinstance(event, BargeIn):
        return {"type": "barge_in", "input": event.input, "speaker": event.speaker,
                "latency_ms": round(event.latency_ms, 1), "heard": [h[:TEXT_LIMIT] for h in event.heard]}
    if isinstance(event, ChatDecided):
        name = voice_input(event)
        if name is None:
            return None
        return {"type": "voice_decided", "input": name, "speaker": event.message.user_name,
                "text": event.decision.text[:TEXT_LIMIT], "language": event.message.language,
                "accepted": event.decision.accepted, "rule": event.decision.rule}
    return None


def listening_json(view: ListenView, inputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The show's listening switches and every input the panel knows: those the page can feed (the
    status names them) and those that have been heard from (their events name them)."""
    names = sorted(set(view.inputs) | set(inputs))
    by_input = {name: {"speaker": inputs.get(name, {}).get("speaker", name),
                       "state": inputs.get(name, {}).get("state", "idle"),
                       "muted": name in view.muted,
                       "browser": name in view.inputs,
                       "streaming": inputs.get(name, {}).get("streaming")} for name in names}
    return {"enabled": view.enabled, "muted": list(view.muted), "inputs": names, "by_input": by_input}
