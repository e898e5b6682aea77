"""The director: which chat turns the character answers, their spacing and cap, and the time limits of one turn."""

from __future__ import annotations

from pydantic import Field

from streamer.config.base import ConfigModel
from streamer.config.chat import ReplyPolicyConfig


class DirectorConfig(ConfigModel):
    policy: ReplyPolicyConfig = Field(default_factory=ReplyPolicyConfig)
    cooldown_s: float = Field(1.0, ge=0, description="quiet seconds after a turn ends before the next starts "
                              "(a moderator's say-now and a co-host's voice do not wait)")
    queue_cap: int = Field(20, ge=1, description="turns waiting; over it the oldest of the least urgent is dropped")
    max_reply_s: float = Field(30.0, gt=0, description="a reply longer than this is cut")
    brain_timeout_s: float = Field(20.0, gt=0, description="a brain silent this long loses its turn (an LLM "
                                   "brain's own first-token deadline, character.openai.*, may allow longer)")
    voice_timeout_s: float = Field(10.0, gt=0, description="a sentence not voiced in this time drops the turn")
