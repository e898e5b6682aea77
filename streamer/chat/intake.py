"""Where chat (and a co-host's recognised words) enter the show: moderation, then the scheduler, then a
ChatDecided event. Past this point a message carries its cleaned text and moderated name only.

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

    def _shown(self, message: ChatMessage, decision: ModerationDecision) -> ChatMessage:
        """The message as everything past moderation sees it (screen, prompt, memory): cleaned text, and
        the cleaned name or a placeholder for a name that breaks a rule. Raw text stops here."""
        name = self.moderator.display_name(message.user_name)
        return dataclasses.replace(message, text=decision.text, user_name=name)

    def submit(self, message: ChatMessage) -> ModerationDecision:
        """Moderate one message and offer it to the scheduler."""
        decision = self.moderator.check_message(message)
        shown = self._shown(message, decision)
        queued = False
        if decision.accepted:
            queued = self.scheduler.offer(shown).accepted
        event = ChatDecided(shown, decision, queued)
        self.recent.append(event)
        self._publish(event)
        return decision

    def submit_voice(self, message: ChatMessage) -> ModerationDecision:
        """A co-host's words: the same input moderation, then a VOICE turn (no sampling, no spacing)."""
        decision = self.moderator.check_message(message)
        shown = self._shown(message, decision)
        if decision.accepted:
            scheduler = self.scheduler
            turn = scheduler.new_turn(Priority.VOICE, shown.text, shown.language, shown.user_name, shown.user_id)
            turn.reply_to = shown
            scheduler.submit(turn)
        self._publish(ChatDecided(shown, decision, decision.accepted))
        return decision
