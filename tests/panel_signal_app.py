"""Run a Show with the panel in the main thread (as `stagecast run` does) for the signal test.

Prints `HANDLER <name>` (who owns SIGINT once uvicorn is serving) and `READY <url>`, then runs
until SIGINT. With `plain` it uses uvicorn's own Server class instead of EmbeddedServer (control)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import uvicorn

from streamer.config import PanelConfig, parse_config
from streamer.control import ShowControl
from streamer.panel import attach
from streamer.show import Show


class Probe:
    """Attached after the panel: once uvicorn answers, says who owns SIGINT."""

    name = "signal-probe"

    def __init__(self, panel: attach.PanelAttachment) -> None:
        self.panel = panel

    async def start(self, control: ShowControl) -> None:
        handle = self.panel.handle
        assert handle is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", handle.port)
        writer.write(b"GET /api/whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await reader.read()  # answered: uvicorn is inside serve() now
        writer.close()
        handler = signal.getsignal(signal.SIGINT)
        print("HANDLER", getattr(handler, "__qualname__", repr(handler)), flush=True)
        print("READY", handle.url, flush=True)

    async def aclose(self) -> None:
        pass


async def main(db: Path) -> int:
    panel = attach.PanelAttachment(PanelConfig(port=0, db_path=db))
    config = parse_config({"video": {"width": 128, "height": 128}, "outputs": {"recording": {"enabled": False}}})
    return await Show(config, attachments=[panel, Probe(panel)]).run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s: %(message)s")
    if sys.argv[2:] == ["plain"]:
        attach.EmbeddedServer = uvicorn.Server  # type: ignore[misc]
    sys.exit(asyncio.run(main(Path(sys.argv[1]))))
