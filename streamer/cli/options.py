"""The config a command runs with: the file named by `-c`, with the command line's overrides."""

from __future__ import annotations

import argparse

from streamer.config import StagecastConfig, load_config


def load(args: argparse.Namespace) -> StagecastConfig:
    """Load `args.config` (default configs/default.yaml); `--duration` and `--virtual` override the show."""
    config = load_config(args.config)
    if getattr(args, "duration", None) is not None:
        config.show.duration_s = args.duration
    if getattr(args, "virtual", False):
        config.show.mode = "virtual"
    return config
