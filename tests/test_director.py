"""The director against the real scripted brain, real espeak voice and the real timeline; a test
thread plays the role of the frame loop by pulling frames."""

import asyncio

import pytest

from engine.brain.scripted import ScriptedBrain
from engine.clock import TimeBase
from engine.timeline import Timeline
from engine.voice.espeak import EspeakVoice
from streamer.director import build_director
from streamer.events import ChatMessage
from streamer.moderation import Moderator
from streamer.turns import Priority
from tests.faults import CancelSwallowingBrain

pytestmark = pytest.mark.unit
TB = TimeBase(30, 48000)
VOICE = EspeakVoice(sample_rate=48000)


def make_director(**kw):
    return build_director(Timeline(TB), ScriptedBrain("Aiko"), VOICE, Moderator(300, ["badword"]), "Aiko", **kw)


class Puller:
    """Pulls frames from the timeline at a chosen pace (stands in for the frame loop)."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.n = 0
        self.frames = []

    async def run(self, frames_per_tick: int = 3) -> None:
        while True:
            for _ in range(frames_per_tick):
                self.frames.append(self.timeline.pull(self.n))
                self.n += 1
            await asyncio.sleep(0.001)


def chat(text: str, user: str = "alex", **kw) -> ChatMessage:
    return ChatMessage(platform="test", user_name=user, text=text, **kw)


async def _wait(turn):
    return await asyncio.wait_for(asyncio.shield(turn.done), 20)


def test_chat_turn_is_spoken_and_remembered():
    async def main():
        d = make_director(cooldown_s=0)
        puller = Puller(d.timeline)
        tasks = [asyncio.create_task(d.run()), asyncio.create_task(puller.run())]
        turn = d.submit_chat(chat("hello there", language="en"))
        await _wait(turn)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return d, turn, puller

    d, turn, puller = asyncio.run(main())
    assert turn.status == "done"
    assert "Welcome" in turn.played_text or "great to see you" in turn.played_text
    assert "[joy]" not in turn.played_text  # tags are cues, never spoken
    assert any(f.speaking for f in puller.frames)
    assert max(f.emotions[0] for f in puller.frames) > 0.5  # the [joy] tag became a cue
    assert [h.role for h in d.history] == ["viewer", "character"]


def test_interrupt_cuts_within_a_frame_and_history_keeps_heard_words():
    async def main():
        d = make_director(cooldown_s=0)
        puller = Puller(d.timeline)
        turn = d.say("One two three four five six seven eight nine ten eleven twelve.", "en")
        runner = asyncio.create_task(d.run())
        await asyncio.wait_for(turn.speaking.wait(), 20)
        for _ in range(30):  # one second of the sentence plays
            puller.frames.append(d.timeline.pull(puller.n))
            puller.n += 1
        results = d.interrupt()
        cut_frame = puller.n
        await _wait(turn)
        for _ in range(10):
            puller.frames.append(d.timeline.pull(puller.n))
            puller.n += 1
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        return d, turn, results, cut_frame, puller

    d, turn, results, cut_frame, puller = asyncio.run(main())
    assert turn.status == "interrupted"
    assert results and results[0].end_sample == cut_frame * TB.samples_per_frame
    heard = turn.played_text.split()
    assert 0 < len(heard) < 12 and heard == "One two three four five six seven eight nine ten".split()[: len(heard)]
    assert d.history[-1].text == turn.played_text
    assert all(not f.speaking for f in puller.frames[cut_frame + 1 :])
    assert puller.frames[cut_frame + 2].visemes[0] == pytest.approx(1.0)


def test_priority_order_and_queue_cap():
    async def main():
        d = make_director(cooldown_s=0, queue_cap=3)
        d.pause()
        a = d.submit_chat(chat("first", "u1"))
        b = d.submit_chat(chat("hey Aiko", "u2"))  # mention
        c = d.submit_chat(chat("paid", "u3", amount=5.0, currency="USD"))
        e = d.submit_chat(chat("fourth", "u4"))  # over the cap: the oldest plain chat goes
        s = d.say("moderator says hi", "en")
        return d, a, b, c, e, s

    d, a, b, c, _e, s = asyncio.run(main())
    order = [t.id for t in d.queued]
    assert order[0] == s.id and s.priority == Priority.SAY
    assert order[1:3] == [c.id, b.id]
    assert a.status == "skipped"
    assert d.dropped >= 1


def test_banned_output_is_not_spoken():
    async def main():
        d = make_director(cooldown_s=0)
        puller = Puller(d.timeline)
        tasks = [asyncio.create_task(d.run()), asyncio.create_task(puller.run())]
        turn = d.say("This has a badword in it. This sentence is fine.", "en")
        await _wait(turn)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return turn

    turn = asyncio.run(main())
    assert turn.played_text == "This sentence is fine."


def test_pause_holds_turns_and_resume_releases_them():
    async def main():
        d = make_director(cooldown_s=0)
        puller = Puller(d.timeline)
        tasks = [asyncio.create_task(d.run()), asyncio.create_task(puller.run())]
        d.pause()
        turn = d.submit_chat(chat("hello"))
        for _ in range(200):  # plenty of loop turns in which an unpaused director would start it
            await asyncio.sleep(0)
        status_while_paused = turn.status
        d.resume()
        await _wait(turn)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return status_while_paused, turn

    status, turn = asyncio.run(main())
    assert status == "queued" and turn.status == "done"


class GatedBrain:
    """The real scripted brain, but each piece waits for the test to open the gate (one put per piece)."""

    def __init__(self, real: ScriptedBrain) -> None:
        self.real = real
        self.gate: asyncio.Queue[None] = asyncio.Queue()
        self.waiting = asyncio.Event()
        self.closed = False

    async def reply(self, prompt, history):
        try:
            async for piece in self.real.reply(prompt, history):
                self.waiting.set()
                await self.gate.get()
                yield piece
        finally:
            self.closed = True


def test_interrupt_in_the_same_tick_as_the_next_piece_still_ends_the_turn():
    """Python 3.11's `asyncio.wait_for` returns the inner result and drops a cancel that lands in the
    tick the inner await completes; the director must not lose an interrupt that way."""

    async def main():
        brain = GatedBrain(ScriptedBrain("Aiko"))
        d = build_director(Timeline(TB), brain, VOICE, Moderator(300, []), "Aiko", cooldown_s=0)
        runner = asyncio.create_task(d.run())
        turn = d.submit_chat(chat("hello there", language="en"))
        await asyncio.wait_for(brain.waiting.wait(), 20)  # the turn awaits the brain's first piece
        brain.waiting.clear()
        brain.gate.put_nowait(None)  # the piece arrives ...
        d.interrupt()  # ... and the moderator interrupts, in the same tick
        done = await asyncio.wait_for(asyncio.shield(turn.done), 20)
        for _ in range(100):
            brain.gate.put_nowait(None)  # a turn that lived on would now speak the whole reply
        queued = d.submit_chat(chat("still there?", language="en"))
        await asyncio.wait_for(brain.waiting.wait(), 20)  # the next turn reached the brain: the loop is free
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        return done, queued, brain

    done, queued, brain = asyncio.run(main())
    assert done.status == "interrupted" and queued is not None
    assert done.scheduled == [] and done.played_text == ""
    assert brain.closed


def test_interrupt_holds_even_when_the_brain_swallows_the_cancel():
    """The brain's generator runs in the turn's own task, so a library that eats CancelledError eats
    the interrupt's cancel too; the turn must still put nothing more on air."""

    async def main():
        brain = CancelSwallowingBrain(ScriptedBrain("Aiko"))
        d = build_director(Timeline(TB), brain, VOICE, Moderator(300, []), "Aiko", cooldown_s=0)
        runner = asyncio.create_task(d.run())
        turn = d.submit_chat(chat("hello there", language="en"))
        await asyncio.wait_for(brain.started.wait(), 20)
        d.interrupt()
        done = await asyncio.wait_for(asyncio.shield(turn.done), 20)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        return d, done, brain

    d, done, brain = asyncio.run(main())
    assert brain.swallowed == 1  # the cancel really was lost inside the brain
    assert done.status == "interrupted" and done.scheduled == [] and done.played_text == ""
    assert not any(d.timeline.pull(n).speaking for n in range(300))  # nothing was put on air after it
