"""`stagecast token add NAME --role viewer|cohost|mod|admin`, `token list`, `token revoke NAME|ID`.

The token is printed once, on stdout, at creation; the database keeps only its argon2 hash. The
database is the panel's (`--db`, else `panel.db_path` of `-c CONFIG`, else $STAGECAST_PANEL_DB,
else ~/.local/share/stagecast/panel.db).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from streamer.config import load_config
from streamer.config.panel import resolve_db_path
from streamer.panel.store import ROLES, PanelStore, TokenError


def _db_path(args: argparse.Namespace) -> Path:
    if args.db is not None:
        return resolve_db_path(args.db)
    if args.config is not None:
        return resolve_db_path(load_config(args.config).panel.db_path)
    return resolve_db_path(None)


def _open(args: argparse.Namespace) -> PanelStore:
    try:
        return PanelStore(_db_path(args))
    except ValueError as exc:  # e.g. a database path inside the repository
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_add(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        info, token = store.add_token(args.name, args.role)
    except TokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"created {info.role} token for {info.name} (id {info.id}) in {store.path}", file=sys.stderr)
    print("it is shown only now; paste it into the panel's login (/cohost for a co-host, or an overlay URL's "
          "#token=)", file=sys.stderr)
    print(token)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        tokens = store.list_tokens(include_revoked=args.all)
    finally:
        store.close()
    if not tokens:
        print("no tokens; create one with: stagecast token add NAME --role mod", file=sys.stderr)
        return 0
    print(f"{'ID':12}  {'NAME':24}  {'ROLE':6}  {'CREATED':19}  STATE")
    for t in tokens:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t.created))
        state = "active"
        if t.revoked is not None:
            state = "revoked " + time.strftime("%Y-%m-%d %H:%M", time.localtime(t.revoked))
        print(f"{t.id:12}  {t.name:24}  {t.role:6}  {created:19}  {state}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    store = _open(args)
    try:
        revoked = store.revoke(args.name)
    except TokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    for t in revoked:
        print(f"revoked {t.role} token {t.id} of {t.name} (a running panel drops it within seconds)")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add `token` with `add`, `list` and `revoke` to a `parser.add_subparsers()` object."""
    token = subparsers.add_parser("token", help="panel credentials (add, list, revoke)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", type=Path, default=None, help="panel database (default: see docs)")
    common.add_argument("-c", "--config", type=Path, default=None, help="take panel.db_path from this config")
    sub = token.add_subparsers(dest="token_command", required=True)

    add = sub.add_parser("add", parents=[common], help="create a token (printed once)")
    add.add_argument("name", help="who uses it (shown in the audit log)")
    add.add_argument("--role", choices=ROLES, default="mod",
                     help="viewer: read-only and overlays; cohost: also streams a microphone from /cohost; "
                          "mod: show control; admin: bans, words, reload, stop")
    add.set_defaults(func=cmd_add)

    ls = sub.add_parser("list", parents=[common], help="list tokens (never their secrets)")
    ls.add_argument("--all", action="store_true", help="include revoked tokens")
    ls.set_defaults(func=cmd_list)

    revoke = sub.add_parser("revoke", parents=[common], help="revoke a token by name or id")
    revoke.add_argument("name", help="token name or id")
    revoke.set_defaults(func=cmd_revoke)
    return token

