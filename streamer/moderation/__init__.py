"""Moderation: clean every text, then run the rules that protect the stream — on chat input, viewers'
names, a co-host's words and the brain's output. `text` cleans and folds, `words` matches banned words,
`blocks` holds bans and timeouts, `moderator` runs the rules."""

from streamer.moderation.moderator import NAME_LIMIT, NAME_PLACEHOLDER, DecisionRecord, Moderator
from streamer.moderation.text import clean_text, match_form, skeleton

__all__ = ["NAME_LIMIT", "NAME_PLACEHOLDER", "DecisionRecord", "Moderator", "clean_text", "match_form", "skeleton"]
