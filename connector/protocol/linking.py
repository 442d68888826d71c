"""The companion's side of linking, as stanza-level steps over ``pairing`` (the cryptography).

Each function takes what arrived and the credentials, and returns what to store and what to send; the
client decides when. Stanza shapes: Baileys ``socket.ts`` (``requestPairingCode``, ``pair-device``,
``pair-success``), ``messages-recv.ts`` (``link_code_companion_reg``) and whatsmeow ``pair.go`` /
``pair-code.go``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from connector.protocol import pairing
from connector.protocol.binary import S_WHATSAPP_NET, Node
from connector.protocol.crypto import KeyPair, RandomSource
from connector.protocol.errors import MessageFormatError, PairingError
from connector.protocol.payload import DeviceDescription
from connector.protocol.proto import wa_pb2
from shared.authstate import AdvSignedDeviceIdentity, Contact, Credentials, StoredKeyPair
from shared.bufferjson import JsonValue


def _keypair(stored: StoredKeyPair) -> KeyPair:
    return KeyPair(private=stored.private, public=stored.public)


def phone_digits(phone_number: str) -> str:
    """The phone number as the pairing stanzas want it; raises ``PairingError`` if it cannot be one."""
    digits = "".join(c for c in phone_number if c.isdigit())
    if len(digits) <= 6 or digits.startswith("0"):
        raise PairingError("pairing phone number must be international, digits only")
    return digits


def pair_device_refs(node: Node) -> list[str]:
    """The QR refs of a ``pair-device`` iq, in the order the server wants them shown."""
    pair_device = node.child("pair-device")
    refs = pair_device.children("ref") if pair_device is not None else []
    return [ref.content.decode("utf-8", "replace") for ref in refs if isinstance(ref.content, bytes)]


def qr_text(ref: str, creds: Credentials, device: DeviceDescription) -> str:
    return pairing.format_qr_data(pairing.QrData(
        ref=ref,
        noise_public=creds.noise_key.public,
        identity_public=creds.signed_identity_key.public,
        adv_secret=creds.adv_secret_key_bytes,
        platform_id=device.platform_id,
    ))


def companion_hello(phone: str, code: str, creds: Credentials, device: DeviceDescription, rand: RandomSource) -> Node:
    """``link_code_companion_reg`` stage ``companion_hello``: our ephemeral key wrapped with the code."""
    wrapped = pairing.wrap_link_code_ephemeral(code, creds.pairing_ephemeral_key_pair.public, rand)
    return Node("iq", {"to": S_WHATSAPP_NET, "type": "set", "xmlns": "md"}, [
        Node("link_code_companion_reg",
             {"jid": f"{phone}@s.whatsapp.net", "stage": "companion_hello", "should_show_push_notification": "true"},
             [
                 Node("link_code_pairing_wrapped_companion_ephemeral_pub", {}, wrapped),
                 Node("companion_server_auth_key_pub", {}, creds.noise_key.public),
                 Node("companion_platform_id", {}, device.platform_id.encode()),
                 Node("companion_platform_display", {}, device.display_name.encode()),
                 Node("link_code_pairing_nonce", {}, b"0"),
             ]),
    ])


def companion_hello_ref(response: Node) -> bytes | None:
    return response.child_bytes("link_code_companion_reg", "link_code_pairing_ref")


@dataclass(frozen=True, slots=True)
class CompanionFinish:
    adv_secret_b64: str = field(repr=False)
    request: Node = field(repr=False)


def companion_finish(
    notification: Node, *, phone: str, expected_ref: bytes | None, creds: Credentials, rand: RandomSource
) -> CompanionFinish:
    """Answer the phone's ``primary_hello`` notification: the key bundle, and the new adv secret."""
    reg = notification.child("link_code_companion_reg")
    ref = reg.child_bytes("link_code_pairing_ref") if reg is not None else None
    primary_identity = reg.child_bytes("primary_identity_pub") if reg is not None else None
    wrapped = reg.child_bytes("link_code_pairing_wrapped_primary_ephemeral_pub") if reg is not None else None
    if ref is None or primary_identity is None or wrapped is None:
        raise MessageFormatError("link code notification lacks ref, identity or ephemeral key")
    if expected_ref is not None and ref != expected_ref:
        raise PairingError("link code notification for another pairing ref")
    code = creds.pairing_code
    if code is None:
        raise PairingError("no pairing code in progress")
    identity = _keypair(creds.signed_identity_key)
    finish = pairing.companion_finish_link_code(
        companion_ephemeral=_keypair(creds.pairing_ephemeral_key_pair),
        primary_ephemeral_public=pairing.unwrap_link_code_ephemeral(code, wrapped),
        companion_identity=identity,
        primary_identity_public=primary_identity,
        rand=rand,
    )
    request = Node("iq", {"to": S_WHATSAPP_NET, "type": "set", "xmlns": "md"}, [
        Node("link_code_companion_reg", {"jid": f"{phone}@s.whatsapp.net", "stage": "companion_finish"}, [
            Node("link_code_pairing_wrapped_key_bundle", {}, finish.wrapped_key_bundle),
            Node("companion_identity_public", {}, identity.public),
            Node("link_code_pairing_ref", {}, ref),
        ]),
    ])
    return CompanionFinish(base64.b64encode(finish.adv_secret).decode(), request)


@dataclass(frozen=True, slots=True)
class PairSuccess:
    """What a verified ``pair-success`` commits us to: credentials to store, then the reply to send."""

    jid: str
    lid: str | None
    platform: str | None
    business_name: str | None
    creds_changes: dict[str, JsonValue] = field(repr=False)
    reply: Node = field(repr=False)


def pair_success(node: Node, creds: Credentials, rand: RandomSource) -> PairSuccess:
    """Verify ``pair-success`` (HMAC, account signature) and sign as the device (raises ``PairingError``)."""
    success = node.child("pair-success")
    identity_bytes = success.child_bytes("device-identity") if success is not None else None
    device = success.child("device") if success is not None else None
    jid = device.attrs.get("jid") if device is not None else None
    if success is None or identity_bytes is None or device is None or not jid:
        raise MessageFormatError("pair-success lacks device-identity or device jid")
    lid = device.attrs.get("lid")
    platform_node, biz_node = success.child("platform"), success.child("biz")
    platform = platform_node.attrs.get("name") if platform_node is not None else None
    business_name = biz_node.attrs.get("name") if biz_node is not None else None
    verified = pairing.companion_verify_device_identity(
        identity_bytes, adv_secret=creds.adv_secret_key_bytes, identity=_keypair(creds.signed_identity_key), rand=rand
    )
    account = wa_pb2.ADVSignedDeviceIdentity.FromString(verified.account)
    existing = creds.get("signalIdentities")
    signal_identities: list[JsonValue] = list(existing) if isinstance(existing, list) else []
    signal_identities.append({
        "identifier": {"name": lid or jid, "deviceId": 0},
        "identifierKey": b"\x05" + verified.account_signature_key,
    })
    changes: dict[str, JsonValue] = {
        "me": Contact(id=jid, lid=lid, name=business_name).to_json(),
        "account": AdvSignedDeviceIdentity(
            details=account.details,
            account_signature_key=account.accountSignatureKey,
            account_signature=account.accountSignature,
            device_signature=account.deviceSignature,
        ).to_json(),
        "signalIdentities": signal_identities,
        "platform": platform,
        "pairingCode": None,
        # Baileys sets this after code pairing only; user code then skips requesting a code. Setting it for
        # QR pairings too keeps an exported state from being re-paired by such code.
        "registered": True,
    }
    reply = Node("iq", {"to": S_WHATSAPP_NET, "type": "result", "id": node.attrs.get("id", "")}, [
        Node("pair-device-sign", {}, [
            Node("device-identity", {"key-index": str(verified.key_index)}, verified.reply_identity),
        ]),
    ])
    return PairSuccess(jid, lid, platform, business_name, changes, reply)


def pair_error_text(error: PairingError) -> str:
    """The ``text`` of the iq error sent back for a refused pair-success (whatsmeow ``sendPairError``)."""
    return "hmac-mismatch" if "HMAC" in str(error) else "signature-mismatch"
