"""Stanzas keeper writes, read by Baileys 7's own code (decodeBinaryNode and the Utils that consume them)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from connector.protocol.binary import Node, encode_node
from connector.protocol.bundles import bundle_node
from connector.protocol.receipts import retry_receipt
from connector.protocol.usync import message_devices, parse_device_list
from tests.connector.protocol import test_bundles, test_receipts, test_usync

REPO_ROOT = Path(__file__).resolve().parents[3]
PEER_SCRIPT = REPO_ROOT / "tests" / "js" / "stanza_peer.mjs"


def baileys(requests: list[dict[str, Any]]) -> list[Any]:
    node = shutil.which("node")
    assert node, "node is required (Baileys 7 is the reference peer)"
    stdin = "".join(json.dumps(r) + "\n" for r in requests)
    out = subprocess.run([node, str(PEER_SCRIPT)], cwd=REPO_ROOT, input=stdin, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return [json.loads(line)["result"] for line in out.splitlines()]


def _b64(node: Node) -> str:
    return base64.b64encode(encode_node(node)).decode()


def _key(raw: bytes) -> str:
    return base64.b64encode(b"\x05" + raw).decode()


def test_baileys_reads_our_stanzas_as_we_do() -> None:
    keys = test_receipts.KEYS
    # Baileys' parser throws on a user with an <error> (we skip that user): it is left out of the reply here
    usync_reply = test_usync._reply(*[u for u in test_usync.REAL_USERS if u.child("devices", "error") is None])
    me, my_lid = test_usync.ME, test_usync.MY_LID
    retry, bundles, devices = baileys([
        {"op": "retry_keys", "b64": _b64(retry_receipt(test_receipts.DM, 2, 12345, keys=keys))},
        {"op": "bundles", "b64": _b64(test_bundles._reply(
            bundle_node(test_bundles.PHONE, test_bundles.BUNDLE), bundle_node(test_bundles.LAPTOP,
                                                                               test_bundles.NO_ONE_TIME)))},
        {"op": "usync", "b64": _b64(usync_reply), "me": str(me), "lid": my_lid.user},
    ])
    assert retry == {
        "registrationId": 12345, "identityKey": _key(keys.identity),
        "signedPreKey": {"keyId": 7, "publicKey": _key(keys.signed_pre_key.public),
                         "signature": base64.b64encode(keys.signed_pre_key.signature).decode()},
        "preKey": {"keyId": 0x000102, "publicKey": _key(keys.pre_key.public)},
    }
    full, partial = test_bundles.BUNDLE, test_bundles.NO_ONE_TIME
    assert [b["jid"] for b in bundles] == [str(test_bundles.PHONE), str(test_bundles.LAPTOP)]
    assert bundles[0]["session"] == {
        "registrationId": full.registration_id, "identityKey": _key(full.identity_key),
        "signedPreKey": {"keyId": full.signed_pre_key_id, "publicKey": _key(full.signed_pre_key),
                         "signature": base64.b64encode(full.signed_pre_key_signature).decode()},
        "preKey": {"keyId": full.pre_key_id, "publicKey": _key(full.pre_key or b"")},
    }
    assert "preKey" not in bundles[1]["session"] and bundles[1]["session"]["registrationId"] == partial.registration_id
    ours = [(j.user, j.device or 0, j.server) for j in message_devices(parse_device_list(usync_reply), me, my_lid)]
    assert [(d["user"], d["device"], d["server"]) for d in devices["devices"]] == ours
    assert devices["lids"] == [["4915550001@s.whatsapp.net", "11111@lid"]]
