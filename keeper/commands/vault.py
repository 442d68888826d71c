"""`keeper vault ...`: import, export, migrate, inspect, verify and rotate stored session state.

Configuration comes from environment variables (see ``shared/vault/config.py``): ``KEEPER_PROJECT``,
``FIRESTORE_EMULATOR_HOST``, ``KEEPER_KEK_PROVIDER``, ``KEEPER_KEK_FILE``, ``KEEPER_KEK_SECRET``,
``KEEPER_SECRETMANAGER_HOST``, ``KEEPER_VERSIONS_KEPT``. Exit codes: 0 success, 1 a vault error or a
failed check, 2 bad configuration. Output never contains key material.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from shared.vault.kek import CURRENT_VERSION_TTL_S

if TYPE_CHECKING:
    from shared.vault import Vault

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
#: How long instances may go on wrapping under the old KEK after a new one is added (their cache of the
#: current version), plus a margin: the second pass of ``rotate-kek --new-key`` waits this long.
SETTLE_S = CURRENT_VERSION_TTL_S + 10.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("vault", help="stored session state: import, export, inspect, verify, rotate")
    commands = parser.add_subparsers(dest="vault_command", required=True, metavar="ACTION")

    imp = commands.add_parser("import-baileys", help="store a Baileys auth folder as a new version")
    imp.add_argument("folder", type=Path, help="folder written by Baileys' useMultiFileAuthState")
    imp.add_argument("--account", required=True, help="account id to store it under")
    imp.add_argument("--generation", type=int, default=None,
                     help="lease generation to record (default: the stored one, or 0)")
    imp.add_argument("--owner", default=None, metavar="UID",
                     help="Firebase Auth uid of the owner: also create the account record, so a connector "
                          "serves the session (restored, no re-pairing)")
    imp.set_defaults(func=_run(_import_baileys))

    exp = commands.add_parser("export-baileys", help="write the newest restorable version as a Baileys folder")
    exp.add_argument("account", help="account id")
    exp.add_argument("folder", type=Path, help="new or empty folder to write")
    exp.set_defaults(func=_run(_export_baileys))

    mig = commands.add_parser("migrate-legacy", help="encrypt reference-system plaintext creds, then remove them")
    mig.add_argument("--account", default=None, help="only this account (default: every legacy document)")
    mig.add_argument("--owner", default=None, metavar="UID",
                     help="Firebase Auth uid of the owner: also create each migrated account's record, so a "
                          "connector serves it")
    mig.set_defaults(func=_run(_migrate_legacy))

    ins = commands.add_parser("inspect", help="metadata of an account's stored state (never key material)")
    ins.add_argument("account", help="account id")
    ins.add_argument("--json", action="store_true", help="print JSON")
    ins.set_defaults(func=_run(_inspect))

    ver = commands.add_parser("verify", help="decrypt and validate every stored version; exit 1 on any failure")
    ver.add_argument("account", nargs="?", default=None, help="account id (default: every account)")
    ver.set_defaults(func=_run(_verify))

    rot = commands.add_parser("rotate-kek", help="re-wrap stored data keys under the newest KEK version")
    rot.add_argument("--new-key", action="store_true", help="first add a new KEK version to the provider")
    rot.add_argument("--account", default=None, help="only this account (default: every account)")
    rot.add_argument("--settle-s", type=float, default=SETTLE_S,
                     help="with --new-key: wait this long, then re-wrap again what instances still wrapped under "
                          f"the old KEK meanwhile (default {SETTLE_S:.0f}: they re-read the current version every "
                          f"{CURRENT_VERSION_TTL_S:.0f} s)")
    rot.set_defaults(func=_run(_rotate_kek))


def _run(action: Callable[[Vault, argparse.Namespace, TextIO], int]) -> Callable[[argparse.Namespace], int]:
    """Build the vault from the environment, run ``action``, turn keeper errors into exit codes."""

    def run(args: argparse.Namespace) -> int:
        from shared.errors import KeeperError
        from shared.vault.config import VaultConfig, VaultConfigError

        try:
            vault = VaultConfig.from_env().vault()
        except VaultConfigError as exc:
            print(f"keeper vault: configuration error: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        try:
            return action(vault, args, sys.stdout)
        except KeeperError as exc:
            print(f"keeper vault: {exc.__class__.__name__}: {exc}", file=sys.stderr)
            return EXIT_FAILED

    return run


def _progress(items: Iterable[str]) -> Iterable[tuple[int, int, str]]:
    listed = list(items)
    for index, item in enumerate(listed, start=1):
        yield index, len(listed), item


def _import_baileys(vault: Vault, args: argparse.Namespace, out: TextIO) -> int:
    from shared.baileys import read_folder
    from shared.errors import NotFoundError

    state = read_folder(args.folder)
    generation = args.generation
    if generation is None:
        try:
            generation = vault.inspect(args.account).generation
        except NotFoundError:
            generation = 0
    if args.owner is not None:
        from functions.errors import FunctionsError
        from functions.imports import linked_identity

        try:
            linked_identity(state)  # refused before anything is stored
        except FunctionsError as exc:
            print(f"keeper vault: {exc.message}", file=sys.stderr)
            return EXIT_FAILED
    result = vault.save(args.account, state, generation)
    verb = "stored as" if result.created else "unchanged, already"
    print(f"{args.account}: {state.key_count()} keys in {len(state.keys)} categories {verb} "
          f"v{result.version} (generation {result.generation}, {result.stored_size} bytes stored)", file=out)
    if args.owner is not None:
        return _serve(args.account, args.owner, state, out)
    return EXIT_OK


def _serve(account_id: str, owner: str, state: Any, out: TextIO) -> int:
    """Create or reuse the account record of an imported state so that a connector serves it."""
    from datetime import UTC

    from functions.config import FunctionsConfig
    from functions.errors import FunctionsError
    from functions.firestore_stores import FirestoreAccountStore
    from functions.imports import serve_imported
    from shared.vault.config import VaultConfig

    accounts = FirestoreAccountStore(VaultConfig.from_env().firestore_client())
    try:
        served = serve_imported(accounts, account_id, owner, state, datetime.now(UTC),
                                max_active=FunctionsConfig.from_env().max_accounts_per_user)
    except FunctionsError as exc:
        print(f"keeper vault: {account_id}: stored but not served: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{account_id}: account {served.outcome} for owner {owner} ({served.phone_number}); a connector "
          "restores it on its next sync", file=out)
    return EXIT_OK


def _export_baileys(vault: Vault, args: argparse.Namespace, out: TextIO) -> int:
    from shared.baileys import write_folder

    restored = vault.restore(args.account)
    for skipped in restored.skipped:
        print(f"{args.account}: v{skipped.version} skipped: {skipped.reason}", file=sys.stderr)
    files = write_folder(restored.state, args.folder)
    print(f"{args.account}: v{restored.version} written to {args.folder} ({len(files)} files)", file=out)
    return EXIT_OK


def _migrate_legacy(vault: Vault, args: argparse.Namespace, out: TextIO) -> int:
    from shared.errors import KeeperError

    accounts = [args.account] if args.account else list(vault.list_legacy())
    failures = 0
    for index, total, account in _progress(accounts):
        try:
            result = vault.migrate_legacy(account)
        except KeeperError as exc:
            failures += 1
            print(f"[{index}/{total}] {account}: failed, plaintext kept: {exc.__class__.__name__}: {exc}", file=out)
            continue
        suffix = f" (v{result.version})" if result.version is not None else ""
        print(f"[{index}/{total}] {account}: {result.outcome}{suffix}", file=out)
        if (args.owner is not None and result.outcome != "absent"
                and _serve(account, args.owner, vault.restore(account).state, out) != EXIT_OK):
            failures += 1
    print(f"migrate-legacy: {len(accounts) - failures} done, {failures} failed", file=out)
    return EXIT_FAILED if failures else EXIT_OK


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def _inspect(vault: Vault, args: argparse.Namespace, out: TextIO) -> int:
    info = vault.inspect(args.account)
    if args.json:
        print(json.dumps(_jsonable(asdict(info)), indent=2, sort_keys=True), file=out)
        return EXIT_OK
    print(f"account      {info.account_id}", file=out)
    print(f"latest       v{info.latest_version} (generation {info.generation})", file=out)
    print(f"sha256       {info.sha256}", file=out)
    print(f"size         {info.raw_size} bytes raw, {info.stored_size} bytes stored", file=out)
    print(f"saved        {info.saved_at.isoformat()} (first {info.created_at.isoformat()})", file=out)
    print(f"health       {info.health.get('status', 'unknown')}", file=out)
    print(f"KEK          {vault.kek.description}", file=out)
    for version in info.versions:
        chunks = f", {version.chunks} chunks" if version.chunks else ""
        print(f"  v{version.version}  generation {version.generation}  KEK v{version.kek_version}  "
              f"{version.stored_size} bytes{chunks}  {version.created_at.isoformat()}", file=out)
    return EXIT_OK


def _verify(vault: Vault, args: argparse.Namespace, out: TextIO) -> int:
    from shared.errors import KeeperError

    accounts = [args.account] if args.account else list(vault.list_accounts())
    failed_accounts = 0
    for index, total, account in _progress(accounts):
        try:
            report = vault.verify(account)
        except KeeperError as exc:
            failed_accounts += 1
            print(f"[{index}/{total}] {account}: FAILED {exc.__class__.__name__}: {exc}", file=out)
            continue
        if report.passed and not report.old_kek:
            print(f"[{index}/{total}] {account}: ok ({len(report.ok)} versions)", file=out)
            continue
        if report.passed:
            failed_accounts += 1
            print(f"[{index}/{total}] {account}: FAILED, opens but a rotation is not complete", file=out)
            for version, kek_version in report.old_kek:
                print(f"    v{version}: under KEK v{kek_version}, not the current v{report.current_kek}: run "
                      "`keeper vault rotate-kek` before disabling that KEK version", file=out)
            continue
        failed_accounts += 1
        print(f"[{index}/{total}] {account}: FAILED ({len(report.ok)} ok)", file=out)
        for failure in report.failed:
            print(f"    v{failure.version}: {failure.reason}", file=out)
    print(f"verify: {len(accounts) - failed_accounts} accounts ok, {failed_accounts} failed", file=out)
    return EXIT_FAILED if failed_accounts else EXIT_OK


def _rotate_kek(vault: Vault, args: argparse.Namespace, out: TextIO) -> int:
    new_key = bool(args.new_key)
    if new_key:
        print(f"rotate-kek: added KEK version {vault.kek.add_version()} to {vault.kek.description}", file=out)
    failures = _rotation_pass(vault, args, out)
    if new_key and args.settle_s > 0:
        # Function instances learn the new current version within CURRENT_VERSION_TTL_S; what they saved
        # until then is wrapped under the old one. A pass after that catches it (issue 16, item 8).
        print(f"rotate-kek: waiting {args.settle_s:.0f} s for every instance to wrap under the new KEK, "
              "then a second pass", file=out)
        time.sleep(args.settle_s)
        print("rotate-kek: second pass", file=out)
        failures += _rotation_pass(vault, args, out)
    return EXIT_FAILED if failures else EXIT_OK


def _rotation_pass(vault: Vault, args: argparse.Namespace, out: TextIO) -> int:
    from shared.errors import KeeperError

    accounts = [args.account] if args.account else list(vault.list_accounts())
    failures = 0
    for index, total, account in _progress(accounts):
        try:
            report = vault.rotate_kek(account)
        except KeeperError as exc:  # one unreadable account must not stop the rotation of the others
            failures += 1
            print(f"[{index}/{total}] {account}: FAILED {exc.__class__.__name__}: {exc}", file=out)
            continue
        failures += len(report.failed)
        print(f"[{index}/{total}] {account}: {len(report.rewrapped)} re-wrapped, {len(report.current)} already "
              f"under KEK v{report.kek_version}, {len(report.failed)} failed", file=out)
        for failure in report.failed:
            print(f"    v{failure.version}: {failure.reason}", file=out)
    return failures
