"""`keeper admin EMAIL`: give a user of the local Auth emulator the `admin` claim (the dashboard).

Locally only: it calls the Auth emulator's REST API (``$KEEPER_AUTH_PORT``) with the emulator's owner
credentials. In a real project, set the claim with the Admin SDK (docs/DEPLOY.md). The user sees the
dashboard after signing in again (ID tokens carry the claims they were minted with).
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("admin", help="grant (or --revoke) the admin claim to a local Auth emulator user")
    parser.add_argument("email", help="the user's email (sign up in the web app first)")
    parser.add_argument("--revoke", action="store_true", help="take the claim away")
    parser.set_defaults(func=run)


def set_admin(auth_address: str, project: str, email: str, admin: bool) -> str:
    """Set or clear the claim; returns the user's uid. Raises LookupError for an unknown email."""
    import json
    import urllib.request

    base = f"http://{auth_address}/identitytoolkit.googleapis.com/v1/projects/{project}"

    def post(path: str, body: dict[str, object]) -> dict[str, object]:
        request = urllib.request.Request(  # noqa: S310 (the local emulator)
            f"{base}/{path}", data=json.dumps(body).encode(), method="POST",
            headers={"content-type": "application/json", "authorization": "Bearer owner"})
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            answer: dict[str, object] = json.load(response)
            return answer

    users = post("accounts:lookup", {"email": [email]}).get("users")
    if not isinstance(users, list) or not users:
        raise LookupError(f"no user {email} in the Auth emulator: sign up in the web app first")
    uid = str(users[0]["localId"])
    post("accounts:update", {"localId": uid, "customAttributes": json.dumps({"admin": True} if admin else {})})
    return uid


def run(args: argparse.Namespace) -> int:
    import sys

    from keeper.config import StackConfig

    config = StackConfig.from_env()
    try:
        uid = set_admin(config.address("auth"), config.project, args.email, not args.revoke)
    except LookupError as exc:
        print(f"keeper admin: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"keeper admin: the Auth emulator at {config.address('auth')} did not answer ({exc}): "
              "is `make up` running?", file=sys.stderr)
        return 1
    verb = "no longer has" if args.revoke else "now has"
    print(f"keeper admin: {args.email} ({uid}) {verb} the admin claim; sign in again to see the dashboard")
    return 0
