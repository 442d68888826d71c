"""A small Firestore emulator REST client for rules tests.

The emulator evaluates security rules on REST calls that carry an ID token, and skips them for the
literal token `owner` (the admin path the functions take through the Admin SDK). Tokens for users are
unsigned JWTs (`alg: none`), which the emulator accepts as that user with those claims.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

TIMEOUT_S = 30.0
#: Loading rules compiles them on the emulator's JVM, slow on a cold, loaded machine.
SETUP_TIMEOUT_S = 120.0
ADMIN_SDK_TOKEN = "owner"


def _b64url(data: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned_id_token(project: str, uid: str, **claims: Any) -> str:
    """An emulator ID token for `uid`, with extra custom claims (e.g. admin=True)."""
    payload = {
        "iss": f"https://securetoken.google.com/{project}",
        "aud": project,
        "sub": uid,
        "user_id": uid,
        "iat": 1_700_000_000,
        "exp": 4_000_000_000,
        "auth_time": 1_700_000_000,
        "firebase": {"sign_in_provider": "password", "identities": {}},
        **claims,
    }
    return f"{_b64url({'alg': 'none', 'typ': 'JWT'})}.{_b64url(payload)}."


def encode_value(value: Any) -> dict[str, Any]:
    """Python value -> Firestore REST `Value`."""
    if value is None:
        return {"nullValue": None}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, Mapping):
        return {"mapValue": {"fields": {k: encode_value(v) for k, v in value.items()}}}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [encode_value(v) for v in value]}}
    raise TypeError(f"cannot encode {type(value).__name__}")


def decode_value(value: Mapping[str, Any]) -> Any:
    """Firestore REST `Value` -> Python value (the kinds encode_value writes)."""
    (kind, raw), = value.items()
    if kind == "nullValue":
        return None
    if kind == "integerValue":
        return int(raw)
    if kind == "bytesValue":
        return base64.b64decode(raw)
    if kind == "mapValue":
        return {k: decode_value(v) for k, v in raw.get("fields", {}).items()}
    if kind == "arrayValue":
        return [decode_value(v) for v in raw.get("values", [])]
    return raw


@dataclass(frozen=True)
class Principal:
    """Who makes a call: `token` None means unauthenticated."""

    name: str
    token: str | None

    def headers(self) -> dict[str, str]:
        return {} if self.token is None else {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class FirestoreRest:
    host: str
    project: str

    @property
    def documents_url(self) -> str:
        return f"http://{self.host}/v1/projects/{self.project}/databases/(default)/documents"

    def load_rules(self, rules_file: Path) -> None:
        """Replace the project's rules with the file's current text (fails loudly if it does not compile)."""
        body = {"rules": {"files": [{"name": "firestore.rules", "content": rules_file.read_text()}]}}
        url = f"http://{self.host}/emulator/v1/projects/{self.project}:securityRules"
        response = requests.put(url, json=body, timeout=SETUP_TIMEOUT_S)
        assert response.status_code == 200, f"rules rejected: {response.text}"

    def clear(self) -> None:
        url = f"http://{self.host}/emulator/v1/projects/{self.project}/databases/(default)/documents"
        response = requests.delete(url, timeout=SETUP_TIMEOUT_S)
        assert response.status_code == 200, response.text

    # Calls as a principal return the response: 200 means allowed, 403 denied by the rules.

    def get(self, who: Principal, path: str) -> requests.Response:
        return requests.get(f"{self.documents_url}/{path}", headers=who.headers(), timeout=TIMEOUT_S)

    def list(self, who: Principal, collection_path: str) -> requests.Response:
        return requests.get(f"{self.documents_url}/{collection_path}", headers=who.headers(), timeout=TIMEOUT_S)

    def query(self, who: Principal, parent: str, collection_id: str, *, where: Mapping[str, Any] | None = None,
              all_descendants: bool = False) -> requests.Response:
        query: dict[str, Any] = {"from": [{"collectionId": collection_id, "allDescendants": all_descendants}]}
        if where:
            filters = [
                {"fieldFilter": {"field": {"fieldPath": field}, "op": "EQUAL", "value": encode_value(value)}}
                for field, value in where.items()
            ]
            query["where"] = {"compositeFilter": {"op": "AND", "filters": filters}}
        url = f"{self.documents_url}/{parent}:runQuery" if parent else f"{self.documents_url}:runQuery"
        return requests.post(url, headers=who.headers(), json={"structuredQuery": query}, timeout=TIMEOUT_S)

    def create(self, who: Principal, path: str, data: Mapping[str, Any]) -> requests.Response:
        collection, _, doc_id = path.rpartition("/")
        return requests.post(
            f"{self.documents_url}/{collection}",
            params={"documentId": doc_id},
            headers=who.headers(),
            json={"fields": {k: encode_value(v) for k, v in data.items()}},
            timeout=TIMEOUT_S,
        )

    def update(self, who: Principal, path: str, data: Mapping[str, Any]) -> requests.Response:
        return requests.patch(
            f"{self.documents_url}/{path}",
            params={"currentDocument.exists": "true", "updateMask.fieldPaths": list(data)},
            headers=who.headers(),
            json={"fields": {k: encode_value(v) for k, v in data.items()}},
            timeout=TIMEOUT_S,
        )

    def delete(self, who: Principal, path: str) -> requests.Response:
        return requests.delete(f"{self.documents_url}/{path}", headers=who.headers(), timeout=TIMEOUT_S)

    def seed(self, path: str, data: Mapping[str, Any]) -> None:
        """Write as the Admin SDK would (rules bypassed)."""
        response = requests.patch(
            f"{self.documents_url}/{path}",
            headers={"Authorization": f"Bearer {ADMIN_SDK_TOKEN}"},
            json={"fields": {k: encode_value(v) for k, v in data.items()}},
            timeout=TIMEOUT_S,
        )
        assert response.status_code == 200, response.text

    def read_as_admin_sdk(self, path: str) -> dict[str, Any] | None:
        response = requests.get(
            f"{self.documents_url}/{path}", headers={"Authorization": f"Bearer {ADMIN_SDK_TOKEN}"}, timeout=TIMEOUT_S
        )
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return {k: decode_value(v) for k, v in response.json().get("fields", {}).items()}


def returned_documents(response: requests.Response) -> list[str]:
    """Document names a runQuery answer holds (the stream's items without a document are progress marks)."""
    return [item["document"]["name"].rpartition("/documents/")[2] for item in response.json() if "document" in item]
