"""The usync device-list query: which devices of which users a message must be encrypted for.

Query (Baileys ``getUSyncDevices`` / ``executeUSyncQuery``, whatsmeow ``usync``)::

    <iq xmlns="usync" type="get" to="s.whatsapp.net">
      <usync context="message" mode="query" sid=ID last="true" index="0">
        <query><devices version="2"/>[<lid/>]</query>
        <list><user jid="user@s.whatsapp.net|user@lid"/>...</list></usync></iq>

Reply: per ``<user jid>``, ``<devices><device-list><device id [key-index] [is_hosted]>...`` (or an
``<error code text>``), an optional ``<key-index-list ts>`` and, with the LID protocol, ``<lid val>``.

``message_devices`` turns the reply into the device JIDs to encrypt for, by Baileys' rules
(``extractDeviceJids``): our own current device is left out (by PN or LID user); a non-zero device
without a ``key-index`` is left out (the server refuses a send to it); hosted devices live on the
``hosted`` / ``hosted.lid`` servers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from connector.protocol.binary import HOSTED_LID_SERVER, HOSTED_SERVER, LID_SERVER, Jid, Node
from connector.protocol.errors import JidError, MessageFormatError
from connector.protocol.stanzas import check_iq_result, iq, uint_attr

MAX_DEVICE_ID = 0xFF
"""Device ids fit one byte in an AD-JID."""


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    """One ``<device>`` of a user's device list."""

    device: int
    key_index: int | None = None
    hosted: bool = False


@dataclass(frozen=True, slots=True)
class UsyncError:
    code: int | None
    text: str


@dataclass(frozen=True, slots=True)
class UserDevices:
    """One ``<user>`` of the reply: its devices, its LID when asked for, or the error the server gave."""

    user: Jid
    devices: tuple[DeviceEntry, ...] = ()
    lid: Jid | None = None
    key_index_timestamp: int | None = None
    signed_key_index: bytes | None = field(default=None, repr=False)
    error: UsyncError | None = None


def device_list_query(users: Sequence[Jid], sid: str, *, with_lid: bool = True) -> Node:
    """The usync query for the device lists of ``users`` (PN or LID user JIDs; devices are dropped)."""
    if not users:
        raise MessageFormatError("a device-list query needs at least one user")
    protocols = [Node("devices", {"version": "2"})]
    if with_lid:
        protocols.append(Node("lid"))
    user_nodes = [Node("user", {"jid": str(user.without_device())}) for user in users]
    return iq("get", "usync", Node(
        "usync", {"context": "message", "mode": "query", "sid": sid, "last": "true", "index": "0"},
        [Node("query", {}, protocols), Node("list", {}, user_nodes)]))


def parse_device_list(reply: Node) -> tuple[UserDevices, ...]:
    """Read the usync reply; raises ``IqError`` when refused, ``MessageFormatError`` when malformed."""
    check_iq_result(reply)
    listing = reply.child("usync", "list")
    if listing is None:
        raise MessageFormatError("usync reply without <usync><list>")
    return tuple(_user(node) for node in listing.children("user"))


def message_devices(users: Iterable[UserDevices], me: Jid, my_lid: Jid | None = None, *,
                    exclude_zero: bool = False) -> list[Jid]:
    """The device JIDs to encrypt a message for; ``me`` is our own device JID (PN), ``my_lid`` its LID."""
    own_users = {me.user} | ({my_lid.user} if my_lid is not None else set())
    own_device = me.device or 0
    jids: list[Jid] = []
    for entry in users:
        if entry.error is not None:
            continue
        for device in entry.devices:
            if exclude_zero and device.device == 0:
                continue
            if entry.user.user in own_users and device.device == own_device:
                continue
            if device.device != 0 and not device.key_index:
                continue
            server = entry.user.server
            if device.hosted:
                server = HOSTED_LID_SERVER if server == LID_SERVER else HOSTED_SERVER
            jids.append(Jid(user=entry.user.user, server=server, device=device.device or None))
    return jids


def _user(node: Node) -> UserDevices:
    user = _jid(node.attrs.get("jid", ""), "usync user").without_device()
    error = node.child("error") or node.child("devices", "error")
    if error is not None:
        return UserDevices(user=user, error=UsyncError(uint_attr(error.attrs.get("code")),
                                                       error.attrs.get("text", "")))
    lid_node = node.child("lid")
    lid = _jid(lid_node.attrs["val"], "usync lid") if lid_node is not None and lid_node.attrs.get("val") else None
    devices_node = node.child("devices")
    if devices_node is None:
        return UserDevices(user=user, lid=lid)
    devices = tuple(_device(d) for d in devices_node.children("device-list")[0].children("device")) \
        if devices_node.children("device-list") else ()
    key_index = devices_node.child("key-index-list")
    return UserDevices(
        user=user, devices=devices, lid=lid,
        key_index_timestamp=uint_attr(key_index.attrs.get("ts")) if key_index is not None else None,
        signed_key_index=key_index.content if key_index is not None and isinstance(key_index.content, bytes)
        else None)


def _device(node: Node) -> DeviceEntry:
    device = uint_attr(node.attrs.get("id"))
    if device is None or device > MAX_DEVICE_ID:
        raise MessageFormatError(f"usync device with a bad id {node.attrs.get('id')!r}")
    return DeviceEntry(device=device, key_index=uint_attr(node.attrs.get("key-index")),
                       hosted=node.attrs.get("is_hosted") == "true")


def _jid(text: str, what: str) -> Jid:
    try:
        return Jid.parse(text)
    except JidError as exc:
        raise MessageFormatError(f"{what} with a bad JID: {exc}") from None
