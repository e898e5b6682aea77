"""ReplyPolicy: sampling, priorities, spacing, queue cap, no viewer twice in a row (virtual clock)."""

from __future__ import annotations

import asyncio

import pytest

from streamer.chat.policy import ReplyPolicy
from streamer.config import ReplyPolicyConfig
from streamer.events import ChatKind, ChatMessage

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def msg(i: int, user: str = "", text: str = "hello", **kw: object) -> ChatMessage:
    return ChatMessage("twitch", user or f"u{i}", text, user_id=user or f"u{i}", message_id=f"m{i}", **kw)


def policy(clock: Clock, **kw: object) -> ReplyPolicy:
    return ReplyPolicy(ReplyPolicyConfig(**({"min_interval_s": 0.0} | kw)), "Aiko", clock=clock)


def test_answers_one_in_n_but_never_samples_out_paid_mods_or_mentions() -> None:
    p = policy(Clock(), answer_one_in=3, queue_cap=100)
    regular = [p.offer(msg(i)).accepted for i in range(9)]
    assert regular == [False, False, True] * 3
    assert p.offer(msg(20, amount=5.0, currency="USD")).accepted
    assert p.offer(msg(21, roles=frozenset({"mod"}))).accepted
    assert p.offer(msg(22, text="hey aiko!")).accepted
    assert p.offer(msg(23, kind=ChatKind.RAID, text="pal is raiding")).accepted
    assert p.sampled_out == 6


def test_priority_order_and_min_interval() -> None:
    clock = Clock()
    p = policy(clock, min_interval_s=5.0)
    p.offer(msg(1))
    p.offer(msg(2, text="Aiko, hi"))
    p.offer(msg(3, roles=frozenset({"mod"})))
    p.offer(msg(4, amount=100.0, currency="BITS"))
    assert p.take().message_id == "m4"  # type: ignore[union-attr]
    assert p.take() is None and p.seconds_until_ready() == 5.0
    clock.t += 5
    assert p.take().message_id == "m3"  # type: ignore[union-attr]
    clock.t += 5
    assert p.take().message_id == "m2"  # type: ignore[union-attr]
    clock.t += 5
    assert p.take().message_id == "m1"  # type: ignore[union-attr]


def test_queue_cap_drops_the_oldest_least_urgent() -> None:
    p = policy(Clock(), queue_cap=3)
    p.offer(msg(1))
    p.offer(msg(2, amount=1.0, currency="USD"))
    p.offer(msg(3))
    p.offer(msg(4))
    assert [m.message_id for m in p.waiting] == ["m2", "m3", "m4"] and p.evicted == 1


def test_no_two_replies_in_a_row_to_the_same_viewer_unless_paid() -> None:
    p = policy(Clock())
    p.offer(msg(1, user="ann"))
    p.offer(msg(2, user="ann"))
    p.offer(msg(3, user="bob"))
    assert [p.take().message_id for _ in range(2)] == ["m1", "m3"]  # type: ignore[union-attr]
    assert p.take().message_id == "m2"  # type: ignore[union-attr]  (bob was last, ann may go again)
    p.offer(msg(4, user="ann"))
    assert p.take() is None and p.seconds_until_ready() is None
    p.offer(msg(5, user="ann", amount=2.0, currency="EUR"))
    assert p.take().message_id == "m5"  # type: ignore[union-attr]


def test_unsupported_language_is_answered_in_the_default_and_stale_messages_expire() -> None:
    clock = Clock()
    p = policy(clock, max_wait_s=10)
    p.offer(msg(1, language="es"))
    assert p.take().language == "en"  # type: ignore[union-attr]
    p.offer(msg(2, user="z", language="ja"))
    clock.t += 11
    assert p.take() is None and p.expired == 1


def test_feed_submits_one_at_a_time_waiting_for_each_turn_to_end() -> None:
    async def main() -> list[str]:
        p = ReplyPolicy(ReplyPolicyConfig(min_interval_s=0), "Aiko")
        submitted: list[str] = []
        futures: list[asyncio.Future[None]] = []
        changed = asyncio.Event()

        class FakeTurn:
            def __init__(self) -> None:
                self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def submit(m: ChatMessage) -> FakeTurn:
            submitted.append(m.message_id)
            changed.set()
            turn = FakeTurn()
            futures.append(turn.done)
            return turn

        task = asyncio.create_task(p.feed(submit))
        for i in range(3):
            p.offer(msg(i))
        await asyncio.wait_for(changed.wait(), 5)
        changed.clear()
        # the first turn has not ended: more offers must not start another one
        p.offer(msg(9, user="zed", amount=1.0, currency="USD"))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(changed.wait(), 0.2)
        first_batch = list(submitted)
        futures[0].set_result(None)
        await asyncio.wait_for(changed.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return first_batch + ["|"] + submitted

    assert asyncio.run(main()) == ["m0", "|", "m0", "m9"]  # then the paid one goes first
