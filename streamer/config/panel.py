"""The moderator panel: where it listens, its limits, and where its token database lives."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from pydantic import Field, model_validator

from streamer.config.base import ConfigModel

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The folder that holds the streamer package: the repository when stagecast runs from a checkout."""
DB_ENV = "STAGECAST_PANEL_DB"


class PanelConfig(ConfigModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8766, ge=0, le=65535, description="0 picks a free port (tests)")
    allow_remote: bool = Field(False, description="required to bind anything but a loopback address")
    db_path: Path | None = Field(
        None, description=f"token + audit database; default ${DB_ENV} or ~/.local/share/stagecast/panel.db"
    )
    rate_per_s: float = Field(10.0, gt=0, description="requests per second per token (token bucket refill)")
    burst: int = Field(40, ge=1, description="token bucket size")
    token_recheck_s: float = Field(2.0, ge=0, le=60, description="a revoked token stops working within this time")
    preview_fps: float = Field(4.0, gt=0, le=15)
    preview_width: int = Field(320, ge=32, le=1920)
    preview_quality: int = Field(70, ge=10, le=95)
    status_hz: float = Field(2.0, gt=0, le=10)
    allowed_hosts: list[str] = Field(default_factory=list, description="host names besides localhost and IP "
                                     "addresses that the Host header may carry (DNS rebinding guard)")
    max_connections: int = Field(100, ge=1, le=10_000, description="open connections at once; more are closed")
    read_timeout_s: float = Field(10.0, gt=0, le=300, description="time a connection has to send a whole request")
    config_path: Path | None = Field(None, description="YAML file that `reload` re-reads (admin)")

    @model_validator(mode="after")
    def _loopback_unless_allowed(self) -> PanelConfig:
        if not self.allow_remote and not _is_loopback(self.host):
            raise ValueError(f"panel.host {self.host!r} is not a loopback address; set panel.allow_remote: true "
                             "(and put TLS in front) to expose the panel")
        return self


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_db_path(configured: Path | None = None) -> Path:
    """Config > $STAGECAST_PANEL_DB > $XDG_DATA_HOME/stagecast/panel.db > ~/.local/share/stagecast/panel.db.

    A path inside the repository is refused: credentials must never end up in a commit."""
    if configured is not None:
        path = configured
    elif os.environ.get(DB_ENV):
        path = Path(os.environ[DB_ENV])
    else:
        data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
        path = data_home / "stagecast" / "panel.db"
    path = path.expanduser().resolve()
    if path.is_relative_to(REPO_ROOT):
        raise ValueError(f"panel database {path} is inside the repository {REPO_ROOT}; keep credentials out of it "
                         f"(set panel.db_path or ${DB_ENV} to a path elsewhere)")
    return path
