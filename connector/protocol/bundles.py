"""The ``encrypt`` iq that fetches pre-key bundles, for devices we hold no Signal session with.

Query (Baileys ``assertSessions``, whatsmeow ``fetchPreKeys``)::

    <iq xmlns="encrypt" type="get" to="s.whatsapp.net">
      <key><user jid="user:device@server" [reason="identity"]/>...</key></iq>

``reason="identity"`` asks again after an identity change or a retry receipt (SIGNAL.md section 4).

Reply, one ``<user jid>`` per device under ``<list>``::

    <registration>4 bytes BE</registration><type>05</type><identity>32 bytes</identity>
    <skey><id>3 bytes BE</id><value>32 bytes</value><signature>64 bytes</signature></skey>
    [<key><id>3 bytes BE</id><value>32 bytes</value></key>]

The key children may sit inside a ``<keys>`` wrapper and a device may answer ``<error code text>``
(whatsmeow ``nodeToPreKeyBundle``). Each device gets its own outcome, so one bad device does not cost the
others their bundles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from connector.protocol.binary import Jid, Node
from connector.protocol.errors import JidError, MessageFormatError
from connector.protocol.signal.types import PreKeyBundle
from connector.protocol.stanzas import check_iq_result, iq, uint_attr

KEY_TYPE_DJB = b"\x05"
"""``<type>``: Curve25519 keys (the ``0x05`` prefix of libsignal's 33-byte form)."""
KEY_SIZE = 32
SIGNATURE_SIZE = 64
KEY_ID_SIZE = 3
REGISTRATION_ID_SIZE = 4


@dataclass(frozen=True, slots=True)
class BundleRequest:
    device: Jid
    identity_changed: bool = False  # ask with reason="identity"


@dataclass(frozen=True, slots=True)
class BundleError:
    """Why a device has no bundle: the server's ``<error>``, or what was wrong with its entry."""

    code: int | None
    text: str


@dataclass(frozen=True, slots=True)
class FetchedBundle:
    """One device's answer: its bundle, or the error in its place."""

    device: Jid
    bundle: PreKeyBundle | None = None
    error: BundleError | None = None


def bundle_query(requests: Sequence[BundleRequest]) -> Node:
    """The ``encrypt`` iq asking the pre-key bundles of ``requests``' devices."""
    if not requests:
        raise MessageFormatError("a bundle query needs at least one device")
    users = []
    for request in requests:
        attrs = {"jid": str(request.device)}
        if request.identity_changed:
            attrs["reason"] = "identity"
        users.append(Node("user", attrs))
    return iq("get", "encrypt", Node("key", {}, users))


def parse_bundles(reply: Node) -> tuple[FetchedBundle, ...]:
    """Read the reply; raises ``IqError`` when refused, ``MessageFormatError`` without a ``<list>``."""
    check_iq_result(reply)
    listing = reply.child("list")
    if listing is None:
        raise MessageFormatError("encrypt reply without <list>")
    return tuple(_fetched(node) for node in listing.children("user"))


def bundle_node(device: Jid, bundle: PreKeyBundle) -> Node:
    """The ``<user>`` entry of a bundle (the simulator's server side and tests write replies with it)."""
    keys = [
        Node("registration", {}, bundle.registration_id.to_bytes(REGISTRATION_ID_SIZE, "big")),
        Node("type", {}, KEY_TYPE_DJB),
        Node("identity", {}, bundle.identity_key),
        Node("skey", {}, [Node("id", {}, bundle.signed_pre_key_id.to_bytes(KEY_ID_SIZE, "big")),
                          Node("value", {}, bundle.signed_pre_key),
                          Node("signature", {}, bundle.signed_pre_key_signature)]),
    ]
    if bundle.pre_key_id is not None and bundle.pre_key is not None:
        keys.append(Node("key", {}, [Node("id", {}, bundle.pre_key_id.to_bytes(KEY_ID_SIZE, "big")),
                                     Node("value", {}, bundle.pre_key)]))
    return Node("user", {"jid": str(device)}, keys)


def _fetched(node: Node) -> FetchedBundle:
    text = node.attrs.get("jid", "")
    try:
        device = Jid.parse(text)
    except JidError as exc:
        raise MessageFormatError(f"bundle for a bad JID: {exc}") from None
    error = node.child("error")
    if error is not None:
        return FetchedBundle(device, error=BundleError(uint_attr(error.attrs.get("code")), error.attrs.get("text", "")))
    try:
        return FetchedBundle(device, bundle=read_bundle(node))
    except MessageFormatError as exc:
        return FetchedBundle(device, error=BundleError(None, str(exc)))


def read_bundle(node: Node) -> PreKeyBundle:
    """The bundle in a ``<user>`` of the reply; raises ``MessageFormatError`` for a missing or misshapen key."""
    registration = _exact(node, "registration", REGISTRATION_ID_SIZE)
    keys = node.child("keys") or node
    key_type = keys.child_bytes("type")
    if key_type is not None and key_type != KEY_TYPE_DJB:
        raise MessageFormatError(f"bundle of unknown key type {key_type.hex()}")
    identity = _exact(keys, "identity", KEY_SIZE)
    signed = keys.child("skey")
    if signed is None:
        raise MessageFormatError("bundle without a signed pre-key")
    one_time = keys.child("key")
    return PreKeyBundle(
        registration_id=int.from_bytes(registration, "big"),
        identity_key=identity,
        signed_pre_key_id=int.from_bytes(_exact(signed, "id", KEY_ID_SIZE), "big"),
        signed_pre_key=_exact(signed, "value", KEY_SIZE),
        signed_pre_key_signature=_exact(signed, "signature", SIGNATURE_SIZE),
        pre_key_id=int.from_bytes(_exact(one_time, "id", KEY_ID_SIZE), "big") if one_time is not None else None,
        pre_key=_exact(one_time, "value", KEY_SIZE) if one_time is not None else None,
    )


def _exact(node: Node, tag: str, size: int) -> bytes:
    value = node.child_bytes(tag)
    if value is None or len(value) != size:
        raise MessageFormatError(f"<{tag}> of {node.tag} must be {size} bytes")
    return value
