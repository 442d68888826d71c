"""A small in-process Secret Manager gRPC server, so tests drive the real client.

Secret Manager has no emulator. This server answers the methods keeper calls, with the real request
and response messages of ``google.cloud.secretmanager_v1``:

- ``AccessSecretVersion``: ``.../versions/N`` or ``.../versions/latest`` (newest enabled version);
  payload with its CRC32C. Unknown secret or version: NOT_FOUND; disabled version: FAILED_PRECONDITION.
- ``AddSecretVersion``: appends an enabled version to an existing secret.

Use it as a context manager::

    with FakeSecretManager() as fake:
        fake.add_version("projects/p/secrets/kek", os.urandom(32))
        client = fake.client()            # a real SecretManagerServiceClient bound to the server
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import google_crc32c
import grpc
from google.cloud.secretmanager_v1 import types

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"


@dataclass
class _Secret:
    versions: list[bytes] = field(default_factory=list)
    disabled: set[int] = field(default_factory=set)


class FakeSecretManager:
    """Secrets in memory behind a plaintext gRPC server on 127.0.0.1 (a free port)."""

    def __init__(self) -> None:
        self._secrets: dict[str, _Secret] = {}
        self._lock = threading.Lock()
        self.calls: list[tuple[str, str]] = []  # (method, resource name) for assertions
        self._server: grpc.Server | None = None
        self.port = 0

    # test controls --------------------------------------------------------------------------

    def add_version(self, secret: str, data: bytes) -> str:
        """Add a version to ``secret`` (created if new); returns the version number."""
        with self._lock:
            entry = self._secrets.setdefault(secret, _Secret())
            entry.versions.append(data)
            return str(len(entry.versions))

    def disable(self, secret: str, version: str) -> None:
        with self._lock:
            self._secrets[secret].disabled.add(int(version))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> Any:
        from shared.vault.config import secretmanager_client

        return secretmanager_client(self.address)

    # server ---------------------------------------------------------------------------------

    def __enter__(self) -> FakeSecretManager:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handlers = {
            "AccessSecretVersion": self._unary(self._access, types.AccessSecretVersionRequest,
                                               types.AccessSecretVersionResponse),
            "AddSecretVersion": self._unary(self._add, types.AddSecretVersionRequest, types.SecretVersion),
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait(timeout=5)
            self._server = None

    @staticmethod
    def _unary(fn: Callable[[Any, grpc.ServicerContext], Any], request: Any, response: Any) -> Any:
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=request.deserialize, response_serializer=response.serialize
        )

    def _access(self, request: Any, context: grpc.ServicerContext) -> Any:
        name = str(request.name)
        self.calls.append(("AccessSecretVersion", name))
        secret, _, version = name.rpartition("/versions/")
        with self._lock:
            entry = self._secrets.get(secret)
            if entry is None or not entry.versions:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{secret}] not found or has no versions.")
            assert entry is not None
            if version == "latest":
                enabled = [n for n in range(1, len(entry.versions) + 1) if n not in entry.disabled]
                if not enabled:
                    context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"{secret} has no enabled version")
                number = enabled[-1]
            else:
                if not version.isdigit() or not 1 <= int(version) <= len(entry.versions):
                    context.abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{name}] not found.")
                number = int(version)
                if number in entry.disabled:
                    context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"Secret Version [{name}] is disabled.")
            data = entry.versions[number - 1]
        return types.AccessSecretVersionResponse(
            name=f"{secret}/versions/{number}",
            payload=types.SecretPayload(data=data, data_crc32c=google_crc32c.value(data)),
        )

    def _add(self, request: Any, context: grpc.ServicerContext) -> Any:
        parent = str(request.parent)
        self.calls.append(("AddSecretVersion", parent))
        with self._lock:
            if parent not in self._secrets:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{parent}] not found.")
        number = self.add_version(parent, bytes(request.payload.data))
        return types.SecretVersion(name=f"{parent}/versions/{number}", state=types.SecretVersion.State.ENABLED)
