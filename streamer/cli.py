"""The `stagecast` command: run, check, render, prepare, export, tokens."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path

# OpenMP's default busy-waiting makes torch threads spin against the encoder on small machines
# (seconds per frame when another process holds a core); set before anything imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from streamer.config import ConfigError, StagecastConfig, load_config


def _load(args: argparse.Namespace) -> StagecastConfig:
    config = load_config(args.config)
    if getattr(args, "duration", None) is not None:
        config.show.duration_s = args.duration
    if getattr(args, "virtual", False):
        config.show.mode = "virtual"
    return config


def cmd_run(args: argparse.Namespace) -> int:
    from streamer.attachments import build_attachments
    from streamer.show import Show

    config = _load(args)
    return asyncio.run(Show(config, attachments=build_attachments(config)).run())


def cmd_check(args: argparse.Namespace) -> int:
    from streamer.backends import probe_backends

    config = _load(args)
    print(f"config OK: {args.config or 'configs/default.yaml'} "
          f"({config.video.width}x{config.video.height} @ {config.video.fps} fps, "
          f"{config.samples_per_frame} samples/frame)")
    sprites = config.character.sprite_pack() if config.character.appearance == "sprites" else None
    for status in probe_backends(sprites):
        mark = "yes" if status.usable else "no "
        print(f"  [{mark}] {status.name:34s} {status.detail}")
    from streamer.prepare_cli import compiled_status

    print(compiled_status(config))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from streamer.assembly import configure_torch_threads
    from streamer.render_script import ScriptError, read_script, render_script

    config = _load(args)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stagecast", description="An always-on AI character livestream.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the show")
    run.add_argument("-c", "--config", type=Path, default=None, help="YAML config (default configs/default.yaml)")
    run.add_argument("--duration", type=float, default=None, help="stop after this many seconds of stream time")
    run.add_argument("--virtual", action="store_true", help="virtual time: render as fast as possible")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check", help="validate a config and list usable backends")
    check.add_argument("-c", "--config", type=Path, default=None)
    check.set_defaults(func=cmd_check)

    render = sub.add_parser("render", help="render a script of turns to a video file (offline)")
    render.add_argument("--script", required=True, help="JSONL script of timed turns")
    render.add_argument("--out", required=True, help="output video file (.mp4 or .mkv)")
    render.add_argument("-c", "--config", type=Path, default=None)
    render.add_argument("--seed", type=int, default=None)
    render.set_defaults(func=cmd_render)

    from streamer import export_cli, prepare_cli
    from streamer.panel.tokens_cli import register as register_token_commands

    register_token_commands(sub)
    export_cli.register(sub)
    prepare_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
