"""`stagecast render` and the live show perform turns through the same performer: fed the same turns at
the same frames, an offline render and a virtual live show put the same words at the same samples."""

from __future__ import annotations

import asyncio
import hashlib
import threading

import numpy as np
import pytest
import torch

from engine.timeline import FrameInputs
from streamer.config import parse_config
from streamer.render_script import ScriptLine, render_script
from streamer.show import Show
from streamer.turns import Priority, Turn

pytestmark = pytest.mark.integration

SCRIPT = [
    ScriptLine(t=0.5, say="Hello there, chat! Welcome to the stream.", lang="en"),
    ScriptLine(t=5.0, user="alex", text="hello!"),
    ScriptLine(t=9.0, say="こんにちは、みなさん。", lang="ja"),
    ScriptLine(t=12.0, user="小明", text="你好！"),
]


def config():
    return parse_config({
        "video": {"width": 160, "height": 120}, "show": {"mode": "virtual", "seed": 5},
        "chat": {"sources": []}, "panel": {"enabled": False}, "outputs": {"recording": {"enabled": False}},
        "character": {"memory": {"enabled": False}}, "director": {"cooldown_s": 1.0},
    })


class Recorder:
    """Every frame: its audio, the word being heard and the animator's state (what the picture is drawn from)."""

    def __init__(self) -> None:
        self.frames: dict[int, tuple[bytes, str | None, bytes]] = {}

    def __call__(self, n: int, inputs: FrameInputs, state: torch.Tensor) -> None:
        word = inputs.word.text if inputs.word is not None else None
        self.frames[n] = (hashlib.sha256(inputs.audio.tobytes()).digest(), word, state.numpy().tobytes())


def live_show(frames: int) -> Recorder:
    """A virtual live show whose frame loop waits at each line's frame until the director has put the
    turn on the timeline, as the offline render waits for its performer."""
    cfg = config()
    cfg.show.duration_s = frames / cfg.video.fps
    show = Show(cfg)
    recorder = Recorder()
    show.loop.observers = (*show.loop.observers, recorder)
    due = {show.timebase.frame_at_seconds(line.t): line for line in SCRIPT}
    loop: asyncio.AbstractEventLoop | None = None
    errors: list[BaseException] = []

    def submit(line: ScriptLine) -> Turn:
        if line.say is not None:
            return show.control.say(line.say, line.lang)
        assert line.text is not None
        return show.control.submit_turn(line.text, line.user, Priority.CHAT, line.lang)

    def before_frame(n: int) -> None:
        line = due.get(n)
        if line is None or loop is None:
            return
        composed = threading.Event()

        async def perform() -> None:
            try:
                turn = submit(line)
                await asyncio.wait_for(turn.composed.wait(), 30)
            except BaseException as exc:
                errors.append(exc)
            finally:
                composed.set()

        asyncio.run_coroutine_threadsafe(perform(), loop)
        assert composed.wait(60), "the director never composed the turn"

    show.loop.before_frame = before_frame

    async def main() -> int:
        nonlocal loop
        loop = asyncio.get_running_loop()
        return await show.run()

    assert asyncio.run(main()) == 0
    assert not errors, errors
    assert show.loop.error is None
    return recorder


def test_render_and_live_show_put_the_same_words_at_the_same_samples():
    rendered = Recorder()
    result = render_script(config(), SCRIPT, None, observers=[rendered])
    live = live_show(result.frames)
    assert sorted(live.frames) == sorted(rendered.frames) == list(range(result.frames))
    words = [rendered.frames[n][1] for n in range(result.frames)]
    assert sum(w is not None for w in words) > 3 * 30  # seconds of speech in four turns, in three languages
    silent = hashlib.sha256(np.zeros(1600, np.float32).tobytes()).digest()
    assert sum(rendered.frames[n][0] != silent for n in range(result.frames)) > 3 * 30
    for n in range(result.frames):
        assert live.frames[n][1] == rendered.frames[n][1], f"frame {n}: word {live.frames[n][1]!r} vs {words[n]!r}"
        assert live.frames[n][0] == rendered.frames[n][0], f"frame {n}: audio differs"
        assert live.frames[n][2] == rendered.frames[n][2], f"frame {n}: animator state differs"
