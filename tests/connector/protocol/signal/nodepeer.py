"""Drive ``peer.mjs`` (Baileys' Signal layer on libsignal-node from npm) over stdin/stdout JSON lines."""

from __future__ import annotations

import base64
import json
import select
import subprocess
from pathlib import Path
from typing import Any

from connector.protocol.signal.types import PreKeyBundle

PEER_SCRIPT = Path(__file__).with_name("peer.mjs")
REPO_ROOT = Path(__file__).resolve().parents[4]
REPLY_TIMEOUT_S = 60.0


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


class PeerError(Exception):
    """The Node peer answered a request with an error (its message is the exception's text)."""


class NodePeer:
    """One Node process holding one Baileys auth folder."""

    def __init__(self, folder: Path, log: Path, jid: str, baileys: int = 7) -> None:
        self.folder = folder
        self.jid = jid
        self._log = log.open("ab")
        self._proc = subprocess.Popen(["node", str(PEER_SCRIPT)], cwd=REPO_ROOT, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._log)
        reply = self.call("init", folder=str(folder), baileys=baileys)
        self.identity = unb64(reply["identity"])
        self.registration_id: int = reply["registrationId"]

    def request(self, op: str, **args: Any) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps({"op": op, **args}).encode() + b"\n")
        self._proc.stdin.flush()
        ready, _, _ = select.select([self._proc.stdout], [], [], REPLY_TIMEOUT_S)
        if not ready:
            raise TimeoutError(f"node peer gave no answer to {op} in {REPLY_TIMEOUT_S} s")
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"node peer exited (code {self._proc.poll()}) during {op}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        reply = self.request(op, **args)
        if not reply["ok"]:
            raise PeerError(reply["error"])
        return reply

    # --- the operations ------------------------------------------------------------------

    def bundle(self, pre_key: bool = True) -> PreKeyBundle:
        reply = self.call("bundle", preKey=pre_key)
        signed = reply["signedPreKey"]
        one_time = reply.get("preKey")
        return PreKeyBundle(
            registration_id=reply["registrationId"], identity_key=unb64(reply["identityKey"]),
            signed_pre_key_id=signed["keyId"], signed_pre_key=unb64(signed["publicKey"]),
            signed_pre_key_signature=unb64(signed["signature"]),
            pre_key_id=None if one_time is None else one_time["keyId"],
            pre_key=None if one_time is None else unb64(one_time["publicKey"]))

    def inject(self, jid: str, bundle: PreKeyBundle) -> None:
        payload: dict[str, Any] = {
            "registrationId": bundle.registration_id, "identityKey": b64(bundle.identity_key),
            "signedPreKey": {"keyId": bundle.signed_pre_key_id, "publicKey": b64(bundle.signed_pre_key),
                             "signature": b64(bundle.signed_pre_key_signature)}}
        if bundle.pre_key is not None:
            payload["preKey"] = {"keyId": bundle.pre_key_id, "publicKey": b64(bundle.pre_key)}
        self.call("inject", jid=jid, bundle=payload)

    def encrypt(self, jid: str, plaintext: bytes) -> tuple[str, bytes]:
        reply = self.call("encrypt", jid=jid, data=b64(plaintext))
        return reply["type"], unb64(reply["data"])

    def decrypt(self, jid: str, kind: str, data: bytes) -> bytes:
        return unb64(self.call("decrypt", jid=jid, type=kind, data=b64(data))["data"])

    def decrypt_error(self, jid: str, kind: str, data: bytes) -> str:
        reply = self.request("decrypt", jid=jid, type=kind, data=b64(data))
        assert not reply["ok"], "the peer decrypted what it should have refused"
        return str(reply["error"])

    def group_encrypt(self, group: str, plaintext: bytes) -> tuple[bytes, bytes]:
        reply = self.call("group_encrypt", group=group, me=self.jid, data=b64(plaintext))
        return unb64(reply["data"]), unb64(reply["skdm"])

    def process_skdm(self, group: str, author: str, skdm: bytes) -> None:
        self.call("process_skdm", group=group, author=author, skdm=b64(skdm))

    def group_decrypt(self, group: str, author: str, data: bytes) -> bytes:
        return unb64(self.call("group_decrypt", group=group, author=author, data=b64(data))["data"])

    def sign(self, data: bytes) -> bytes:
        return unb64(self.call("sign", data=b64(data))["signature"])

    def verify(self, public: bytes, data: bytes, signature: bytes) -> bool:
        return bool(self.call("verify", publicKey=b64(public), data=b64(data), signature=b64(signature))["valid"])

    def reload(self) -> None:
        self.call("reload")

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._log.close()
