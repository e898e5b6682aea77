"""Streams a WAV file as MPEG-TS (AAC) to a URL in real time with PyAV, then silence until killed:
an OBS audio output or a call bridge as the show's `stream` input sees it.

    python -m tests.audio_sender speech.wav udp://127.0.0.1:PORT [--seconds-of-silence 600]
"""

from __future__ import annotations

import argparse
import time
import wave

import av
import numpy as np

RATE = 48_000
BLOCK = 1024  # samples a frame (AAC's frame size)


def read_wav(path: str) -> np.ndarray:
    with wave.open(path, "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2, "48 kHz s16 mono"
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wav")
    parser.add_argument("url")
    parser.add_argument("--seconds-of-silence", type=float, default=600.0)
    args = parser.parse_args()
    speech = read_wav(args.wav)
    audio = np.concatenate([speech, np.zeros(int(args.seconds_of_silence * RATE), np.float32)])
    out = av.open(args.url, "w", format="mpegts")
    stream = out.add_stream("aac", rate=RATE)
    stream.layout = "mono"
    started = time.monotonic()
    for i in range(0, audio.shape[0] - BLOCK, BLOCK):
        frame = av.AudioFrame.from_ndarray(audio[i:i + BLOCK].reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = RATE
        frame.pts = i
        for packet in stream.encode(frame):
            out.mux(packet)
        ahead = (i + BLOCK) / RATE - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    out.close()


if __name__ == "__main__":
    main()
