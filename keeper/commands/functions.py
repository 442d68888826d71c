"""`keeper functions`: serve every Cloud Function locally from one process (Firebase emulator URLs).

`keeper functions --run healthCheck` (or `cleanup`) runs a scheduled job once in this process against
the configured Firestore (the emulator when FIRESTORE_EMULATOR_HOST is set) and prints its summary.
"""

from __future__ import annotations

import argparse
import contextlib


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "functions",
        help="serve all functions at http://127.0.0.1:<port>/<project>/<region>/<function>",
    )
    parser.add_argument("--port", type=int, default=None, help="port (default KEEPER_FUNCTIONS_PORT or 5001)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--no-pubsub", action="store_true",
                        help="do not create topics and subscriptions on the Pub/Sub emulator")
    parser.add_argument("--delivery", choices=("relay", "push"), default="relay",
                        help="how Pub/Sub messages reach the functions: pulled and posted as CloudEvents by "
                             "this process (relay, default), or the emulator's push (2 in flight at most)")
    parser.add_argument("--run", choices=("healthCheck", "cleanup"), default=None,
                        help="run one scheduled job once, print its JSON summary, and exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging
    import os

    from keeper.config import StackConfig
    from keeper.gateway import FunctionsGateway, GatewayServer, ensure_local_pubsub
    from keeper.relay import PubSubRelay

    config = StackConfig.from_env()
    port = args.port if args.port is not None else config.ports["functions"]
    # The functions read their project from the environment; keep them on the stack's project.
    os.environ.setdefault("KEEPER_PROJECT", config.project)
    os.environ.setdefault("GOOGLE_CLOUD_PROJECT", config.project)
    if args.run is not None:
        return run_job(args.run)
    server = GatewayServer(FunctionsGateway(config.project, config.region), args.host, port)
    base = f"http://127.0.0.1:{server.port}/{config.project}/{config.region}"
    relay: PubSubRelay | None = None
    if not args.no_pubsub and os.environ.get("PUBSUB_EMULATOR_HOST"):
        local = ensure_local_pubsub(config.project, base, delivery=args.delivery)
        if local.delivery == "relay":
            relay = PubSubRelay(local.routes)
            relay.start()
    logging.getLogger(__name__).info("functions at %s/<function>: %s", base,
                                     ", ".join(sorted(server.gateway.apps)))
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    finally:
        if relay is not None:
            relay.stop()
    return 0


def run_job(name: str) -> int:
    import json

    from functions.wiring import services

    built = services()
    summary = built.health.run() if name == "healthCheck" else built.cleaner.run()
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0
