"""`stagecast run`: the show."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from streamer.cli.options import load


def cmd_run(args: argparse.Namespace) -> int:
    from streamer.attachments import build_show  # the engine and torch load only for the commands that use them

    config = load(args)
    code = asyncio.run(build_show(config).run())
    exit_now(code)
    return code  # not reached


def exit_now(code: int) -> None:
    """End the process once the show has closed everything it opened (recordings, databases, child
    processes). The interpreter's own teardown is skipped: with torch loaded it takes 0.5-1 s, and a
    sink thread abandoned on a dead network could hold it up further."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `run` subcommand to the `stagecast` parser."""
    run = subparsers.add_parser("run", help="run the show")
    run.add_argument("-c", "--config", type=Path, default=None, help="YAML config (default configs/default.yaml)")
    run.add_argument("--duration", type=float, default=None, help="stop after this many seconds of stream time")
    run.add_argument("--virtual", action="store_true", help="virtual time: render as fast as possible")
    run.set_defaults(func=cmd_run)
