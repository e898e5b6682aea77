"""Listening and thinking: listener cues on the timeline, and the animator's state trace they give.

A scripted co-host talks for 9 s (loud and quiet half-seconds, one pause in each 3 s), stops and
asks for a thinking reaction; the reply's speech comes 1.5 s later. Every check compares against
the same frames animated without cues, which the animator's purity makes exact.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.animator import Animator
from engine.clock import TimeBase
from engine.listen_pose import ListenPose
from engine.listening import LISTEN_IDLE, ListenCue, ListenTrack
from engine.state import IDX, VISEMES
from engine.timeline import FrameInputs, Timeline
from engine.voice.base import Speech
from tests.helpers import tone_speech

pytestmark = pytest.mark.unit

TB = TimeBase(30, 48000)
FPS = TB.fps
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

START, STOP, REPLY, END = 30, 300, 345, 420  # the co-host talks over [START, STOP); the reply at REPLY
PAUSES = (75, 165, 255)  # one pause in each 3 s window of their speech
WINDOWS = [(a, a + 3 * FPS) for a in range(START, STOP, 3 * FPS)]
LOUD, QUIET = 0.9, 0.1

IDLE_PITCH_SWAY = 0.06  # Animator.head: the silent head's pitch sway amplitude
NOD_MIN = 0.15  # a nod dips the head more than the idle sway's whole range (2 x 0.06) below idle
BROW_STEP_MAX = 0.1  # per frame; an unsmoothed LOUD<->QUIET step would move the brows 0.4 at once
THINK_DISTANCE = 0.5  # beyond any idle saccade's vertical reach (0.4) and 5x the idle roll sway (0.1)
POSE_FIELDS = ("gaze_x", "gaze_y", "brow_l", "brow_r", "head_yaw", "head_pitch", "head_roll")

Cues = dict[int, list[ListenCue]]


def level(n: int) -> float:
    """The co-host's loudness: loud and quiet half-seconds."""
    return LOUD if (n - START) // (FPS // 2) % 2 == 0 else QUIET


def session(think: bool = True) -> Cues:
    """The listener's cues: a start, a loudness every 3 frames, the pauses, then stop (and think)."""
    cues: Cues = {START: [ListenCue.started(level(START))]}
    for n in range(START + 3, STOP, 3):
        cues.setdefault(n, []).append(ListenCue.level(level(n)))
    for n in PAUSES:
        cues.setdefault(n, []).append(ListenCue.paused())
    cues.setdefault(STOP, []).append(ListenCue.stopped(think=think))
    return cues


def perform(
    cues: Cues, speech: dict[int, Speech] | None = None, end: int = END, animator: Animator | None = None
) -> tuple[list[FrameInputs], torch.Tensor]:
    """Pull and animate frames 0..end, sending each frame's cues (and speech) just before it is pulled."""
    tl, anim = Timeline(TB), animator or Animator(FPS)
    inputs, states = [], []
    for n in range(end):
        for cue in cues.get(n, []):
            assert tl.listen(cue) == n
        if speech and n in speech:
            tl.schedule(speech[n], at_frame=n)
        inputs.append(tl.pull(n))
        states.append(anim.state(inputs[-1]))
    return inputs, torch.stack(states)


def reply() -> dict[int, Speech]:
    return {REPLY: tone_speech(["well", "I", "think", "so"])}


def field(states: torch.Tensor, name: str) -> torch.Tensor:
    return states[:, IDX[name]]


@pytest.fixture(scope="module")
def show() -> tuple[list[FrameInputs], torch.Tensor, torch.Tensor]:
    """The scripted session, and the same frames with the reply but no listener cues."""
    inputs, states = perform(session(), reply())
    _, idle = perform({}, reply())
    return inputs, states, idle


def listening_frames(inputs: list[FrameInputs]) -> list[int]:
    return [f.n for f in inputs if f.listen.active and not f.speaking]


# -- the cue and the per-frame view --------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"loudness": 1.5}, {"loudness": -0.1}, {"loudness": float("nan")}, {"active": True, "thinking": True}],
)
def test_cue_rejects_what_cannot_be_meant(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ListenCue(**kwargs)  # type: ignore[arg-type]


def test_listen_frame_fields_follow_the_cues(show: tuple[list[FrameInputs], torch.Tensor, torch.Tensor]) -> None:
    inputs, _, _ = show
    assert all(f.listen is LISTEN_IDLE for f in inputs[:START])  # no cue yet: the shared idle view
    assert [f.n for f in inputs if f.listen.active] == list(range(START, STOP))
    assert all(inputs[p].listen.frames_since_pause == 0 for p in PAUSES)
    assert inputs[PAUSES[0] + 7].listen.frames_since_pause == 7
    thinking = [f.n for f in inputs if f.listen.thinking]
    assert thinking == list(range(STOP, REPLY))  # ends by itself at the reply's first audible frame
    assert inputs[STOP + 2].listen.frames_since_thinking == 2
    assert all(0.0 <= f.listen.loudness <= 1.0 for f in inputs)
    assert inputs[STOP + 10].listen.loudness == 0.0  # eased back to silence after they stopped


def test_cues_for_the_past_act_at_the_next_frame() -> None:
    tl = Timeline(TB)
    for n in range(10):
        tl.pull(n)
    assert tl.listen(ListenCue.started(), at_frame=3) == 10
    assert tl.listen(ListenCue.paused(), at_frame=12) == 12
    assert tl.pull(10).listen.active and tl.pull(11).listen.frames_since_pause is None
    assert tl.pull(12).listen.frames_since_pause == 0


def test_track_memory_is_bounded() -> None:
    """Cues fold into one small state when due; only future cues and the smoothing window are kept."""
    track = ListenTrack(smooth_frames=6)
    for i in range(100_000):
        track.add(ListenCue.level((i % 10) / 10), frame=5, due=5)
    assert track.pending == 0
    track.add(ListenCue.paused(), frame=9, due=5)
    assert track.pending == 1
    for n in range(5, 9):
        assert track.frame(n, None).frames_since_pause is None
    assert track.frame(9, None).frames_since_pause == 0 and track.pending == 0


# -- the animator's performance ------------------------------------------------------------------


def test_mouth_closed_and_gaze_on_the_camera_while_listening(
    show: tuple[list[FrameInputs], torch.Tensor, torch.Tensor],
) -> None:
    inputs, states, idle = show
    frames = listening_frames(inputs)
    assert len(frames) == STOP - START
    mouth = states[frames, IDX["mouth_closed"] : IDX["mouth_closed"] + len(VISEMES)]
    assert torch.equal(mouth, torch.tensor([[1.0] + [0.0] * (len(VISEMES) - 1)]).expand_as(mouth))
    assert torch.equal(states[frames][:, [IDX["gaze_x"], IDX["gaze_y"]]], torch.zeros(len(frames), 2))
    assert field(idle, "gaze_x")[frames].abs().max() > 0.2  # where idle saccades would have looked away
    for kept in ("eye_open_l", "eye_open_r", "breath"):  # blinks and breath go on
        assert torch.equal(field(states, kept)[frames], field(idle, kept)[frames])
    assert field(states, "eye_open_l")[frames].min() < 0.5  # at least one blink while listening


def test_a_configured_side_holds_the_gaze_there() -> None:
    animator = Animator(FPS, listen_pose=ListenPose(gaze=(0.6, -0.1)))
    inputs, states = perform(session(think=False), end=STOP, animator=animator)
    frames = listening_frames(inputs)
    assert torch.allclose(states[frames][:, [IDX["gaze_x"], IDX["gaze_y"]]], torch.tensor([0.6, -0.1]))


def test_a_nod_at_each_pause(show: tuple[list[FrameInputs], torch.Tensor, torch.Tensor]) -> None:
    """Per 3 s of their speech (each with a pause): a dip of head_pitch beyond NOD_MIN below idle,
    which lasts about half a second and leaves the head exactly idle after it."""
    _, states, idle = show
    dip = field(states, "head_pitch") - field(idle, "head_pitch")
    assert NOD_MIN > 2 * IDLE_PITCH_SWAY
    for (a, b), pause in zip(WINDOWS, PAUSES, strict=True):
        assert dip[a:b].min() < -NOD_MIN, f"no nod in frames {a}..{b}"
        moving = (dip[a:b] != 0).nonzero().flatten() + a
        assert moving.min() == pause and moving.max() - pause + 1 <= round(0.6 * FPS)
    assert torch.equal(dip[: PAUSES[0]], torch.zeros(PAUSES[0]))


def test_brows_follow_loudness_smoothly(show: tuple[list[FrameInputs], torch.Tensor, torch.Tensor]) -> None:
    inputs, states, _ = show
    frames = listening_frames(inputs)
    loud = [n for n in frames if inputs[n].listen.loudness >= 0.8]
    quiet = [n for n in frames if inputs[n].listen.loudness <= 0.2]
    assert len(loud) > 30 and len(quiet) > 30
    brows = (field(states, "brow_l") + field(states, "brow_r")) / 2
    assert brows[loud].mean() > brows[quiet].mean() + 0.25
    assert brows[frames].diff().abs().max() <= BROW_STEP_MAX


def test_thinking_is_visible_within_three_frames_and_holds(
    show: tuple[list[FrameInputs], torch.Tensor, torch.Tensor],
) -> None:
    _, states, idle = show
    pose = [IDX[name] for name in POSE_FIELDS]
    for n in range(STOP + 2, REPLY):
        assert torch.dist(states[n, pose], idle[n, pose]) > THINK_DISTANCE, f"frame {n}"
        assert abs(states[n, IDX["brow_l"]] - states[n, IDX["brow_r"]]) > 0.4  # one brow raised
        assert states[n, IDX["gaze_y"]] > 0.45  # looking up, higher than any idle saccade
        assert abs(states[n, IDX["head_roll"]] - idle[n, IDX["head_roll"]]) > 0.15  # a tilt
    mouth = states[STOP:REPLY, IDX["mouth_closed"]]
    assert torch.equal(mouth, torch.ones_like(mouth))
    assert torch.equal(field(states, "eye_open_l")[STOP:REPLY], field(idle, "eye_open_l")[STOP:REPLY])


def test_speech_wins_once_the_reply_is_audible(show: tuple[list[FrameInputs], torch.Tensor, torch.Tensor]) -> None:
    inputs, states, idle = show
    assert inputs[REPLY].speaking and not inputs[REPLY].listen.thinking
    assert torch.equal(states[REPLY:], idle[REPLY:])  # the reply looks exactly as it would without cues


def test_speech_already_playing_does_not_end_thinking() -> None:
    """Thinking asked for while the character still talks shows once it stops, until the reply."""
    speech = {0: tone_speech(["still", "talking"])}
    end_of_talk = TB.frames_for_samples(speech[0].samples)
    inputs, states = perform({10: [ListenCue.think()]}, speech | {60: tone_speech(["reply"])}, end=80)
    assert all(f.speaking for f in inputs[10:end_of_talk])
    assert [f.n for f in inputs if f.listen.thinking] == list(range(10, 60))
    _, plain = perform({}, speech | {60: tone_speech(["reply"])}, end=80)
    assert torch.equal(states[:end_of_talk], plain[:end_of_talk])  # speech wins while it plays
    assert states[end_of_talk + 2, IDX["gaze_y"]] > 0.45


def test_an_explicit_stop_ends_thinking_and_leaves_no_trace() -> None:
    _, states = perform({40: [ListenCue.think()], 70: [ListenCue.stop_thinking()]}, end=120)
    _, idle = perform({}, end=120)
    assert not torch.equal(states[40:70], idle[40:70])
    assert torch.equal(states[:40], idle[:40]) and torch.equal(states[70:], idle[70:])


def test_a_finished_session_leaves_the_idle_animation_byte_identical() -> None:
    _, states = perform(session(think=False), end=END)
    _, idle = perform({}, end=END)
    settled = STOP + 30  # loudness eased out, the last nod long done
    assert torch.equal(states[:START], idle[:START]) and torch.equal(states[settled:], idle[settled:])


def test_the_same_cue_schedule_gives_the_same_performance() -> None:
    _, first = perform(session(), reply())
    _, second = perform(session(), reply())
    assert torch.equal(first, second)


def test_cues_from_another_thread_while_pulling() -> None:
    tl, anim = Timeline(TB), Animator(FPS)
    stop, errors = threading.Event(), []
    sent = [0]

    def listener() -> None:
        rng = random.Random(3)
        kinds = [ListenCue.started, ListenCue.stopped, ListenCue.paused, ListenCue.think, ListenCue.stop_thinking]
        try:
            while not stop.is_set():
                cue = ListenCue.level(rng.random()) if rng.random() < 0.7 else rng.choice(kinds)()
                tl.listen(cue, at_frame=tl.next_frame + rng.randrange(3))
                sent[0] += 1
                time.sleep(0)  # let the frame thread have the interpreter too
        except Exception as e:  # reported below
            errors.append(e)

    thread = threading.Thread(target=listener, daemon=True)
    thread.start()
    while not sent[0] and thread.is_alive():
        threading.Event().wait(0.001)
    try:
        for n in range(300):
            frame = tl.pull(n)
            state = anim.state(frame)
            assert 0.0 <= frame.listen.loudness <= 1.0 and torch.isfinite(state).all()
    finally:
        stop.set()
        thread.join(5)
    assert not errors and sent[0] > 0
    for n in range(300, 303):  # the latest cues were for at most two frames ahead
        tl.pull(n)
    assert tl._listen.pending == 0  # every cue folded once due: nothing piles up


# -- for people to look at -----------------------------------------------------------------------


def poses(states: torch.Tensor) -> list[list[torch.Tensor]]:
    """Row 1, listening: idle, quiet, loud, the nod going down, at its bottom, back up.
    Row 2, thinking: idle, the cue's frame and the next two, the hold, the reply's first frame."""
    loud = next(n for n in range(START + 20, STOP) if level(n) == LOUD and level(n - 8) == LOUD)
    quiet = next(n for n in range(START + 20, STOP) if level(n) == QUIET and level(n - 8) == QUIET)
    p = PAUSES[1]
    return [
        [states[n] for n in (START - 1, quiet, loud, p + 2, p + 6, p + 12)],
        [states[n] for n in (STOP - 1, STOP, STOP + 1, STOP + 2, REPLY - 1, REPLY)],
    ]


@pytest.mark.parametrize("appearance", ["procedural", "sprites"])
def test_listening_sheet(appearance: str, show: tuple[list[FrameInputs], torch.Tensor, torch.Tensor]) -> None:
    """Listening and thinking poses as animated, one PNG per appearance (tests/artifacts)."""
    from engine.render.procedural.renderer import ProceduralRenderer
    from engine.render.sprites.renderer import SpritesRenderer
    from tests.render_support import sheet

    size = 192
    renderer = (
        ProceduralRenderer(size, size)
        if appearance == "procedural"
        else SpritesRenderer(size, size, Path(__file__).resolve().parent.parent / "configs/characters/sprite-demo")
    )
    image = sheet(renderer.render, poses(show[1]))
    ARTIFACTS.mkdir(exist_ok=True)
    Image.fromarray(image.numpy()).save(ARTIFACTS / f"listening_sheet_{appearance}.png")
    assert image.shape == (2 * size, 6 * size, 3)
    cells = image.view(2, size, 6, size, 3).permute(0, 2, 1, 3, 4).reshape(12, -1)
    assert not torch.equal(cells[7], cells[6]) and not torch.equal(cells[9], cells[6])  # thinking shows
