"""A short soak through the real show (virtual time): exact frame and sample counts, continuous
timestamps across segment files, and the same face at the end. benchmarks/soak.py runs it for hours."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


def test_three_minutes_of_stream_keep_exact_time_and_identity(tmp_path: Path):
    out = tmp_path / "soak.json"
    # 0.05 h = 180 s of stream in 1-minute segments: three segment boundaries to cross
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--hours", "0.05",
                           "--segment-minutes", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["video_frames"] == result["expected_video_frames"] == 5400
    assert result["audio_samples"] == result["encoded_audio_samples"] == 5400 * 1600
    assert result["pts_gaps"] == 0 and result["pts_duplicates"] == 0
    assert result["file_frames"] == 5400 and result["segments"] >= 3
    assert result["identity_equal"] is True
    assert result["speech_turns"] > 5
