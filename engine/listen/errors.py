"""Why listening cannot run here, and where the optional extra is imported (one message for all of it)."""

from __future__ import annotations

from types import ModuleType

INSTALL_HINT = "pip install 'stagecast[listen]'"


class ListenError(RuntimeError):
    """Listening cannot run here (missing extra, model or file); the message says what to do."""


def import_faster_whisper() -> ModuleType:
    """faster-whisper, imported late: it pulls in CTranslate2 and tokenizers, which a show without ears never needs."""
    try:
        import faster_whisper
    except ImportError as exc:
        raise ListenError(f"speech recognition needs the listen extra: {INSTALL_HINT} (faster-whisper)") from exc
    return faster_whisper
