"""`python -m streamer.cli`: the `stagecast` command."""

import sys

from streamer.cli import main

sys.exit(main())
