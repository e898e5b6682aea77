"""The `stagecast` command: run, check, render, prepare, export, token, station; one module per command."""

from __future__ import annotations

import argparse
import logging
import os
import sys

# OpenMP's default busy-waiting makes torch threads spin against the encoder on small machines
# (seconds per frame when another process holds a core); set before anything imports torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from engine.logtext import OneLineFormatter
from streamer.cli import check, export, prepare, render, run, station, tokens
from streamer.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stagecast", description="An always-on AI character livestream.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (run, check, render, tokens, export, prepare, station):
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler()  # every message on one line, however hostile what it quotes
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler])
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
