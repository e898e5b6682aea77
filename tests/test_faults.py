"""Each injected fault is contained: the frame loop keeps its cadence (at most one late frame), the
turn is dropped with a Health event, and the show recovers. Live mode, real pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest

from streamer.chat.pump import ChatPump
from streamer.config import parse_config
from streamer.events import HealthStatus
from streamer.outputs.sink import PacketSink
from streamer.show import Attachment, Show
from tests.faults import FaultyBrain, FaultyRenderer, FaultySink, FaultyVoice, FlakyChatSource

pytestmark = pytest.mark.integration


def make_show(tmp_path: Path, extra_sinks: Sequence[PacketSink] = (), attachments: Sequence[Attachment] = (),
              **director) -> Show:
    config = parse_config({
        "video": {"width": 128, "height": 96},
        "show": {"mode": "live"},
        "chat": {"sources": []},
        "director": {"cooldown_s": 0, "brain_timeout_s": 0.5, "voice_timeout_s": 2, **director},
        "outputs": {"recording": {"directory": str(tmp_path / "rec"), "segment_minutes": 1}},
        "panel": {"enabled": False},
        "character": {"memory": {"enabled": False}},
    })
    return Show(config, extra_sinks=extra_sinks, attachments=attachments)


def health(show: Show, component: str) -> HealthStatus | None:
    """A component's health as the control surface reports it."""
    h = show.control.status().health.get(component)
    return None if h is None else h.status


def run_with(show: Show, script: Callable[[], Awaitable[None]]) -> None:
    async def main() -> None:
        runner = asyncio.create_task(show.run())
        try:
            await asyncio.wait_for(script(), 60)
        finally:
            show.request_stop()
            assert await asyncio.wait_for(runner, 60) == 0

    asyncio.run(main())


async def wait_until(predicate: Callable[[], bool], limit_s: float = 20) -> None:
    """Await a condition the show reaches by itself (frames advance in real time)."""
    deadline = asyncio.get_running_loop().time() + limit_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def spoken(show: Show, text: str, language: str = "en"):
    turn = show.control.say(text, language)
    return await asyncio.wait_for(asyncio.shield(turn.done), 30)


def chat_turn(show: Show, text: str, user: str = "alex"):
    from streamer.events import ChatMessage

    return show.director.submit_chat(ChatMessage(platform="test", user_name=user, user_id=user, text=text))


@pytest.mark.parametrize("mode", ["raise", "hang"])
def test_brain_fault_drops_the_turn_and_the_next_one_is_answered(tmp_path, mode):
    show = make_show(tmp_path)
    show.director.performer.brain = FaultyBrain(show.director.performer.brain, mode)

    async def script() -> None:
        first = chat_turn(show, "hello there")
        await asyncio.wait_for(asyncio.shield(first.done), 30)
        assert first.status == "failed"
        assert health(show, "brain") == HealthStatus.DEGRADED
        second = chat_turn(show, "hello again", user="sam")
        await asyncio.wait_for(asyncio.shield(second.done), 30)
        assert second.status == "done" and second.played_text
        assert health(show, "brain") == HealthStatus.OK

    run_with(show, script)
    assert show.loop.stats.late_frames <= 1


def test_voice_fault_drops_the_turn_and_recovers(tmp_path):
    show = make_show(tmp_path)
    show.director.performer.voice = FaultyVoice(show.director.performer.voice)

    async def script() -> None:
        assert (await spoken(show, "This first one fails.")).status == "failed"
        assert health(show, "voice") == HealthStatus.DEGRADED
        assert (await spoken(show, "This one is spoken.")).status == "done"
        assert health(show, "voice") == HealthStatus.OK

    run_with(show, script)
    assert show.loop.stats.late_frames <= 1


def test_renderer_fault_repeats_one_frame_and_time_goes_on(tmp_path):
    show = make_show(tmp_path)
    show.loop.renderer = FaultyRenderer(show.loop.renderer, at=20)

    async def script() -> None:
        await wait_until(lambda: show.loop.stats.frames >= 60)

    run_with(show, script)
    assert show.loop.stats.render_errors == 1
    assert show.loop.stats.late_frames <= 1
    assert show.hub.stats().frames_encoded == show.loop.stats.frames


def test_sink_that_raises_is_restarted_with_backoff(tmp_path):
    sink = FaultySink("faulty", raise_at=10)
    show = make_show(tmp_path, extra_sinks=[sink])

    async def script() -> None:
        await wait_until(lambda: sink.starts >= 2 and sink.written > 20)  # restarted and writing again
        await wait_until(lambda: health(show, "sink:faulty") == HealthStatus.OK)

    run_with(show, script)
    assert show.hub.stats().sinks["faulty"].restarts == 1
    assert show.loop.stats.late_frames <= 1


def test_sink_that_blocks_does_not_stall_the_show_or_the_recording(tmp_path):
    sink = FaultySink("stuck", block_at=5)
    show = make_show(tmp_path, extra_sinks=[sink])

    async def script() -> None:
        try:
            await wait_until(lambda: show.loop.stats.frames >= 120)  # 4 s while the sink is stuck
            assert health(show, "sink:stuck") == HealthStatus.DEGRADED
            assert sink.written < 10
        finally:
            sink.release.set()

    run_with(show, script)
    stats = show.hub.stats()
    assert show.loop.stats.late_frames <= 1
    assert stats.frames_encoded == show.loop.stats.frames
    recorder = next(name for name in stats.sinks if name.startswith("file:"))
    assert stats.sinks[recorder].dropped == 0


def test_chat_source_disconnect_is_reconnected(tmp_path):
    source = FlakyChatSource()
    show = make_show(tmp_path, attachments=[ChatPump(source)])

    async def script() -> None:
        await wait_until(lambda: source.connects >= 2 and len(show.control.recent_chat()) >= 2)
        assert health(show, "chat:flaky") == HealthStatus.OK

    run_with(show, script)
    assert [e.message.user_name for e in show.control.recent_chat()][:2] == ["u1", "u2"]
    assert show.loop.stats.late_frames <= 1
