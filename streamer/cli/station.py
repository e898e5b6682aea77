"""`stagecast station -c station.yaml [--address auto|HOST:PORT]`: many shows on a Ray cluster, one panel.

`stagecast station add NAME -c show.yaml`, `station remove NAME`, `station list` change or show a running
station's shows from another terminal (they find it through Ray: `--address`, default auto), and
`station token NAME --role mod --show SHOW` makes a panel token for one show (or `*`, all). Ray is the
optional extra `stagecast[station]`; without it these commands say how to install it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from streamer.config import ConfigError
from streamer.station import StationUnavailable

log = logging.getLogger("stagecast.station")


def _runtime(namespace: str, address: str | None, timeout_s: float = 2.0) -> Any:
    from streamer.station.runtime import StationRuntime

    runtime = StationRuntime(namespace, address, timeout_s)
    runtime.connect()
    return runtime


def cmd_run(args: argparse.Namespace) -> int:
    from streamer.config.panel import resolve_db_path
    from streamer.panel.store import AsyncPanelStore
    from streamer.station.config import load_station

    if args.config is None:
        print("error: stagecast station needs a station file: stagecast station -c station.yaml", file=sys.stderr)
        return 2
    station = load_station(args.config)
    settings = station.settings
    runtime = _runtime(settings.name, args.address or settings.address, settings.status_timeout_s)
    runtime.check(station.shows)  # impossible resources refuse the whole file, before anything starts
    for name, error in station.refused.items():
        log.error("show %s refused (the others run):\n%s", name, error)
        runtime.refused[name] = error
    db = resolve_db_path(settings.panel.db_path)
    try:
        for spec in station.shows:
            if spec.name in runtime.names():
                log.warning("show %s is already on this station; keeping it", spec.name)
                continue
            runtime.place(spec)
        asyncio.run(_serve(runtime, AsyncPanelStore(db), settings))
    finally:
        log.info("stopping the station's shows")
        runtime.remove_all()
    return 0


async def _serve(runtime: Any, store: Any, settings: Any) -> None:
    from streamer.station.panel import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await serve(runtime, store, settings.panel, settings.status_every_s, stop)


def _labels(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--label {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def cmd_add(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from streamer.station.config import ShowEntry, show_spec

    try:
        entry = ShowEntry(name=args.name, config=args.config.resolve() if args.config else None,
                          num_cpus=args.cpus, num_gpus=args.gpus, labels=_labels(args.label))
    except ValidationError as exc:
        raise ConfigError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
    spec = show_spec(entry, Path.cwd(), "stagecast station add")
    runtime = _runtime(args.namespace, args.address)
    runtime.place(spec)
    info = runtime.call(spec.name, "wait_on_air", args.wait, timeout_s=args.wait + 10) if args.wait else {}
    print(f"show {spec.name} added{' and ' + info['state'] if info else ''}")
    return 0 if not info or info["state"] == "on air" else 1


def cmd_remove(args: argparse.Namespace) -> int:
    runtime = _runtime(args.namespace, args.address)
    if args.name not in runtime.names():
        print(f"error: no show named {args.name!r} on station {args.namespace!r}", file=sys.stderr)
        return 2
    final = runtime.remove(args.name)
    frames = ((final or {}).get("show") or {}).get("frames")
    print(f"show {args.name} removed" + (f" after {frames} frames" if frames is not None else ""))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    runtime = _runtime(args.namespace, args.address)
    runtime.poll()
    views = runtime.views()
    if not views:
        print(f"no shows on station {args.namespace!r}", file=sys.stderr)
        return 0
    print(f"{'SHOW':20}  {'STATE':12}  {'NODE':8}  {'FRAMES':>8}  {'LATE':>6}  RESTARTS")
    for v in views:
        print(f"{v['name']:20}  {v['state']:12}  {(v.get('node_id') or '')[:8]:8}  {v.get('frames') or 0:>8}  "
              f"{v.get('late_frames') or 0:>6}  {v.get('restarts') or 0}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from streamer.config.panel import resolve_db_path
    from streamer.panel.store import PanelStore, TokenError
    from streamer.station.config import load_station
    from streamer.station.scopes import add_scoped_token

    configured = args.db if args.db is not None else (
        load_station(args.config).settings.panel.db_path if args.config is not None else None)
    store = PanelStore(resolve_db_path(configured))
    try:
        info, token = add_scoped_token(store, args.name, args.role, args.show)
    except TokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    where = "every show" if args.show == "*" else f"show {args.show}"
    print(f"created {info.role} token for {info.name} (id {info.id}) for {where} in {store.path}", file=sys.stderr)
    print(token)
    return 0


def cmd_station(args: argparse.Namespace) -> int:
    try:
        return int(args.station_func(args))
    except StationUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ConnectionError as exc:  # ray.init could not reach the cluster
        print(f"error: cannot reach the Ray cluster ({args.address or 'local'}): {exc}", file=sys.stderr)
        return 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `station` subcommand (and add/remove/list/token under it) to the `stagecast` parser."""
    from streamer.panel.store import ROLES

    station = subparsers.add_parser("station", help="many shows on a Ray cluster, with one panel")
    station.add_argument("-c", "--config", type=Path, default=None, help="station file (YAML)")
    station.add_argument("--address", default=None, help="Ray cluster: auto, HOST:PORT (default: the station "
                         "file's, else a local Ray started for the station)")
    station.set_defaults(func=cmd_station, station_func=cmd_run)
    sub = station.add_subparsers(dest="station_command")

    def remote(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--address", default="auto", help="the station's Ray cluster (default auto)")
        parser.add_argument("--namespace", default="stagecast", help="the station's name (station.name)")

    add = sub.add_parser("add", help="add a show to a running station")
    add.add_argument("name")
    add.add_argument("-c", "--config", type=Path, default=None, help="the show's config (YAML)")
    add.add_argument("--cpus", type=float, default=1.0)
    add.add_argument("--gpus", type=float, default=0.0)
    add.add_argument("--label", action="append", default=[], help="a node label the show needs, KEY=VALUE")
    add.add_argument("--wait", type=float, default=120.0, help="seconds to wait for it to go on air (0: no wait)")
    remote(add)
    add.set_defaults(station_func=cmd_add)
    remove = sub.add_parser("remove", help="stop a show (its recording closes) and take it off the station")
    remove.add_argument("name")
    remote(remove)
    remove.set_defaults(station_func=cmd_remove)
    listing = sub.add_parser("list", help="the station's shows, their state and frame counters")
    remote(listing)
    listing.set_defaults(station_func=cmd_list)
    token = sub.add_parser("token", help="a panel token for one show (--show NAME) or all (--show '*')")
    token.add_argument("name")
    token.add_argument("--role", choices=ROLES, required=True)
    token.add_argument("--show", required=True, help="the show it steers, or '*' for every show")
    token.add_argument("--db", type=Path, default=None, help="token database (default: the station file's)")
    token.add_argument("-c", "--config", type=Path, default=None, help="station file whose panel.db_path to use")
    token.set_defaults(station_func=cmd_token)
