"""`stagecast render`: a script of timed turns to a video file, offline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from streamer.cli.options import load


def cmd_render(args: argparse.Namespace) -> int:
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
    render = subparsers.add_parser("render", help="render a script of turns to a video file (offline)")
    render.add_argument("--script", required=True, help="JSONL script of timed turns")
    render.add_argument("--out", required=True, help="output video file (.mp4 or .mkv)")
    render.add_argument("-c", "--config", type=Path, default=None)
    render.add_argument("--seed", type=int, default=None)
    render.set_defaults(func=cmd_render)
