"""The moderator control panel, the co-host page and OBS overlays: a FastAPI app run by uvicorn inside
the show's loop.

`attach.start_panel(show, settings)` is the one entry point the show calls; `stagecast token add|list|revoke`
(streamer/cli/tokens.py) manages the credentials. Tokens are stored argon2-hashed in SQLite outside the
repository; every HTTP request carries `Authorization: Bearer <token>` and the WebSockets (`/ws`,
and `/ws/audio` for a co-host's microphone) send the token as their first message, so no token ever
appears in a URL.
"""
