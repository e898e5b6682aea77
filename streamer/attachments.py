"""The attachments a config asks for (the panel, OBS), built for `stagecast run`. The show core
never imports these: they reach the show through its control surface."""

from __future__ import annotations

from streamer.config import StagecastConfig
from streamer.obs_attach import ObsAttachment
from streamer.panel.attach import PanelAttachment
from streamer.show import Attachment


def build_attachments(config: StagecastConfig) -> list[Attachment]:
    attachments: list[Attachment] = []
    if config.obs.enabled:
        attachments.append(ObsAttachment(config.obs))
    if config.panel.enabled:
        attachments.append(PanelAttachment(config.panel))
    return attachments
