"""A batch job file (`stagecast render --job job.yaml`): several groups of scripts, each with its own show
config and seed, into one output folder; e.g. every show of a station rendering its episodes overnight.

    out_dir: videos            # relative paths are relative to this file
    config: small.yaml         # the default show config (else configs/default.yaml)
    seed: 7                    # the default seed (else each config's show.seed)
    renders:
      - {scripts: shows/alice/, config: alice.yaml, prefix: alice-}
      - {scripts: "shows/bob/*.jsonl", config: bob.yaml, seed: 3, prefix: bob-}

A mistake in the job file is refused with the file, line and key (YAML node marks); a group whose show
config fails validation fails alone, as a malformed script does, and the other groups render.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streamer.batch.jobs import BatchError, JobFailure, RenderJob, find_scripts, plan_jobs
from streamer.config import ConfigError, load_config


class RenderGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scripts: str = Field(description="a directory of *.jsonl scripts, a glob or one file")
    config: str | None = None
    seed: int | None = None
    prefix: str = Field("", description="put before each output's name, to keep groups' names apart")


class JobFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    out_dir: str
    config: str | None = None
    seed: int | None = None
    renders: list[RenderGroup] = Field(min_length=1)


def _line_of(node: yaml.Node, loc: tuple[int | str, ...]) -> int:
    """The 1-based line of the YAML node at pydantic's error location (the deepest node that exists)."""
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key]
            if not match:
                break
            node = match[0][1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
    return node.start_mark.line + 1


def read_job_file(path: Path) -> JobFile:
    """The job file at `path`; every error names the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BatchError(f"{path}: cannot read job file: {exc.strerror or exc}") from None
    try:
        node = yaml.compose(text)
        data: Any = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else 1
        raise BatchError(f"{path}:{line}: not valid YAML: {exc.problem}") from None
    if node is None:
        raise BatchError(f"{path}: empty job file (it needs out_dir and renders)")
    try:
        return JobFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        raise BatchError(f"{path}:{_line_of(node, error['loc'])}: {where + ': ' if where else ''}{message}") from None


def plan_job_file(path: Path, suffix: str = ".mp4", out_dir: Path | None = None,
                  seed: int | None = None) -> tuple[list[RenderJob], list[JobFailure], Path]:
    """Jobs for every group of the job file, their failures, and the output folder (`out_dir` overrides it)."""
    job = read_job_file(path)
    base = path.resolve().parent
    out = out_dir or base / job.out_dir
    jobs: list[RenderJob] = []
    failures: list[JobFailure] = []
    writers: dict[str, Path] = {}
    for group in job.renders:
        config_path = group.config or job.config
        try:
            config = load_config(base / config_path if config_path else None)
        except ConfigError as exc:  # this group fails, the others render
            failures.append(JobFailure(Path(group.scripts), f"{path}: group {group.scripts}: {exc}"))
            continue
        group_seed = seed if seed is not None else group.seed if group.seed is not None else job.seed
        if group_seed is not None:
            config.show.seed = group_seed
        scripts = find_scripts(str(base / group.scripts))
        planned, failed = plan_jobs(scripts, out, config, suffix=suffix, prefix=group.prefix)
        for item in planned:
            if item.name in writers:
                raise BatchError(f"{writers[item.name]} and {item.script} would both write {item.out}; "
                                 f"give their groups different prefixes in {path}")
            writers[item.name] = item.script
        jobs += planned
        failures += failed
    return jobs, failures, out
