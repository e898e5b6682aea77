"""`replay` chat: a JSONL file of timed messages, played against stream time.

Each line: {"t": seconds, "user": "name", "text": "message", "lang"?: "en", "amount"?: 5.0,
"currency"?: "USD"}. A broken line is logged with its number and skipped; the show goes on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.clock import StreamClock
from engine.language import detect_language
from engine.logtext import untrusted
from streamer.events import ChatMessage

log = logging.getLogger("stagecast.chat.replay")


class ReplayLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    t: float = Field(ge=0)
    user: str = Field(min_length=1, max_length=200)
    text: str
    lang: str | None = None
    amount: float | None = Field(None, ge=0)
    currency: str | None = None


@dataclass(frozen=True)
class TimedMessage:
    t: float
    message: ChatMessage


def read_replay(path: Path) -> list[TimedMessage]:
    """Parse the file; bad lines are logged (file:line: reason) and skipped."""
    out: list[TimedMessage] = []
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            try:
                line = ReplayLine.model_validate(json.loads(raw))
            except (json.JSONDecodeError, ValidationError) as exc:
                reason = str(exc).splitlines()[0] if isinstance(exc, json.JSONDecodeError) else "; ".join(
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
                )
                log.warning("%s:%d: skipped broken replay line: %s", path, number, untrusted(reason))
                continue
            message = ChatMessage(
                platform="replay",
                user_name=line.user,
                user_id=f"replay:{line.user}",
                text=line.text,
                message_id=f"{path.name}:{number}",
                language=line.lang or detect_language(line.text),
                amount=line.amount,
                currency=line.currency,
            )
            out.append(TimedMessage(line.t, message))
    out.sort(key=lambda m: m.t)
    return out


class ReplaySource:
    def __init__(self, path: Path, clock: StreamClock, loop: bool = True, loop_gap_s: float = 20.0) -> None:
        self.name = f"replay:{path.name}"
        self.path = path
        self.clock = clock
        self.loop = loop
        self.loop_gap_s = loop_gap_s

    async def messages(self) -> AsyncIterator[ChatMessage]:
        items = read_replay(self.path)
        if not items:
            log.warning("%s: no usable messages", self.path)
            return
        offset = 0.0
        round_no = 0
        while True:
            for item in items:
                await self.clock.sleep_until(offset + item.t)
                msg = item.message
                if round_no:
                    msg = ChatMessage(**{**msg.__dict__, "message_id": f"{msg.message_id}#{round_no}"})
                yield msg
            if not self.loop:
                return
            offset += items[-1].t + self.loop_gap_s
            round_no += 1
