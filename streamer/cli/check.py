"""`stagecast check`: validate a config and list the backends usable on this machine."""

from __future__ import annotations

import argparse
from pathlib import Path

from streamer.cli.backends import probe_backends
from streamer.cli.options import load
from streamer.cli.prepare import compiled_status


def cmd_check(args: argparse.Namespace) -> int:
    config = load(args)
    print(f"config OK: {args.config or 'configs/default.yaml'} "
          f"({config.video.width}x{config.video.height} @ {config.video.fps} fps, "
          f"{config.samples_per_frame} samples/frame)")
    sprites = config.character.sprite_pack() if config.character.appearance == "sprites" else None
    for status in probe_backends(sprites):
        mark = "yes" if status.usable else "no "
        print(f"  [{mark}] {status.name:34s} {status.detail}")
    print(compiled_status(config))
    if config.character.brain == "openai":
        from streamer.cli.llm_check import run_llm_check

        result = run_llm_check(config.character.openai, chat=args.chat)
        print("\n".join(result.lines))
        if not result.ok:
            return 1
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `check` subcommand to the `stagecast` parser."""
    check = subparsers.add_parser("check", help="validate a config and list usable backends")
    check.add_argument("-c", "--config", type=Path, default=None)
    check.add_argument("--chat", action="store_true",
                       help="openai brain: also send two 1-token chat requests (does the persona reach the model?)")
    check.set_defaults(func=cmd_check)
