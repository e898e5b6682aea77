"""The turn scheduler's reply rules: sampling, one priority order, one spacing rule, one cap, no viewer
twice in a row, expiry (on a clock the test moves)."""

from __future__ import annotations

import asyncio

import pytest

from streamer.config import ReplyPolicyConfig
from streamer.events import ChatKind, ChatMessage
from streamer.scheduler import TurnScheduler
from streamer.turns import Priority, Turn, TurnStatus

pytestmark = pytest.mark.unit


class Clock:
    """Stream time the test sets; sleeping waits until the test moves it far enough."""

    def __init__(self) -> None:
        self.t = 1000.0
        self._moved = asyncio.Event()

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
        self._moved.set()

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self.t + seconds)

    async def sleep_until(self, t: float) -> None:
        while self.t < t:
            self._moved.clear()
            await self._moved.wait()


def msg(i: int, user: str = "", text: str = "hello", **kw: object) -> ChatMessage:
    return ChatMessage("twitch", user or f"u{i}", text, user_id=user or f"u{i}", message_id=f"m{i}", **kw)


def scheduler(clock: Clock, **kw: object) -> TurnScheduler:
    cooldown = float(kw.pop("cooldown_s", 0.0))  # type: ignore[arg-type]
    cap = int(kw.pop("queue_cap", 20))  # type: ignore[call-overload]
    return TurnScheduler(ReplyPolicyConfig(**kw), "Aiko", clock, cooldown_s=cooldown, queue_cap=cap)


class Offers:
    """Offers messages and remembers which turn answers which message id."""

    def __init__(self, s: TurnScheduler) -> None:
        self.s = s
        self.ids: dict[str, str] = {}

    def __call__(self, message: ChatMessage) -> bool:
        offer = self.s.offer(message)
        if offer.turn is not None:
            self.ids[offer.turn.id] = message.message_id
        return offer.accepted

    def take(self) -> str | None:
        turn = self.s.take()
        return None if turn is None else self.ids[turn.id]

    def waiting(self) -> list[str]:
        return [self.ids[t.id] for t in self.s.queued]


def test_answers_one_in_n_but_never_samples_out_paid_mods_or_mentions() -> None:
    async def main() -> None:
        s = scheduler(Clock(), answer_one_in=3, queue_cap=100)
        offer = Offers(s)
        regular = [offer(msg(i)) for i in range(9)]
        assert regular == [False, False, True] * 3
        assert offer(msg(20, amount=5.0, currency="USD"))
        assert offer(msg(21, roles=frozenset({"mod"})))
        assert offer(msg(22, text="hey aiko!"))
        assert offer(msg(23, kind=ChatKind.RAID, text="pal is raiding"))
        assert s.sampled_out == 6

    asyncio.run(main())


def test_priority_order_and_cooldown_after_each_turn() -> None:
    async def main() -> None:
        clock = Clock()
        s = scheduler(clock, cooldown_s=5.0)
        offer = Offers(s)
        offer(msg(1))
        offer(msg(2, text="Aiko, hi"))
        offer(msg(3, roles=frozenset({"mod"})))
        offer(msg(4, amount=100.0, currency="BITS"))
        assert offer.take() == "m4"
        s.ended()  # the paid reply has played: five quiet seconds before the next one
        assert offer.take() is None
        clock.advance(4.9)
        assert offer.take() is None
        say = s.submit(s.new_turn(Priority.SAY, "moderator says hi", "en", "moderator", verbatim=True))
        assert s.take() is say  # say-now is exempt from the spacing rule
        s.ended()
        clock.advance(5)
        assert offer.take() == "m3"
        s.ended()
        clock.advance(5)
        assert offer.take() == "m2"
        s.ended()
        clock.advance(5)
        assert offer.take() == "m1"

    asyncio.run(main())


def test_queue_cap_drops_the_oldest_least_urgent() -> None:
    async def main() -> None:
        s = scheduler(Clock(), queue_cap=3)
        offer = Offers(s)
        offer(msg(1))
        offer(msg(2, amount=1.0, currency="USD"))
        offer(msg(3))
        offer(msg(4))
        assert offer.waiting() == ["m2", "m3", "m4"] and s.dropped == 1

    asyncio.run(main())


def test_no_two_replies_in_a_row_to_the_same_viewer_unless_paid() -> None:
    async def main() -> None:
        s = scheduler(Clock())
        offer = Offers(s)
        offer(msg(1, user="ann"))
        offer(msg(2, user="ann"))
        offer(msg(3, user="bob"))
        assert [offer.take() for _ in range(2)] == ["m1", "m3"]
        assert offer.take() == "m2"  # bob was last, ann may go again
        offer(msg(4, user="ann"))
        assert offer.take() is None
        offer(msg(5, user="ann", amount=2.0, currency="EUR"))
        assert offer.take() == "m5"

    asyncio.run(main())


def test_unsupported_language_is_answered_in_the_default_and_stale_messages_expire() -> None:
    async def main() -> None:
        clock = Clock()
        s = scheduler(clock, max_wait_s=10)
        s.offer(msg(1, language="es"))
        turn = s.take()
        assert turn is not None and turn.prompt.language == "en"
        late = s.offer(msg(2, user="z", language="ja")).turn
        clock.advance(11)
        assert s.take() is None and s.expired == 1
        assert late is not None and late.status == TurnStatus.SKIPPED and late.done.done()

    asyncio.run(main())


def test_next_waits_out_the_cooldown_and_wakes_at_once_for_a_say_now() -> None:
    async def main() -> tuple[Turn, Turn, float]:
        clock = Clock()
        s = scheduler(clock, cooldown_s=5.0)
        s.offer(msg(1))
        first = await asyncio.wait_for(s.next(), 5)
        s.ended()
        s.offer(msg(2))
        waiting = asyncio.create_task(s.next())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # chat waits for the cooldown ...
        say = s.submit(s.new_turn(Priority.SAY, "now!", "en", "moderator", verbatim=True))
        second = await asyncio.wait_for(waiting, 5)  # ... a say-now does not
        assert second is say
        third = asyncio.create_task(s.next())
        await asyncio.sleep(0.05)
        assert not third.done()
        clock.advance(5)
        chat = await asyncio.wait_for(third, 5)
        return first, chat, clock.t

    first, chat, _ = asyncio.run(main())
    assert first.prompt.user_name == "u1" and chat.prompt.user_name == "u2"
