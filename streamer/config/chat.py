"""Chat: where messages come from, the moderation rules they pass, and which ones get a reply.

Secrets never live here: sources name the *environment variables* that hold tokens, and read
them when they start, so a config dump or a log line can never leak one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from streamer.config.base import ConfigModel


class BackoffConfig(ConfigModel):
    """Exponential backoff with full jitter between failed attempts."""

    initial_s: float = Field(1.0, gt=0)
    max_s: float = Field(60.0, gt=0)
    factor: float = Field(2.0, ge=1)


class ReplaySourceConfig(ConfigModel):
    type: Literal["replay"]
    path: Path
    loop: bool = True
    loop_gap_s: float = Field(20.0, ge=0)


class LocalSourceConfig(ConfigModel):
    type: Literal["local"]
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)


class TwitchSourceConfig(ConfigModel):
    type: Literal["twitch"]
    broadcaster_id: str = Field(min_length=1, description="numeric user id of the channel to read")
    user_id: str = Field(min_length=1, description="numeric user id the token belongs to (reads and replies as)")
    channel: str = Field("", description="channel login, only for display")
    token_env: str = Field("TWITCH_TOKEN", description="user access token (optional when it can be refreshed)")
    client_id_env: str = "TWITCH_CLIENT_ID"
    refresh_token_env: str = Field("TWITCH_REFRESH_TOKEN", description="refresh token: the token renews itself")
    client_secret_env: str = Field("TWITCH_CLIENT_SECRET", description="the app's client secret, needed to refresh")
    token_file: Path | None = Field(None, description="JSON file keeping the newest token pair (written 0600); "
                                    "read at start-up, rewritten after each refresh")
    eventsub_url: str = "wss://eventsub.wss.twitch.tv/ws"
    helix_url: str = "https://api.twitch.tv/helix"
    oauth_url: str = Field("https://id.twitch.tv/oauth2", description="Twitch's OAuth server (token, validate)")
    keepalive_timeout_s: int = Field(30, ge=10, le=600)
    cheers: bool = Field(False, description="also subscribe to channel.cheer (bits arrive with chat messages anyway)")
    subscriptions: bool = True
    raids: bool = True
    replies: bool = Field(False, description="post the character's replies into Twitch chat")
    queue_size: int = Field(2000, ge=10)
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)


class YouTubeSourceConfig(ConfigModel):
    type: Literal["youtube"]
    backend: Literal["api", "pytchat"] = "api"
    live_chat_id: str = Field("", description="api backend: the chat to read (or give video_id)")
    video_id: str = Field("", description="pytchat backend, or api backend to look up the live chat id")
    api_key_env: str = "YOUTUBE_API_KEY"
    oauth_token_env: str = Field("YOUTUBE_OAUTH_TOKEN", description="OAuth access token (optional when it can "
                                 "be refreshed)")
    refresh_token_env: str = Field("YOUTUBE_REFRESH_TOKEN", description="OAuth refresh token: the token renews itself")
    client_id_env: str = Field("YOUTUBE_CLIENT_ID", description="the OAuth client's id, needed to refresh")
    client_secret_env: str = Field("YOUTUBE_CLIENT_SECRET", description="the OAuth client's secret, needed to refresh")
    token_file: Path | None = Field(None, description="JSON file keeping the newest token (written 0600)")
    api_url: str = "https://www.googleapis.com/youtube/v3"
    token_url: str = Field("https://oauth2.googleapis.com/token", description="Google's OAuth token endpoint")
    max_results: int = Field(500, ge=200, le=2000)
    min_poll_s: float = Field(1.0, ge=0, description="never poll faster than this, whatever the API says")
    stall_timeout_s: float = Field(30.0, gt=0, description="pytchat: a read that takes longer is a stalled reader")
    queue_size: int = Field(2000, ge=10)
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)

    @model_validator(mode="after")
    def _needs_a_chat(self) -> YouTubeSourceConfig:
        if self.backend == "api" and not (self.live_chat_id or self.video_id):
            raise ValueError("youtube (api backend) needs live_chat_id or video_id")
        if self.backend == "pytchat" and not self.video_id:
            raise ValueError("youtube (pytchat backend) needs video_id")
        return self


ChatSourceConfig = ReplaySourceConfig | LocalSourceConfig | TwitchSourceConfig | YouTubeSourceConfig


class ChatConfig(ConfigModel):
    sources: list[ChatSourceConfig] = Field(default_factory=list)


ExemptRole = Literal["broadcaster", "mod", "vip", "subscriber", "cohost"]


def _default_exempt_roles() -> list[ExemptRole]:
    return ["broadcaster", "mod", "cohost"]  # a co-host speaking is not spam; banned words still apply


class ModerationRulesConfig(ConfigModel):
    """Every rule that can stop a message; each one names itself in the decision log."""

    max_length: int = Field(300, ge=1, le=10000, description="longer messages are cut to this")
    reject_length: int | None = Field(None, ge=1, description="raw messages longer than this are rejected outright")
    banned_words: list[str] = Field(default_factory=list, description=(
        "whole words, disguises and endings included; a '*' at an end also matches inside longer words"))
    block_links: bool = True
    allowed_domains: list[str] = Field(default_factory=list, description="links to these (and subdomains) pass")
    max_char_run: int = Field(12, ge=3, description="the same character more times in a row is spam")
    max_word_repeat_ratio: float = Field(0.6, gt=0, le=1, description="share of a long message that one word may fill")
    reject_emote_only: bool = True
    duplicate_window_s: float = Field(30.0, ge=0, description="the same viewer saying the same thing again")
    copypasta_users: int = Field(4, ge=2, description="this many viewers sending one text within the window is a flood")
    copypasta_window_s: float = Field(20.0, ge=0)
    rate_per_minute: float = Field(6.0, gt=0, description="messages a viewer may send per minute (sustained)")
    rate_burst: int = Field(3, ge=1)
    languages: list[str] = Field(default_factory=list, description="allow-list of ISO 639-1 codes; empty allows all")
    exempt_roles: list[ExemptRole] = Field(
        default_factory=_default_exempt_roles,
        description="roles that skip links/spam/duplicate/rate rules (never banned words)",
    )
    decision_log_size: int = Field(1000, ge=10)
    tracked_users: int = Field(20000, ge=100, description="per-user state kept for at most this many recent viewers")


class ReplyPolicyConfig(ConfigModel):
    """Which chat messages the character answers (the scheduler applies these rules to offered chat;
    `director.cooldown_s` spaces turns and `director.queue_cap` caps the queue)."""

    answer_one_in: int = Field(1, ge=1, description="answer 1 in N regular messages")
    paid_first: bool = True
    mention_names: list[str] = Field(default_factory=list, description="extra names that count as a mention")
    mods_first: bool = True
    no_repeat_viewer: bool = True
    max_wait_s: float = Field(120.0, gt=0, description="a waiting message older than this is no longer answered")
