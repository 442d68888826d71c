"""The web app served locally, the way Firebase Hosting serves it when deployed.

`keeper web` serves the built app (``web/dist``, built by ``make web`` from npm packages with Vite) at
``http://127.0.0.1:$KEEPER_WEB_PORT/`` with:

- ``/__/firebase/init.json``: the project's Firebase configuration, a URL Firebase Hosting reserves and
  fills in for the deployed site; here the local project (``demo-*`` ids need no real API key);
- ``/__/keeper/emulators.json``: where the Auth, Firestore and functions emulators listen. Only this
  server has it; the page wires itself to the emulators when it is there;
- a Content-Security-Policy that allows exactly the page's own origin and those emulator origins
  (firebase.json's hosting headers carry the deployed policy).
"""

from __future__ import annotations

import json
import mimetypes
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from keeper.config import LOOPBACK, StackConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
DIST = REPO_ROOT / "web" / "dist"
LOCAL_API_KEY = "demo-keeper-local-api-key"  # the emulators accept any key


class WebBuildMissing(RuntimeError):
    """The app is not built: ``make web`` builds it."""


def local_csp(config: StackConfig) -> str:
    """The policy for the page served locally: itself, and the emulators it talks to."""
    auth = f"http://{config.address('auth')}"
    firestore = config.address("firestore")
    functions = f"http://{config.address('functions')}"
    return "; ".join((
        "default-src 'self'",
        # Google sign-in: the Auth SDK loads Google's iframe helper even against the emulator
        "script-src 'self' https://apis.google.com",
        "style-src 'self'",
        "img-src 'self' data:",
        f"connect-src 'self' {auth} http://{firestore} ws://{firestore} {functions}",
        f"frame-src {auth}",  # the Auth emulator's sign-in helper frame (Google sign-in popup)
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


def init_json(config: StackConfig) -> dict[str, str]:
    return {"apiKey": LOCAL_API_KEY, "authDomain": config.address("auth"), "projectId": config.project,
            "storageBucket": f"{config.project}.appspot.com", "functionsRegion": config.region}


def emulators_json(config: StackConfig) -> dict[str, Any]:
    return {
        "auth": f"http://{config.address('auth')}",
        "firestore": {"host": LOOPBACK, "port": config.ports["firestore"]},
        "functions": {"host": LOOPBACK, "port": config.ports["functions"]},
        "region": config.region,
    }


def _handler(config: StackConfig, root: Path) -> type[BaseHTTPRequestHandler]:
    documents = {"/__/firebase/init.json": json.dumps(init_json(config)).encode(),
                 "/__/keeper/emulators.json": json.dumps(emulators_json(config)).encode()}
    csp = local_csp(config)
    base = root.resolve()

    class Handler(BaseHTTPRequestHandler):
        server_version = "keeper-web"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request is noise

        def _send(self, status: HTTPStatus, body: bytes, content_type: str, cache: str, head: bool) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", cache)
            self.send_header("Content-Security-Policy", csp)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Referrer-Policy", "no-referrer")
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _serve(self, head: bool) -> None:
            path = self.path.split("?", 1)[0].split("#", 1)[0]
            if path in documents:
                self._send(HTTPStatus.OK, documents[path], "application/json", "no-store", head)
                return
            relative = "index.html" if path in ("", "/") else path.lstrip("/")
            target = (base / relative).resolve()
            if not target.is_relative_to(base) or not target.is_file():
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", "no-store", head)
                return
            kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind == "application/javascript":
                kind += "; charset=utf-8"
            # hashed asset names never change; the page itself is always revalidated
            cache = "public, max-age=31536000, immutable" if "/assets/" in path else "no-cache"
            self._send(HTTPStatus.OK, target.read_bytes(), kind, cache, head)

        def do_GET(self) -> None:
            self._serve(head=False)

        def do_HEAD(self) -> None:
            self._serve(head=True)

    return Handler


class WebServer:
    """The app on ``host:port``: :meth:`serve_forever` in the foreground, or :meth:`start` a thread."""

    def __init__(self, config: StackConfig, host: str = LOOPBACK, port: int | None = None,
                 root: Path = DIST) -> None:
        if not (root / "index.html").is_file():
            raise WebBuildMissing(f"the web app is not built ({root / 'index.html'} is missing): run `make web`")
        self._server = ThreadingHTTPServer((host, config.ports["web"] if port is None else port),
                                           _handler(config, root))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="keeper-web", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
