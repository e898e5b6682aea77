"""Batch planning and the batch command without Ray: malformed scripts are refused by file and line,
the rest render; without Ray a batch renders here one by one after saying how to install Ray, and a
single-script render does not need Ray at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamer.batch.jobs import BatchError, find_scripts, plan_jobs
from streamer.config import parse_config
from streamer.render_script import ScriptError, parse_script

ROOT = Path(__file__).resolve().parent.parent
GOOD = '{"t": 0.1, "say": "hi", "lang": "en"}\n'


@pytest.mark.unit
@pytest.mark.parametrize(("line", "expected"), [
    ('{"t": 0.5, "emotion": "smug"}', "emotion: unknown emotion 'smug'; known: joy,"),
    ('{"t": 0.5, "say": "a"', "not valid JSON (Expecting ',' delimiter at column 22)"),
    ('{"t": -1, "say": "a"}', "t: Input should be greater than or equal to 0"),
    ('{"t": 1, "say": "a", "volume": 3}', "volume: Extra inputs are not permitted"),
    ('{"t": 1, "say": "a", "text": "b"}', "each line needs exactly one of text, say, interrupt"),
    ('[1, 2]', "Input should be a valid dictionary"),
])
def test_a_bad_script_line_is_named_by_file_line_and_field(line: str, expected: str):
    text = f"# intro\n{GOOD}\n{line}\n{GOOD}"
    with pytest.raises(ScriptError) as info:
        parse_script(text, "show/ep1.jsonl")
    assert str(info.value).startswith(f"show/ep1.jsonl:4: {expected}")


@pytest.mark.unit
def test_scripts_are_found_by_directory_or_glob_and_each_bad_one_fails_alone(tmp_path: Path):
    (tmp_path / "a.jsonl").write_text(GOOD)
    (tmp_path / "b.jsonl").write_text(GOOD + '{"t": 2, "interrupt": "yes please"}\n')
    (tmp_path / "notes.txt").write_text("not a script")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.jsonl").write_text(GOOD)
    assert [p.name for p in find_scripts(str(tmp_path))] == ["a.jsonl", "b.jsonl"]
    assert [p.name for p in find_scripts(f"{tmp_path}/**/*.jsonl")] == ["a.jsonl", "b.jsonl", "c.jsonl"]
    with pytest.raises(BatchError, match="matches no files"):
        find_scripts(f"{tmp_path}/*.yaml")
    config = parse_config({"show": {"seed": 5}})
    jobs, failures = plan_jobs(find_scripts(f"{tmp_path}/**/*.jsonl"), tmp_path / "out", config)
    assert [(j.name, j.out, j.seed) for j in jobs] == [("a.mp4", tmp_path / "out" / "a.mp4", 5),
                                                       ("c.mp4", tmp_path / "out" / "c.mp4", 5)]
    assert [f.error.split(": ")[0] for f in failures] == [f"{tmp_path / 'b.jsonl'}:2"]
    (tmp_path / "sub" / "a.jsonl").write_text(GOOD)
    with pytest.raises(BatchError, match="would both write"):
        plan_jobs(find_scripts(f"{tmp_path}/**/*.jsonl"), tmp_path / "out", config)


def _without_ray(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`stagecast ARGS` in a Python where `import ray` fails, as in an install without stagecast[station]."""
    blocker = tmp_path / "no_ray" / "ray"
    blocker.mkdir(parents=True, exist_ok=True)
    (blocker / "__init__.py").write_text("raise ImportError('ray is not installed (blocked by the test)')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker.parent)}
    return subprocess.run([sys.executable, "-m", "streamer.cli", "render", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.integration
def test_without_ray_a_batch_renders_here_with_a_note_and_a_single_render_is_unchanged(tmp_path: Path):
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "one.jsonl").write_text(GOOD)
    (scripts / "broken.jsonl").write_text(GOOD + "{oops\n")
    config = tmp_path / "small.yaml"
    config.write_text("video: {width: 256, height: 144, fps: 15}\n")
    common = ["-c", str(config), "--seed", "3"]

    batch = _without_ray(tmp_path, "--scripts", str(scripts), "--out-dir", str(tmp_path / "out"), *common)
    assert batch.returncode == 1, batch.stderr[-2000:]
    assert "note: Ray is not installed" in batch.stderr and "pip install 'stagecast[station]'" in batch.stderr
    assert f"{scripts / 'broken.jsonl'}:2: not valid JSON" in batch.stderr
    video = json.loads(batch.stdout.splitlines()[0])
    assert video["out"] == str(tmp_path / "out" / "one.mp4") and Path(video["out"]).stat().st_size > 0

    single = _without_ray(tmp_path, "--script", str(scripts / "one.jsonl"), "--out", str(tmp_path / "one.mp4"),
                          *common)
    assert single.returncode == 0, single.stderr[-2000:]
    alone = json.loads(single.stdout.splitlines()[-1])
    assert (alone["frames"], alone["video_sha256"]) == (video["frames"], video["video_sha256"])

    cluster = _without_ray(tmp_path, "--scripts", str(scripts), "--out-dir", str(tmp_path / "o2"),
                           "--address", "10.0.0.1:6379", *common)
    assert cluster.returncode == 2
    assert "--address needs Ray, which is not installed: pip install 'stagecast[station]'" in cluster.stderr


def _job_dir(tmp_path: Path) -> Path:
    for show in ("alice", "bob"):
        (tmp_path / show).mkdir()
        (tmp_path / show / "ep1.jsonl").write_text(GOOD)
    (tmp_path / "bob" / "ep2.jsonl").write_text(GOOD)
    (tmp_path / "alice.yaml").write_text("video: {width: 320, height: 180}\nshow: {seed: 4}\n")
    (tmp_path / "bob.yaml").write_text("video: {width: 256, height: 144}\n")
    return tmp_path


@pytest.mark.unit
def test_a_job_file_renders_each_group_with_its_config_seed_and_prefix(tmp_path: Path):
    from streamer.batch.jobfile import plan_job_file

    root = _job_dir(tmp_path)
    (root / "job.yaml").write_text(
        "out_dir: videos\nseed: 9\nrenders:\n"
        "  - {scripts: alice/, config: alice.yaml, prefix: alice-}\n"
        "  - {scripts: 'bob/*.jsonl', config: bob.yaml, seed: 3, prefix: bob-}\n")
    jobs, failures, out = plan_job_file(root / "job.yaml")
    assert failures == [] and out == root / "videos"
    assert [(j.name, j.config.video.width, j.seed) for j in jobs] == [
        ("alice-ep1.mp4", 320, 9), ("bob-ep1.mp4", 256, 3), ("bob-ep2.mp4", 256, 3)]
    assert {j.out.parent for j in jobs} == {root / "videos"}


@pytest.mark.unit
@pytest.mark.parametrize(("body", "line", "expected"), [
    ("out_dir: v\nrenders:\n  - {scripts: alice/}\n  - {scripts: bob/, sed: 3}\n", 4, "renders.1.sed: Extra inputs"),
    ("out_dir: v\nrenders:\n  - scripts: alice/\n    seed: soon\n", 4, "renders.0.seed: Input should be a valid int"),
    ("out_dir: v\nrenders:\n  - {config: bob.yaml}\n", 3, "renders.0.scripts: Field required"),
    ("out_dir: v\nrenders: []\n", 2, "renders: List should have at least 1 item"),
    ("out_dir: v\nrenders:\n  - {scripts: alice/\n", 4, "not valid YAML"),
])
def test_a_bad_job_file_is_refused_naming_file_line_and_key(tmp_path: Path, body: str, line: int, expected: str):
    from streamer.batch.jobfile import plan_job_file

    root = _job_dir(tmp_path)
    (root / "job.yaml").write_text(body)
    with pytest.raises(BatchError) as info:
        plan_job_file(root / "job.yaml")
    assert str(info.value).startswith(f"{root / 'job.yaml'}:{line}: {expected}")


@pytest.mark.unit
def test_a_job_group_whose_config_is_invalid_fails_alone_and_clashing_names_are_refused(tmp_path: Path):
    from streamer.batch.jobfile import plan_job_file

    root = _job_dir(tmp_path)
    (root / "broken.yaml").write_text("video: {fps: thirty}\n")
    (root / "job.yaml").write_text("out_dir: v\nrenders:\n  - {scripts: alice/, config: broken.yaml}\n"
                                   "  - {scripts: bob/, config: bob.yaml}\n")
    jobs, failures, _ = plan_job_file(root / "job.yaml")
    assert [j.name for j in jobs] == ["ep1.mp4", "ep2.mp4"]
    (error,) = [f.error for f in failures]
    assert "group alice/" in error and "broken.yaml" in error and "video.fps" in error
    (root / "job.yaml").write_text("out_dir: v\nrenders:\n  - {scripts: alice/}\n  - {scripts: bob/}\n")
    with pytest.raises(BatchError, match=r"would both write .*ep1\.mp4; give their groups different prefixes"):
        plan_job_file(root / "job.yaml")


@pytest.mark.unit
def test_an_address_where_no_cluster_listens_is_refused_at_once():
    import socket

    from streamer.batch.runner import check_reachable

    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        check_reachable(f"127.0.0.1:{port}")  # something listens: left to Ray
    with pytest.raises(BatchError, match=rf"no Ray cluster at 127\.0\.0\.1:{port} .*ray start --head"):
        check_reachable(f"127.0.0.1:{port}")
    check_reachable(None)
    check_reachable("auto")
