"""`keeper web`: the web app at http://127.0.0.1:$KEEPER_WEB_PORT/, wired to the local emulators."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("web", help="serve the web app (built by `make web`) for the local stack")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default $KEEPER_WEB_PORT or 5000)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import contextlib
    import sys

    from keeper.config import apply_local_defaults
    from keeper.web import WebBuildMissing, WebServer

    config = apply_local_defaults()
    try:
        server = WebServer(config, args.host, args.port)
    except WebBuildMissing as exc:
        print(f"keeper web: {exc}", file=sys.stderr)
        return 1
    print(f"keeper web: http://{args.host}:{server.port}/", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0
