"""`stagecast render`: a script of turns to a video file, offline; or many scripts as a batch (--scripts)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from streamer.cli.options import load


def cmd_render(args: argparse.Namespace) -> int:
    if args.scripts is not None or args.job is not None:
        from streamer.cli.render_batch import cmd_render_batch

        return cmd_render_batch(args)
    if args.out is None:
        print("error: --script needs --out (the video file to write)", file=sys.stderr)
        return 2
    # The engine and torch load only for the commands that use them.
    from streamer.assembly import configure_torch_threads
    from streamer.render_script import ScriptError, read_script, render_script

    config = load(args)
    if args.seed is not None:
        config.show.seed = args.seed
    configure_torch_threads()
    try:
        script = read_script(Path(args.script))
    except (OSError, ScriptError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = render_script(config, script, Path(args.out))
    print(json.dumps({"out": str(result.out), "frames": result.frames, "video_sha256": result.video_sha256,
                      "audio_sha256": result.audio_sha256}))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `render` subcommand to the `stagecast` parser."""
    render = subparsers.add_parser(
        "render", help="render a script of turns to a video file (offline), or many scripts as a batch")
    what = render.add_mutually_exclusive_group(required=True)
    what.add_argument("--script", help="JSONL script of timed turns")
    what.add_argument("--scripts", help="batch: a directory of *.jsonl scripts or a glob (quote it)")
    what.add_argument("--job", type=Path, help="batch: a job file (YAML) of script groups, each with its config")
    render.add_argument("--out", help="output video file (.mp4 or .mkv), with --script")
    render.add_argument("-c", "--config", type=Path, default=None)
    render.add_argument("--seed", type=int, default=None)
    batch = render.add_argument_group("batch (--scripts), rendered as Ray tasks; needs stagecast[station]")
    batch.add_argument("--out-dir", type=Path,
                       help="where the videos go: OUT_DIR/<script name>.mp4 (with --job: instead of its out_dir)")
    batch.add_argument("--format", choices=("mp4", "mkv"), default="mp4", help="container of the batch videos")
    batch.add_argument("--address", default=None,
                       help="Ray cluster: auto (a running one), HOST:PORT, or local (a new one here); "
                            "default: $RAY_ADDRESS, else a running cluster, else one started here")
    batch.add_argument("--workers", type=int, default=None, help="at most this many renders at once")
    batch.add_argument("--threads", type=int, default=1, help="CPUs (torch threads) per render task")
    batch.add_argument("--retries", type=int, default=2, help="retries of a task whose worker died or that failed")
    batch.add_argument("--local", action="store_true", help="render one by one in this process, without Ray")
    render.set_defaults(func=cmd_render)
