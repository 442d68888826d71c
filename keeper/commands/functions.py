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
    parser.add_argument("--no-schedules", action="store_true",
                        help="do not run healthCheck and cleanup on their local intervals "
                             "(KEEPER_HEALTH_CHECK_INTERVAL_S, KEEPER_CLEANUP_INTERVAL_S)")
    parser.add_argument("--run", choices=("healthCheck", "cleanup"), default=None,
                        help="run one scheduled job once, print its JSON summary, and exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging
    import os

    from keeper.config import apply_local_defaults
    from keeper.gateway import FunctionsGateway, GatewayServer, ensure_local_pubsub
    from keeper.relay import PubSubRelay
    from keeper.schedules import LocalSchedules

    # Run alone or under `keeper up`, the functions talk to the local emulators (the project, Firestore,
    # Pub/Sub and Auth emulator hosts, the local connector and scheduler tokens), unless set otherwise.
    config = apply_local_defaults()
    port = args.port if args.port is not None else config.ports["functions"]
    if args.run is not None:
        return run_job(args.run)
    # one line per request is noise: the functions log what they do
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
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
    schedules = None if args.no_schedules else LocalSchedules.from_env(base, os.environ)
    if schedules is not None:
        schedules.start()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    finally:
        if schedules is not None:
            schedules.stop()
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
