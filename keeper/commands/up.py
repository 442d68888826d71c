"""`keeper up` (what `make up` runs): the whole local stack in the foreground; Ctrl-C stops it."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("up", help="run the whole local stack in the foreground")
    parser.add_argument(
        "--only", action="append", default=None, metavar="PART",
        help="start only these parts (emulators, functions, simulator, connector); repeatable",
    )
    parser.add_argument(
        "--for-seconds", type=float, default=None, metavar="S",
        help="stop everything after S seconds (smoke tests)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from keeper.devstack import run_stack

    return run_stack(only=args.only, for_seconds=args.for_seconds)
