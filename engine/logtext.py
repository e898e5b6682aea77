"""Untrusted text in log lines: one printable line, invisible and control characters shown as escapes.

A viewer's name, a chat message, a transcript or a brain's reply can hold a newline (a forged log
line), an ESC sequence (a terminal that recolours or rewrites itself) or a bidi override (a line that
reads backwards). Every such value goes through :func:`untrusted` before it is put into a log line.
"""

from __future__ import annotations

import logging
import unicodedata

LOG_LIMIT = 300  # characters of one untrusted value kept in a log line

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _visible(ch: str) -> bool:
    # printable, and not a format (bidi, zero-width), line/paragraph separator or private/unassigned character
    return ch.isprintable() and unicodedata.category(ch) not in ("Cf", "Co", "Cn", "Zl", "Zp")


def untrusted(value: object, limit: int = LOG_LIMIT) -> str:
    """`value` as one log-safe line: control, format and invisible characters escaped, cut to `limit`."""
    text = value if isinstance(value, str) else str(value)
    cut = len(text) > limit
    text = text[:limit]
    if not (text.isascii() and text.isprintable()):
        text = "".join(ch if _visible(ch) else _escape(ch) for ch in text)
    return text + "…" if cut else text


class OneLineFormatter(logging.Formatter):
    """A safety net under :func:`untrusted`: the message part of every record is escaped to one line
    (tracebacks, added after the message, keep their lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = record.message
        if not (message.isascii() and message.isprintable()):
            record.message = "".join(ch if _visible(ch) else _escape(ch) for ch in message)
        return super().formatMessage(record)
