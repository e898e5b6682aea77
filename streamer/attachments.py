"""The attachments a config asks for (chat sources, OBS, the panel), built for `stagecast run`. The
show core never imports these: they reach the show through its control surface."""

from __future__ import annotations

from engine.clock import StreamClock
from streamer.chat.base import ChatSource
from streamer.chat.local import LocalChatSource
from streamer.chat.pump import ChatPump
from streamer.chat.replay import ReplaySource
from streamer.chat.twitch import TwitchEventSubSource
from streamer.chat.youtube import make_youtube_source
from streamer.config import ChatSourceConfig, LocalSourceConfig, ReplaySourceConfig, StagecastConfig
from streamer.listen.listener import Listener
from streamer.obs_attach import ObsAttachment
from streamer.panel.attach import PanelAttachment
from streamer.show import Attachment, Show


def chat_source(cfg: ChatSourceConfig, clock: StreamClock) -> ChatSource:
    if isinstance(cfg, ReplaySourceConfig):
        return ReplaySource(cfg.path, clock, loop=cfg.loop, loop_gap_s=cfg.loop_gap_s)
    if isinstance(cfg, LocalSourceConfig):
        return LocalChatSource(cfg.host, cfg.port)
    if cfg.type == "twitch":
        return TwitchEventSubSource(cfg)
    return make_youtube_source(cfg)


def build_attachments(config: StagecastConfig, clock: StreamClock) -> list[Attachment]:
    """Chat sources in config order, the listener, OBS, then the panel (closed in reverse): the panel's
    co-host page finds the listener's inputs already there."""
    attachments: list[Attachment] = [ChatPump(chat_source(s, clock)) for s in config.chat.sources]
    if config.listen.enabled and config.listen.inputs:
        attachments.append(Listener(config.listen))
    if config.obs.enabled:
        attachments.append(ObsAttachment(config.obs))
    if config.panel.enabled:
        attachments.append(PanelAttachment(config.panel))
    return attachments


def build_show(config: StagecastConfig) -> Show:
    """The show with everything its config asks for attached."""
    show = Show(config)
    show.attach(*build_attachments(config, show.clock))
    return show
