"""`stagecast token add|list|revoke` against a real SQLite file."""

from __future__ import annotations

import argparse
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from streamer.cli.tokens import register
from streamer.panel.store import PanelStore, split_token

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="stagecast")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_add_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    db = tmp_path / "panel.db"
    assert run(["token", "add", "alice", "--role", "mod", "--db", str(db)]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert split_token(token) is not None and "shown only now" in err and token not in err
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    wal = db.with_name("panel.db-wal")
    raw = db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert split_token(token)[1].encode() not in raw  # only the argon2 hash is stored
    assert run(["token", "add", "alice", "--db", str(db)]) == 2
    assert "active token named 'alice' exists" in capsys.readouterr().err
    assert run(["token", "add", "bob", "--role", "admin", "--db", str(db)]) == 0
    capsys.readouterr()

    assert run(["token", "list", "--db", str(db)]) == 0
    listing = capsys.readouterr().out
    assert "alice" in listing and "bob" in listing and "admin" in listing and token not in listing
    assert split_token(token)[0] in listing

    store = PanelStore(db)
    assert store.verify(token).name == "alice"
    assert run(["token", "revoke", "alice", "--db", str(db)]) == 0
    assert "revoked mod token" in capsys.readouterr().out
    assert store.verify(token) is None
    assert store.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    store.close()
    assert run(["token", "list", "--db", str(db)]) == 0
    assert "alice" not in capsys.readouterr().out
    assert run(["token", "list", "--all", "--db", str(db)]) == 0
    assert "revoked" in capsys.readouterr().out
    assert run(["token", "revoke", "nobody", "--db", str(db)]) == 2


def test_default_location_comes_from_the_environment_and_never_the_repo(tmp_path: Path):
    env = {**os.environ, "STAGECAST_PANEL_DB": str(tmp_path / "x" / "panel.db")}
    proc = subprocess.run([sys.executable, "-m", "streamer.cli", "token", "add", "obs", "--role",
                           "viewer"], capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "x" / "panel.db").exists() and split_token(proc.stdout.strip())
    env["STAGECAST_PANEL_DB"] = str(REPO / "panel.db")
    proc = subprocess.run([sys.executable, "-m", "streamer.cli", "token", "list"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
    assert proc.returncode == 2 and "inside the repository" in proc.stderr
    assert not (REPO / "panel.db").exists()
