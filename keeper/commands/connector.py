"""`keeper connector`: the connector service in the foreground.

Reads ``connector/config.py``'s environment variables. For the local stack, what is not set is
filled in from ``keeper.config.StackConfig``: the functions URL, the simulator's websocket URL and
its root key (fetched from the simulator's control API, waiting for it to come up), the port and a
cache directory under ``$KEEPER_HOME``.
"""

from __future__ import annotations

import argparse

ROOT_KEY_WAIT_S = 60.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("connector", help="run the connector (keeps the WhatsApp sockets)")
    parser.add_argument("--connector-id", default=None, help="this connector's id (default $KEEPER_CONNECTOR_ID)")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default $PORT or the stack's)")
    parser.set_defaults(func=run)


def local_environment(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the local stack's defaults filled in where unset."""
    import json
    import time
    import urllib.request

    from keeper.config import apply_local_defaults

    out = dict(env)
    stack = apply_local_defaults(out)
    out.setdefault("PORT", str(stack.ports["connector"]))
    out.setdefault("KEEPER_CACHE_DIR", str(stack.home / "connector-cache"))
    if "KEEPER_WA_URL" not in out:
        out["KEEPER_WA_URL"] = f"ws://{stack.address('simulator')}/ws/chat"
        if "KEEPER_WA_ROOT_KEY" not in out:
            url = f"http://{stack.address('simulator')}/v1/root-key"
            deadline = time.monotonic() + ROOT_KEY_WAIT_S
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=2) as response:
                        out["KEEPER_WA_ROOT_KEY"] = json.load(response)["publicKey"]
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"keeper connector: the simulator's root key is not at {url}") from None
                    time.sleep(0.5)
    return out


def run(args: argparse.Namespace) -> int:
    import os

    env = local_environment(dict(os.environ))
    if args.connector_id:
        env["KEEPER_CONNECTOR_ID"] = args.connector_id
    if args.port is not None:
        env["PORT"] = str(args.port)
    os.environ.update(env)
    from connector.__main__ import main

    return main()
