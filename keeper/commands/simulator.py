"""`keeper simulator`: the WhatsApp Web server simulator in the foreground.

Serves the websocket at ``ws://HOST:PORT/ws/chat`` and the control API at ``http://HOST:PORT/v1``
(see ``simulator/README.md``). Prints the root public key clients must trust. State (phones, linked
devices, the root key) persists under ``$KEEPER_HOME/simulator`` unless ``--ephemeral``, so restarts
of ``make up`` keep linked devices.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("simulator", help="run the WhatsApp Web server simulator")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default $KEEPER_SIMULATOR_PORT or 7300)")
    parser.add_argument(
        "--state-dir", default=None, metavar="DIR", help="where state persists (default $KEEPER_HOME/simulator)"
    )
    parser.add_argument("--ephemeral", action="store_true", help="keep state in memory only")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from keeper.config import apply_local_defaults
    from simulator.__main__ import serve

    config = apply_local_defaults()
    port = args.port if args.port is not None else config.ports["simulator"]
    state_dir = None if args.ephemeral else Path(args.state_dir) if args.state_dir else config.home / "simulator"
    return serve(host=args.host, port=port, state_dir=state_dir)
