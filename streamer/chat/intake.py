"""Where chat (and a co-host's recognised words) enter the show: moderation, then the scheduler, then a
ChatDecided event.

Every source (Twitch, YouTube, the local page, a replay, the panel) hands its messages here. It
never raises for bad input: a message that breaks a rule is refused with the rule's name.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable

from streamer.events import ChatDecided, ChatMessage, ModerationDecision
from streamer.moderation import Moderator
from streamer.scheduler import TurnScheduler
from streamer.turns import Priority


class ChatIntake:
    def __init__(self, moderator: Moderator, scheduler: TurnScheduler, publish: Callable[[object], None],
                 keep: int = 200) -> None:
        self.moderator = moderator
        self.scheduler = scheduler
        self._publish = publish
        self.recent: deque[ChatDecided] = deque(maxlen=keep)  # the latest decisions, for the panel's chat view

    def submit(self, message: ChatMessage) -> ModerationDecision:
        """Moderate one message and offer it to the scheduler."""
        decision = self.moderator.check_message(message)
        queued = False
        if decision.accepted:
            queued = self.scheduler.offer(dataclasses.replace(message, text=decision.text)).accepted
        event = ChatDecided(message, decision, queued)
        self.recent.append(event)
        self._publish(event)
        return decision

    def submit_voice(self, message: ChatMessage) -> ModerationDecision:
        """A co-host's words: the same input moderation, then a VOICE turn (no sampling, no spacing)."""
        decision = self.moderator.check_message(message)
        if decision.accepted:
            scheduler = self.scheduler
            turn = scheduler.new_turn(Priority.VOICE, decision.text, message.language, message.user_name,
                                      message.user_id)
            turn.reply_to = message
            scheduler.submit(turn)
        self._publish(ChatDecided(message, decision, decision.accepted))
        return decision
