"""A moderator bans by typed name in the running show's panel: the answer names the viewers it
matched, and those viewers' next messages are refused on every platform; the chat view shows only
cleaned text and moderated names."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from streamer.events import ChatMessage, ModerationDecision
from tests.panel_support import ShowRunner, make_tokens

pytestmark = pytest.mark.integration


def test_a_banned_typed_name_blocks_that_viewers_next_message(tmp_path: Path) -> None:
    db = tmp_path / "panel.db"
    tokens = make_tokens(db)
    runner = ShowRunner(db, config={"moderation": {"banned_words": ["badword"]}}).start()

    def send(message: ChatMessage) -> ModerationDecision:
        assert runner.show is not None
        return runner.call(lambda: runner.show.control.submit_chat(message))  # type: ignore[union-attr]

    # as the local chat page and the Twitch adapter build them
    ann_local = ChatMessage("local", "Ann", "hello from the page", user_id="local:Ann")
    ann_twitch = ChatMessage("twitch", "ann", "hello from twitch", user_id="1234")
    bob = ChatMessage("local", "bob", "hi, I am bob", user_id="local:bob")
    try:
        assert all(send(m).accepted for m in (ann_local, ann_twitch, bob))
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        with httpx.Client(base_url=runner.url, timeout=10) as http:
            chat = http.get("/api/chat", headers=admin).json()
            keys = {item["user"]: item["user_key"] for item in chat["items"]}
            assert keys == {"Ann": "local:Ann", "ann": "twitch:1234", "bob": "local:bob"}  # the platform once
            r = http.post("/api/ban", headers=admin, json={"user": "ann", "reason": "spam"})
            assert r.status_code == 200, r.text
            assert sorted(r.json()["result"]["matched"]) == ["local:Ann", "twitch:1234 (ann)"]
            later = [send(ChatMessage(m.platform, m.user_name, "am I still here?", user_id=m.user_id))
                     for m in (ann_local, ann_twitch, bob)]
            assert [d.rule for d in later] == ["blocked_user", "blocked_user", None]
            r = http.post("/api/ban", headers=admin, json={"user": keys["bob"]})  # the chat line's ban button
            assert r.json()["result"]["matched"] == ["local:bob"]
            assert send(ChatMessage("local", "bob", "and me?", user_id="local:bob")).rule == "blocked_user"
            status = http.get("/api/status", headers=admin).json()
            assert {b["user"] for b in status["blocked_users"]} == {"ann", "local:bob"}
            assert send(ChatMessage("youtube", "bad\u200bword\u202e", "hi \x1b[31mall", user_id="UC1")).accepted
            shown = http.get("/api/chat", headers=admin).json()["items"][-1]
            assert (shown["user"], shown["text"]) == ("viewer", "hi [31mall")
    finally:
        runner.stop()
