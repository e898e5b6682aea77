"""OBS Studio: where it is and what stagecast builds in it (scene, feed, overlays, captions, pause scene)."""

from __future__ import annotations

from pydantic import Field

from streamer.config.base import ConfigModel

TRANSPARENT_CSS = "body { background-color: rgba(0, 0, 0, 0); margin: 0px auto; overflow: hidden; }"


class ObsOverlayConfig(ConfigModel):
    """One Browser Source drawn over the feed (the panel's caption/chat/status overlay pages)."""

    name: str = Field(min_length=1, description="OBS input name, unique in OBS")
    url: str = Field(pattern=r"^(https?|file)://", description="page to show, e.g. http://127.0.0.1:8765/overlay/chat")
    width: int = Field(1280, ge=1, le=7680)
    height: int = Field(720, ge=1, le=4320)
    x: float = 0.0
    y: float = 0.0
    css: str = TRANSPARENT_CSS
    fps: int = Field(30, ge=1, le=60)


class ObsConfig(ConfigModel):
    """Where OBS is and what stagecast builds in it. Only the password's *variable name* is stored."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(4455, ge=1, le=65535)
    password_env: str | None = Field(
        "OBS_WEBSOCKET_PASSWORD", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="name of the env var holding the obs-websocket password (OBS 29+ listens on all interfaces)",
    )
    scene: str = Field("stagecast", min_length=1)
    media_source: str = Field("stagecast feed", min_length=1)
    feed_url: str = Field("udp://127.0.0.1:9000", pattern=r"^(udp|srt|rtmp|rtsp|http|https|tcp)://",
                          description="what the Media Source plays: one of outputs.udp[*].url")
    feed_format: str | None = Field("mpegts", description="FFmpeg input format hint; None lets FFmpeg probe")
    feed_buffering_mb: int = Field(1, ge=0, le=16, description="Media Source network buffer; small = low latency")
    overlays: list[ObsOverlayConfig] = Field(default_factory=list)
    caption_source: str | None = Field("stagecast caption", description="text input for captions; None: no captions")
    caption_font: str = Field("Noto Sans CJK JP", description="covers Latin, kana and hanzi (fonts-noto-cjk)")
    caption_size: int = Field(40, ge=8, le=512)
    caption_line_chars: int = Field(44, ge=8, description="wrap captions at this width (a CJK character counts 2)")
    caption_lines: int = Field(2, ge=1, description="show only the newest lines of a long caption")
    caption_margin: int = Field(40, ge=0, description="pixels between the caption's bottom and the canvas edge")
    pause_scene: str = Field("stagecast paused", min_length=1)
    pause_text: str | None = Field("Be right back", description="text shown in the pause scene when created by us")
    switch_scene: bool = Field(True, description="make our scene (or the pause scene) the program scene")
    request_timeout_s: float = Field(5.0, gt=0)
    heartbeat_s: float = Field(2.0, gt=0, description="idle interval between liveness requests")
    backoff_initial_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
