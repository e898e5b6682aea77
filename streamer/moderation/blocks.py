"""Bans and timeouts: what a moderator typed, and which viewers it blocks.

A moderator blocks a target: a viewer's key as the panel lists it ("twitch:1234", "local:ann"), a
"platform:name", or a bare name. A name blocks every viewer who shows that name (compared in look-alike
folded form, so "Ann" also blocks "Аnn" with a Cyrillic А), on every platform for a bare name and on
that platform for "platform:name". A viewer once caught by a name block stays blocked by their key,
so renaming does not lift it. The viewers seen recently are remembered so the moderator is told at once
who a target matches.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from streamer.moderation.text import clean, skeleton

KNOWN_PLATFORMS = frozenset({"twitch", "youtube", "local", "replay", "voice"})


def name_key(name: str) -> str:
    """How names are compared: cleaned, folded, look-alikes and leetspeak mapped, no separators."""
    return "".join(ch for ch in skeleton(clean(name)) if ch.isalnum())


@dataclass(frozen=True)
class Seen:
    """A viewer the moderator saw recently: how they are keyed and the name they showed."""

    key: str
    platform: str
    user_id: str
    name: str  # the name as shown (cleaned, moderated)
    folded: str = ""  # name_key of the cleaned name: what a typed name is compared with

    def describe(self) -> str:
        return f"{self.key} ({self.name})" if self.name and self.key != f"{self.platform}:{self.name}" else self.key


@dataclass
class Block:
    target: str  # what the moderator typed
    until: float  # stream-clock time the block ends (inf for a ban)
    reason: str
    platform: str | None  # None: every platform
    who: str  # the key's id part, or the name, as typed
    keys: set[str] = field(default_factory=set)  # viewers caught by it (blocked by key from then on)
    wanted: str = ""  # name_key(who)

    def __post_init__(self) -> None:
        self.wanted = name_key(self.who)

    def matches(self, seen: Seen) -> bool:
        if seen.key in self.keys or seen.key == self.target:
            return True
        if self.platform is not None and seen.platform != self.platform:
            return False
        if self.who and (seen.user_id == self.who or seen.key == f"{seen.platform}:{self.who}"):
            return True
        return bool(self.wanted) and seen.folded == self.wanted


def parse_target(target: str) -> tuple[str | None, str]:
    """("twitch", "ann") for "twitch:ann"; (None, "ann") for a bare name or an unknown prefix."""
    platform, sep, who = target.partition(":")
    if sep and platform.strip().casefold() in KNOWN_PLATFORMS and who.strip():
        return platform.strip().casefold(), who.strip()
    return None, target.strip()


class Blocks:
    """The blocks in force and the recently seen viewers they are matched against."""

    def __init__(self, remember: int = 20_000) -> None:
        self._blocks: dict[str, Block] = {}
        self._seen: OrderedDict[str, Seen] = OrderedDict()
        self.remember = remember

    def sizes(self) -> dict[str, int]:
        """How many blocks are held and how many viewers are remembered (a soak watches both)."""
        return {"blocks": len(self._blocks), "seen": len(self._seen)}

    def saw(self, seen: Seen) -> None:
        self._seen[seen.key] = seen
        self._seen.move_to_end(seen.key)
        if len(self._seen) > self.remember:
            self._seen.popitem(last=False)

    def add(self, target: str, until: float, reason: str) -> list[Seen]:
        """Block `target` until `until`; returns the recently seen viewers it matches."""
        target = target.strip()
        platform, who = parse_target(target)
        block = Block(target, until, reason, platform, who)
        self._blocks[target] = block
        hits = [s for s in self._seen.values() if block.matches(s)]
        block.keys.update(s.key for s in hits)
        return hits

    def matching(self, target: str) -> list[Seen]:
        """The recently seen viewers a target would block (nothing is changed)."""
        platform, who = parse_target(target.strip())
        probe = Block(target.strip(), 0.0, "", platform, who)
        return [s for s in self._seen.values() if probe.matches(s)]

    def remove(self, target: str) -> bool:
        """Lift the block typed as `target`, or every block that holds a viewer it names."""
        target = target.strip()
        if self._blocks.pop(target, None) is not None:
            return True
        platform, who = parse_target(target)
        probe = Block(target, 0.0, "", platform, who)
        lifted = [t for t, b in self._blocks.items()
                  if target in b.keys or any(probe.matches(s) for s in self._seen.values() if s.key in b.keys)
                  or (probe.wanted and b.wanted == probe.wanted)]
        for t in lifted:
            del self._blocks[t]
        return bool(lifted)

    def find(self, seen: Seen, now: float) -> Block | None:
        """The block in force on this viewer (expired ones are dropped); a match by name is remembered
        by key."""
        for target, block in list(self._blocks.items()):
            if block.until <= now:
                del self._blocks[target]
                continue
            if block.matches(seen):
                block.keys.add(seen.key)
                return block
        return None

    def active(self, now: float) -> dict[str, tuple[float, str]]:
        for target in [t for t, b in self._blocks.items() if b.until <= now]:
            del self._blocks[target]
        return {t: (b.until, b.reason) for t, b in self._blocks.items()}
