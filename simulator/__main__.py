"""``python -m simulator --port P [--host H] [--state-dir DIR]``: run the simulator in the foreground.

Prints one line ``simulator: root-key <base64>`` before serving (the key clients must trust), then
``simulator: listening on ws://HOST:PORT/ws/chat``; with a state dir the public root key is also
written to ``DIR/root-key.b64``. SIGINT/SIGTERM stop it after saving state.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path

from aiohttp import web

from simulator.server import WS_PATH, SimulatorServer
from simulator.store import JsonFileStateStore, MemoryStateStore, StateStore

ROOT_KEY_FILE = "root-key.b64"


def serve(*, host: str, port: int, state_dir: Path | None, sock: socket.socket | None = None) -> int:
    store: StateStore = MemoryStateStore() if state_dir is None else JsonFileStateStore(state_dir)
    server = SimulatorServer(store)
    print(f"simulator: root-key {server.root_public_key_b64}", flush=True)
    print(
        f"simulator: listening on ws://{host}:{port}{WS_PATH} (control http://{host}:{port}/v1)", flush=True
    )
    if state_dir is not None:
        # The public root key beside the state, for the local stack to hand to the connector.
        (state_dir / ROOT_KEY_FILE).write_text(server.root_public_key_b64 + "\n", encoding="ascii")
        print(f"simulator: state in {state_dir}", flush=True)
    web.run_app(
        server.app,
        host=None if sock is not None else host,
        port=None if sock is not None else port,
        sock=sock,
        print=None,
        shutdown_timeout=3.0,
        access_log=None,
        backlog=2048,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return serve(host=args.host, port=args.port, state_dir=args.state_dir)


if __name__ == "__main__":
    sys.exit(main())
