"""Listening: speech in, text out, for a co-host who hears a guest.

`vad` finds where speech starts, pauses and ends (and how loud it is) in a 16 kHz stream; `asr`
recognises each utterance with Whisper while it is spoken. Everything runs offline from PyPI wheels
(the optional extra ``stagecast[listen]``); the heavy imports happen only when a model is loaded.
"""

from engine.listen.errors import ListenError
from engine.listen.transcript import Transcript, Word

__all__ = ["ListenError", "Transcript", "Word"]
