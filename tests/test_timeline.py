import asyncio
import threading

import numpy as np
import pytest

from engine.clock import TimeBase
from engine.events import EmotionCue
from engine.state import EMOTIONS
from engine.timeline import Timeline
from tests.helpers import tone_speech

pytestmark = pytest.mark.unit
TB = TimeBase(30, 48000)
SPF = TB.samples_per_frame


def pull_range(tl: Timeline, a: int, b: int):
    return [tl.pull(n) for n in range(a, b)]


def test_audio_is_exactly_the_scheduled_pcm_and_silence_after():
    tl = Timeline(TB)
    speech = tone_speech(["one", "two", "three"])
    item = tl.schedule(speech, at_frame=5)
    assert item.start_sample == 5 * SPF
    frames = pull_range(tl, 0, 60)
    audio = np.concatenate([f.audio for f in frames])
    assert np.all(audio[: 5 * SPF] == 0)
    np.testing.assert_array_equal(audio[5 * SPF : 5 * SPF + speech.samples], speech.pcm)
    assert np.all(audio[5 * SPF + speech.samples :] == 0)
    assert all(f.audio.shape == (SPF,) for f in frames)


def test_schedule_appends_after_previous_speech_gaplessly():
    tl = Timeline(TB)
    a = tl.schedule(tone_speech(["a"]))
    b = tl.schedule(tone_speech(["b"]))
    assert b.start_frame == TB.frames_for_samples(a.end_sample)


def test_cut_at_frame_boundary_is_sample_exact_and_reports_heard_words():
    tl = Timeline(TB)
    speech = tone_speech(["alpha", "beta", "gamma", "delta"], word_s=0.3, gap_s=0.0)
    tl.schedule(speech, at_frame=0)
    frames = pull_range(tl, 0, 14)  # 14 frames = 0.4667 s: alpha done, beta under way
    results = tl.cut()
    assert len(results) == 1
    boundary = 14 * SPF
    assert results[0].end_sample == boundary
    assert results[0].interrupted
    # beta's midpoint (0.45 s) was heard, gamma's was not
    assert results[0].played_text == "alpha beta"
    frames += pull_range(tl, 14, 30)
    audio = np.concatenate([f.audio for f in frames])
    np.testing.assert_array_equal(audio[:boundary], speech.pcm[:boundary])  # the past is untouched
    fade = tl.fade_samples
    assert np.all(audio[boundary + fade :] == 0)
    assert np.max(np.abs(audio[boundary : boundary + fade])) > 0  # faded, not clicked
    # the mouth is closed within 3 frames of the cut
    assert frames[14 + 2].visemes[0] == pytest.approx(1.0)


def test_cut_before_start_drops_unheard_speech():
    tl = Timeline(TB)
    tl.schedule(tone_speech(["later"]), at_frame=50)
    pull_range(tl, 0, 10)
    results = tl.cut()
    assert results[0].played_text == ""
    assert all(not f.speaking for f in pull_range(tl, 10, 80))


def test_cut_never_rewrites_pulled_frames():
    tl = Timeline(TB)
    tl.schedule(tone_speech(["x", "y"]), at_frame=0)
    pull_range(tl, 0, 10)
    results = tl.cut(at_frame=3)  # asks for the past: acts at the next unpulled frame
    assert results[0].end_sample == 10 * SPF


def test_emotion_envelope_attack_hold_release():
    tl = Timeline(TB)
    tl.add_emotion(EmotionCue("joy", 0.8, hold_s=1.0, attack_s=0.1, release_s=0.2), at_frame=10)
    values = [f.emotions[EMOTIONS.index("joy")] for f in pull_range(tl, 0, 60)]
    assert values[9] == 0
    assert values[12] < 0.8 + 1e-6
    assert max(values) == pytest.approx(0.8)
    assert values[13 + 30 + 6] == 0  # attack 3 + hold 30 + release 6 frames
    assert values[20] == pytest.approx(0.8)


def test_pull_is_a_pure_function_of_the_schedule():
    def run():
        tl = Timeline(TB)
        tl.schedule(tone_speech(["a", "b"]), at_frame=2)
        tl.add_emotion(EmotionCue("anger", 0.5, 0.5), at_frame=4)
        return [(f.audio.tobytes(), f.visemes.tobytes(), f.emotions.tobytes()) for f in pull_range(tl, 0, 40)]

    assert run() == run()


def test_memory_is_bounded_after_speech_ends():
    tl = Timeline(TB)
    for _ in range(20):
        tl.schedule(tone_speech(["w"]))
    pull_range(tl, 0, tl.busy_until_frame() + 5)
    assert tl._speeches == [] and tl._cues == []


def test_cut_is_thread_safe_against_pulls():
    """Cuts and schedules from one thread while another pulls frames: every frame comes out whole and
    in order, and every speech ends exactly once (cut, dropped unheard, or played through). An exception
    in the puller fails the test (tests/conftest.py)."""
    tl = Timeline(TB)
    ids = [tl.schedule(tone_speech(["w"] * 50, word_s=0.1), at_frame=0).id]
    frames = []

    def puller():
        for n in range(2000):
            frames.append(tl.pull(n))

    t = threading.Thread(target=puller, name="puller")
    t.start()
    reports = []
    for _ in range(200):
        reports += tl.cut()
        ids.append(tl.schedule(tone_speech(["z"], word_s=0.05)).id)
    t.join()
    reports += tl.cut()
    frames += pull_range(tl, 2000, 2060)  # past every fade: all speech settles
    reports += [e for f in frames for e in f.ended]
    assert [f.n for f in frames] == list(range(2060))
    assert sorted(r.speech_id for r in reports) == sorted(ids)  # each ends once, none lost or doubled
    for f in frames:
        assert f.audio.shape == (SPF,) and np.isfinite(f.audio).all() and np.abs(f.audio).max() <= 1.0
        assert f.visemes.min() >= 0 and f.visemes.sum() == pytest.approx(1.0, abs=1e-5)


def test_wait_for_frame_resolves_when_pulled():
    tl = Timeline(TB)

    async def main():
        waiter = asyncio.create_task(tl.wait_for_frame(5))
        await asyncio.sleep(0)
        assert not waiter.done()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: pull_range(tl, 0, 6))
        return await asyncio.wait_for(waiter, 5)

    assert asyncio.run(main()) == 5
