"""Batch production (`stagecast render --scripts`): scripts rendered as Ray tasks on a real two-node
loopback cluster give the same raw frames as local renders; a malformed script fails alone naming its
file and line; a task whose worker is SIGKILLed mid-render is retried and still renders the same frames."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest

from streamer.batch.jobs import find_scripts, plan_jobs
from streamer.batch.runner import run_ray
from streamer.config import load_config
from streamer.render_script import read_script, render_script
from tests.ray_support import RayCluster, ray_available, start_cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow,  # a cluster start and 18 renders: ~2-4 min on 2 shared cores
              pytest.mark.skipif(not ray_available(), reason="Ray is not installed (pip install 'stagecast[station]')")]
ROOT = Path(__file__).resolve().parent.parent
SEED = 11
CONFIG = "video: {width: 256, height: 144, fps: 15}\n"
SCRIPTS = {  # eight small scripts (1.5 - 3 s of video each), each exercising a different kind of line
    "s1": ['{"t": 0.1, "say": "Hello from the batch.", "lang": "en"}'],
    "s2": ['{"t": 0.2, "emotion": "joy", "hold": 1}', '{"t": 0.5, "say": "Happy now.", "lang": "en"}'],
    "s3": ['{"t": 0.1, "user": "alex", "text": "hi there!"}'],
    "s4": ['{"t": 0.1, "say": "こんにちは", "lang": "ja"}'],
    "s5": ['{"t": 0.1, "say": "One two three four five six seven.", "lang": "en"}', '{"t": 1.0, "interrupt": true}'],
    "s6": ['{"t": 0.3, "emotion": "surprise", "intensity": 0.5}'],
    "s7": ['{"t": 0.1, "say": "你好", "lang": "zh"}', '{"t": 0.8, "emotion": "sorrow"}'],
    "s8": ['# a comment line', '{"t": 0.4, "say": "Last one.", "lang": "en"}'],
}
BAD = ['{"t": 0.1, "say": "fine so far", "lang": "en"}', "", '{"t": 0.5, "emotion": "smug"}']  # line 3 is bad


@pytest.fixture(scope="module")
def cluster():
    # tests/ray_support puts this test run's Ray auth token in os.environ: the CLI subprocess and the
    # in-process driver below inherit it
    cluster = start_cluster(num_cpus=1, nodes=2)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A directory with the eight scripts and the malformed one, the config, and the local renders' hashes."""
    root = tmp_path_factory.mktemp("batch")
    scripts = root / "scripts"
    scripts.mkdir()
    for name, lines in {**SCRIPTS, "bad": BAD}.items():
        (scripts / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = root / "config.yaml"
    config.write_text(CONFIG)
    return {"root": root, "scripts": scripts, "config": config}


@pytest.fixture(scope="module")
def local_hashes(batch: dict[str, Path]) -> dict[str, tuple[int, str, str]]:
    """Each good script rendered locally, in this process, the way a single `stagecast render` does."""
    hashes = {}
    for name in SCRIPTS:
        config = load_config(batch["config"])
        config.show.seed = SEED
        result = render_script(config, read_script(batch["scripts"] / f"{name}.jsonl"), None)
        hashes[name] = (result.frames, result.video_sha256, result.audio_sha256)
    return hashes


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_eight_scripts_on_two_nodes_match_local_renders_and_a_bad_script_fails_alone(
    cluster: RayCluster, batch: dict[str, Path], local_hashes: dict[str, tuple[int, str, str]], tmp_path: Path
):
    out_dir = tmp_path / "videos"
    proc = subprocess.run(
        [sys.executable, "-m", "streamer.cli", "render", "--scripts", str(batch["scripts"]), "--out-dir",
         str(out_dir), "-c", str(batch["config"]), "--seed", str(SEED), "--address", cluster.address],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # one script failed, the rest rendered
    bad = batch["scripts"] / "bad.jsonl"
    assert f"error: {bad}:3: emotion: unknown emotion 'smug'" in proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    videos, summary = records[:-1], records[-1]
    assert summary["rendered"] == 8 and summary["failed"] == [f"{bad}:3: emotion: unknown emotion 'smug'; "
                                                             "known: joy, anger, sorrow, surprise, fun"]
    assert sorted(Path(v["out"]).stem for v in videos) == sorted(SCRIPTS)
    for video in videos:
        name = Path(video["out"]).stem
        assert (video["frames"], video["video_sha256"], video["audio_sha256"]) == local_hashes[name], name
        assert decoded_frames(Path(video["out"])) == video["frames"], name
    assert len({v["node"] for v in videos}) == 2, "both nodes should have rendered part of the batch"
    assert [p.name for p in out_dir.iterdir() if p.suffix != ".mp4"] == []  # no .part files left behind
    assert "[8/8]" in proc.stderr  # progress was shown


def _cluster_render_pids(cluster: RayCluster) -> list[int]:
    """Worker processes of THIS cluster (children of its raylets) running a render task right now."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            if not title.startswith("ray::stagecast_render"):
                continue
            ppid = int(next(line.split()[1] for line in (entry / "status").read_text().splitlines()
                            if line.startswith("PPid:")))
            parent = Path(f"/proc/{ppid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, StopIteration, ValueError):
            continue
        if str(cluster.temp_dir) in parent:
            pids.append(int(entry.name))
    return pids


def test_a_render_task_whose_worker_is_killed_is_retried_and_renders_the_same_frames(
    cluster: RayCluster, batch: dict[str, Path], local_hashes: dict[str, tuple[int, str, str]], tmp_path: Path
):
    config = load_config(batch["config"])
    config.show.seed = SEED
    scripts = [p for p in find_scripts(str(batch["scripts"])) if p.stem in ("s3", "s5")]
    jobs, failures = plan_jobs(scripts, tmp_path, config)
    assert failures == [] and len(jobs) == 2
    killed: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def kill_first_render() -> None:
        try:
            while not done.is_set() and not killed:
                for pid in _cluster_render_pids(cluster):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
                time.sleep(0.05)
        except BaseException as exc:
            errors.append(exc)

    killer = threading.Thread(target=kill_first_render, daemon=True)
    killer.start()
    try:
        report = run_ray(jobs, address=cluster.address, retries=2)
    finally:
        done.set()
        killer.join(10)
    assert errors == []
    assert killed, "no render task was seen running, so nothing was killed"
    assert report.failures == []
    assert {r.name for r in report.results} == {"s3.mp4", "s5.mp4"}
    assert killed[0] not in {r.pid for r in report.results}  # the killed worker's render did not come back
    for result in report.results:
        name = Path(result.name).stem
        assert (result.frames, result.video_sha256, result.audio_sha256) == local_hashes[name]
        assert decoded_frames(tmp_path / result.name) == result.frames
