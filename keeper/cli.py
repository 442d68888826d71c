"""The `keeper` command line.

Subcommands live in `keeper/commands/`, one module each, with `register(subparsers)` that adds a parser
whose `func(args) -> int` runs it. Modules are discovered, so a part of the system adds its command by
adding its module. Command modules import their heavy dependencies inside `func`, so `keeper --help`
stays fast and one part's import problem does not take the others' commands down.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from keeper import commands
from keeper.config import StackConfigError


def available_commands() -> list[str]:
    return sorted(info.name for info in pkgutil.iter_modules(commands.__path__) if not info.name.startswith("_"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keeper",
        description="Keeps WhatsApp Web accounts linked and connected: local stack, vault and service commands.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in available_commands():
        module = importlib.import_module(f"{commands.__name__}.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except StackConfigError as exc:
        print(f"keeper: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
