"""Every panel action lands in the SQLite audit log (who, what, when, result), and the log and the
bans survive a restart of the show."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.panel_support import ShowRunner, make_tokens

pytestmark = pytest.mark.integration


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_audit_log_records_every_action_and_survives_a_restart(tmp_path: Path):
    db = tmp_path / "state" / "panel.db"
    tokens = make_tokens(db)
    config_file = tmp_path / "show.yaml"
    config_file.write_text("moderation: {banned_words: [badword, durian]}\ndirector: {cooldown_s: 2.5}\n")
    first = ShowRunner(db, panel={"config_path": config_file}).start()
    t0 = time.time()
    mod, admin = auth(tokens["mod"]), auth(tokens["admin"])
    actions = [
        (mod, "POST", "/api/say", {"text": "Hello everyone, thanks for coming!", "language": "en"}, 200),
        (mod, "POST", "/api/interrupt", None, 200),
        (mod, "POST", "/api/emotion", {"emotion": "fun", "intensity": 0.5, "hold_s": 1}, 200),
        (mod, "POST", "/api/pause", None, 200),
        (mod, "POST", "/api/say", {"text": "queued while paused", "language": "en"}, 200),
        (mod, "POST", "/api/skip", None, 200),
        (mod, "POST", "/api/skip", None, 409),  # nothing left to skip
        (mod, "POST", "/api/clear", None, 200),
        (mod, "POST", "/api/resume", None, 200),
        (mod, "POST", "/api/timeout", {"user": "test:troll", "seconds": 3600, "reason": "spam"}, 200),
        (mod, "POST", "/api/ban", {"user": "test:spammer"}, 403),
        (admin, "POST", "/api/ban", {"user": "test:spammer", "reason": "links"}, 200),
        (admin, "POST", "/api/ban", {"user": "test:other"}, 200),
        (admin, "POST", "/api/unban", {"user": "test:other"}, 200),
        (admin, "PUT", "/api/banned-words", {"words": ["badword", "pineapple"]}, 200),
        (admin, "POST", "/api/reload", None, 200),
        (admin, "POST", "/api/stop", None, 200),
    ]
    try:
        with httpx.Client(base_url=first.url) as http:
            for headers, method, path, body, status in actions:
                if path == "/api/interrupt":  # interrupt what is being said, not a turn still in the queue
                    deadline = time.monotonic() + 30
                    while first.call(lambda: first.show.director.current is None):  # type: ignore[union-attr]
                        assert time.monotonic() < deadline, "the say-now never started"
                        time.sleep(0.02)
                r = http.request(method, path, headers=headers, json=body)
                assert r.status_code == status, (path, r.status_code, r.text)
                if path == "/api/reload":
                    assert r.json()["result"]["changed"] == {"moderation.banned_words": ["badword", "durian"],
                                                             "director.cooldown_s": 2.5}
        first.wait_stopped(60)  # the stop action ends the show by itself
        assert first.rc == 0
    finally:
        first.stop()

    second = ShowRunner(db).start()
    try:
        with httpx.Client(base_url=second.url) as http:
            entries = http.get("/api/audit?limit=100", headers=admin).json()["entries"]
        entries.reverse()  # oldest first
        got = [(e["actor"], e["action"], e["status"]) for e in entries]
        want = [("mod-user" if h is mod else "admin-user", p.removeprefix("/api/"), s) for h, _, p, _, s in actions]
        assert got == want
        assert all(t0 - 1 <= e["ts"] <= time.time() for e in entries)
        say = entries[0]
        assert say["params"]["text"] == "Hello everyone, thanks for coming!" and '"turn"' in say["result"]
        assert entries[-1]["result"] == '{"stopping": true}'
        assert "nothing to skip" in entries[6]["result"]
        spammer = second.chat("spammer", "buy my stuff")
        troll = second.chat("troll", "hi again")
        other = second.chat("other", "hello")
        # enforced by the Moderator ("blocked_user") where it has the ban API, else by the panel's adapter
        assert not spammer.accepted and spammer.rule in ("blocked_user", "banned")
        assert not troll.accepted and troll.rule in ("blocked_user", "timeout")
        assert other.accepted
    finally:
        second.stop()
