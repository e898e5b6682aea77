"""Small pieces of the panel: rate limiting, token shapes, config checks, the block list, previews."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from streamer.config import PanelConfig
from streamer.config.panel import resolve_db_path
from streamer.events import ChatMessage
from streamer.moderation import Moderator
from streamer.panel.auth import Principal, TokenBucket, bearer
from streamer.panel.live import encode_jpeg
from streamer.panel.store import split_token

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent


def test_token_bucket_allows_a_burst_then_the_rate():
    bucket = TokenBucket(rate=10, burst=5)
    now = bucket.stamp
    assert [bucket.take(now)[0] for _ in range(6)] == [True] * 5 + [False]
    ok, retry = bucket.take(now)
    assert not ok and retry == pytest.approx(0.1)
    assert bucket.take(now + 0.11)[0] and not bucket.take(now + 0.11)[0]
    assert sum(bucket.take(now + 10 + i * 0.01)[0] for i in range(100)) in (14, 15)  # burst 5, then 10/s for ~1 s


def test_token_shapes_and_headers():
    token = "sc_0123456789ab_" + "a" * 43
    assert split_token(token) == ("0123456789ab", "a" * 43)
    for bad in ("", "sc_0123456789ab_short", "xx_0123456789ab_" + "a" * 43, token + "a", "sc_0123456789AB_" + "a" * 43):
        assert split_token(bad) is None
    assert bearer(f"Bearer {token}") == token and bearer(f"bearer {token}") == token
    assert bearer(f"Basic {token}") is None and bearer(None) is None and bearer("Bearer") is None


def test_roles_are_ordered():
    mod = Principal("id", "m", "mod")
    assert mod.allows("viewer") and mod.allows("mod") and not mod.allows("admin")


def test_panel_binds_to_loopback_unless_told_otherwise():
    assert PanelConfig().host == "127.0.0.1"
    PanelConfig(host="::1")
    with pytest.raises(ValueError, match="not a loopback address"):
        PanelConfig(host="0.0.0.0")
    assert PanelConfig(host="0.0.0.0", allow_remote=True).host == "0.0.0.0"


def test_database_path_defaults_and_refuses_the_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("STAGECAST_PANEL_DB", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert resolve_db_path() == tmp_path / ".local" / "share" / "stagecast" / "panel.db"
    monkeypatch.setenv("STAGECAST_PANEL_DB", str(tmp_path / "env.db"))
    assert resolve_db_path() == tmp_path / "env.db"
    assert resolve_db_path(tmp_path / "cfg.db") == tmp_path / "cfg.db"
    with pytest.raises(ValueError, match="inside the repository"):
        resolve_db_path(REPO / "tests" / "panel.db")


def test_bans_hold_and_timeouts_expire_in_stream_time():
    class StreamTime:
        """The show's stream clock, moved by the test (frames produced, not the wall)."""

        t = 1000.0

        def now(self) -> float:
            return self.t

    clock = StreamTime()
    moderator = Moderator(clock=clock)  # type: ignore[arg-type]
    troll = ChatMessage(platform="twitch", user_name="Troll", text="hi", user_id="42")
    fan = ChatMessage(platform="twitch", user_name="fan", text="hi there", user_id="7")
    moderator.timeout("twitch:42", 60)
    moderator.ban("twitch:7")
    assert moderator.check_message(troll).rule == "blocked_user" and moderator.check_message(fan).rule == "blocked_user"
    clock.t += 61  # a minute of stream, however long it took on the wall
    assert moderator.check_message(troll).accepted and moderator.check_message(fan).rule == "blocked_user"
    assert moderator.unban("twitch:7") and moderator.check_message(fan).accepted and not moderator.unban("twitch:7")


def test_preview_jpeg_is_downscaled():
    image = np.zeros((720, 1280, 3), dtype=np.uint8)
    image[:, :640] = (255, 0, 0)
    data = encode_jpeg(image, 320, 70)
    import io

    pic = Image.open(io.BytesIO(data))
    assert pic.format == "JPEG" and pic.size == (320, 180)
    r, g, b = pic.getpixel((40, 90))
    assert r > 200 and g < 60 and b < 60
