"""Render jobs from a directory or glob of scripts: each script is read and checked here, on the driver.

Scripts are parsed before anything is dispatched, so a malformed one fails at once with its file and line
while the rest render; the job carries the parsed lines (not a path), so a worker node needs no shared
filesystem.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from streamer.config import StagecastConfig
from streamer.render_script import ScriptError, ScriptLine, read_script

SCRIPT_SUFFIX = ".jsonl"


@dataclass(frozen=True)
class RenderJob:
    """One script to render: its lines, the config and seed it renders with, and where the video goes."""

    name: str  # the output file's name, unique in the batch
    script: Path
    lines: list[ScriptLine]
    config: StagecastConfig
    out: Path

    @property
    def seed(self) -> int:
        return self.config.show.seed


@dataclass(frozen=True)
class JobFailure:
    """A script that did not render, with the error to show (it names the file, and the line where known)."""

    script: Path
    error: str


class BatchError(ValueError):
    """The batch as a whole cannot start (no scripts found, two scripts writing one file)."""


def find_scripts(spec: str) -> list[Path]:
    """A directory (its *.jsonl, sorted), a glob pattern, or one file; refuses a spec that matches nothing."""
    path = Path(spec)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix == SCRIPT_SUFFIX and p.is_file())
    elif path.is_file():
        found = [path]
    else:
        found = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
    if not found:
        where = f"directory {spec} has no *{SCRIPT_SUFFIX} files" if path.is_dir() else f"{spec} matches no files"
        raise BatchError(f"no scripts to render: {where}")
    return found


def plan_jobs(
    scripts: list[Path], out_dir: Path, config: StagecastConfig, suffix: str = ".mp4", prefix: str = ""
) -> tuple[list[RenderJob], list[JobFailure]]:
    """Jobs for the scripts that parse, failures (file:line) for those that do not.

    Outputs: out_dir/<prefix><script stem><suffix>; two scripts that would write one file are refused."""
    by_name: dict[str, Path] = {}
    for script in scripts:
        name = prefix + script.stem + suffix
        if name in by_name:
            raise BatchError(f"{by_name[name]} and {script} would both write {out_dir / name}; rename one")
        by_name[name] = script
    jobs, failures = [], []
    for name, script in by_name.items():
        try:
            lines = read_script(script)
        except ScriptError as exc:
            failures.append(JobFailure(script, str(exc)))
            continue
        except OSError as exc:
            failures.append(JobFailure(script, f"{script}: cannot read ({exc.strerror or exc})"))
            continue
        jobs.append(RenderJob(name, script, lines, config.model_copy(deep=True), out_dir / name))
    return jobs, failures
