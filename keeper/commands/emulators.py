"""`keeper emulators`: the Firestore, Pub/Sub and Firebase Auth emulators in the foreground."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "emulators", help="run the Firestore, Pub/Sub and Auth emulators (ports from KEEPER_*_PORT)"
    )
    parser.add_argument("--no-auth", action="store_true", help="do not start the Firebase Auth emulator")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from keeper.devstack import run_emulators

    return run_emulators(with_auth=not args.no_auth)
