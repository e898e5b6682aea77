"""Listening: a co-host's voice in (browser page, stream, device), turns and barge-in out."""
