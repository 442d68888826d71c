"""A scripted companion: the least client that registers, pairs and logs in against the simulator.

It is test and benchmark tooling, not the product's engine (``connector/engine``). It is built from
the protocol core's codecs and its companion-side pairing crypto, so driving it against the simulator
checks the two independent halves (``connector.protocol.pairing`` companion side, ``simulator.pairing``
/ ``simulator.adv`` phone side) against each other on a real socket.

Typical QR flow::

    companion = ScriptedCompanion(ws_url, root_key)
    refs = await companion.connect_and_register()        # pair-device refs
    await control.scan(phone, companion.qr(refs[0]))     # the phone scans
    await companion.complete_pairing()                   # pair-success -> pair-device-sign -> 515
    success = await companion.connect_and_login()        # <success>
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import websockets
from websockets.asyncio.client import ClientConnection

from connector.protocol import pairing as ppairing
from connector.protocol.binary import S_WHATSAPP_NET, Jid, Node, decode_node, encode_node
from connector.protocol.certs import verify_cert_chain
from connector.protocol.crypto import KeyPair
from connector.protocol.frames import WA_INTRO_HEADER, FrameDecoder, encode_frame
from connector.protocol.noise import NoiseHandshake, NoiseTransport
from connector.protocol.proto import wa_pb2
from connector.protocol.tokens import DICT_VERSION
from shared import signatures

DEFAULT_TIMEOUT_S = 10.0


class CompanionClosed(Exception):
    """The socket closed while the companion waited for a node."""


@dataclass
class CompanionCreds:
    noise: KeyPair
    identity: KeyPair
    registration_id: int
    signed_pre_key_id: int
    signed_pre_key: KeyPair
    signed_pre_key_signature: bytes
    adv_secret: bytes
    user: str | None = None
    device_id: int | None = None
    next_pre_key_id: int = 1
    pre_keys: dict[int, KeyPair] = field(default_factory=dict)

    @classmethod
    def generate(cls, rand: Callable[[int], bytes] = os.urandom) -> CompanionCreds:
        identity = KeyPair.generate(rand)
        spk = KeyPair.generate(rand)
        signature = signatures.xeddsa_sign(identity.private, b"\x05" + spk.public, rand)
        return cls(
            noise=KeyPair.generate(rand),
            identity=identity,
            registration_id=int.from_bytes(rand(2), "big") & 0x3FFF or 1,
            signed_pre_key_id=1,
            signed_pre_key=spk,
            signed_pre_key_signature=signature,
            adv_secret=rand(32),
        )


class ScriptedCompanion:
    def __init__(
        self,
        ws_url: str,
        root_public_key: bytes,
        creds: CompanionCreds | None = None,
        *,
        dict_version: int = DICT_VERSION,
    ) -> None:
        self.ws_url = ws_url
        self.dict_version = dict_version  # announced in the intro header, spoken on the whole connection
        self.root_public_key = root_public_key
        self.creds = creds or CompanionCreds.generate()
        self.inbox: list[Node] = []
        self.closed = asyncio.Event()
        #: Why the read loop ended when the stream broke (undecryptable or undecodable data), else None.
        self.stream_error: Exception | None = None
        #: The websocket close code once the connection ended (1000: a closing handshake, 1006: none).
        self.close_code: int | None = None
        self._arrived = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._transport: NoiseTransport | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = 0
        self._pair_ephemeral: KeyPair | None = None
        self._pair_code: str | None = None

    # ------------------------------------------------------------------ connection

    async def _connect(self, payload: wa_pb2.ClientPayload, timeout: float) -> None:
        await self.close()
        self.inbox.clear()
        self.closed = asyncio.Event()
        self.stream_error = None
        self.close_code = None
        ws = await websockets.connect(self.ws_url, max_size=None, ping_interval=None, open_timeout=timeout)
        self._ws = ws
        decoder = FrameDecoder()
        intro = WA_INTRO_HEADER[:-1] + bytes([self.dict_version])
        handshake = NoiseHandshake("initiator", intro, self.creds.noise, os.urandom)
        await ws.send(encode_frame(handshake.write_client_hello(), intro=intro))
        frames: list[bytes] = []
        while not frames:
            data = await asyncio.wait_for(ws.recv(), timeout)
            frames = decoder.feed(data if isinstance(data, bytes) else data.encode())
        certificate = handshake.read_server_hello(frames[0])
        assert handshake.remote_static is not None
        verify_cert_chain(
            certificate, handshake.remote_static, root_public_key=self.root_public_key, now=time.time()
        )
        await ws.send(encode_frame(handshake.write_client_finish(payload.SerializeToString())))
        self._transport = handshake.split()
        self._reader = asyncio.create_task(self._read(ws, decoder, frames[1:]))

    async def _read(self, ws: ClientConnection, decoder: FrameDecoder, pending: list[bytes]) -> None:
        assert self._transport is not None
        transport, version = self._transport, self.dict_version
        try:
            for frame in pending:
                self._deliver(decode_node(transport.decrypt(frame), dict_version=version))
            async for data in ws:
                for frame in decoder.feed(data if isinstance(data, bytes) else data.encode()):
                    self._deliver(decode_node(transport.decrypt(frame), dict_version=version))
        except Exception as exc:  # a broken stream ends the connection like a close does; keep why
            self.stream_error = exc
        finally:
            self.close_code = ws.close_code
            self.closed.set()
            self._arrived.set()

    def _deliver(self, node: Node) -> None:
        self.inbox.append(node)
        self._arrived.set()

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 2.0)
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._reader, 2.0)
        self._ws, self._reader, self._transport = None, None, None

    async def send(self, node: Node) -> None:
        if self._ws is None or self._transport is None:
            raise CompanionClosed("not connected")
        await self._ws.send(encode_frame(self._transport.encrypt(encode_node(node, dict_version=self.dict_version))))

    async def send_raw_frame(self, payload: bytes) -> None:
        if self._ws is None:
            raise CompanionClosed("not connected")
        await self._ws.send(encode_frame(payload))

    async def wait_for(self, match: Callable[[Node], bool], timeout: float = DEFAULT_TIMEOUT_S) -> Node:
        """The first received node (in order) for which ``match`` is true; removed from the inbox."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for index, node in enumerate(self.inbox):
                if match(node):
                    return self.inbox.pop(index)
            if self.closed.is_set():
                why = "" if self.stream_error is None else f" (stream broke: {self.stream_error!r})"
                raise CompanionClosed(f"socket closed{why}; inbox: {self.inbox!r}")
            self._arrived.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"no matching node; inbox: {self.inbox!r}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def wait_tag(self, tag: str, timeout: float = DEFAULT_TIMEOUT_S) -> Node:
        return await self.wait_for(lambda n: n.tag == tag, timeout)

    async def wait_closed(self, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        await asyncio.wait_for(self.closed.wait(), timeout)

    async def iq(
        self, xmlns: str, kind: str, content: list[Node] | None = None, timeout: float = DEFAULT_TIMEOUT_S
    ) -> Node:
        self._ids += 1
        iq_id = f"c.{self._ids}"
        attrs = {"id": iq_id, "xmlns": xmlns, "type": kind, "to": S_WHATSAPP_NET}
        await self.send(Node("iq", attrs, content))
        return await self.wait_for(lambda n: n.tag == "iq" and n.attrs.get("id") == iq_id, timeout)

    # ------------------------------------------------------------------ registration and pairing

    def registration_payload(self) -> wa_pb2.ClientPayload:
        c = self.creds
        props = wa_pb2.DeviceProps(os="keeper-test", platformType=wa_pb2.DeviceProps.CHROME)
        return wa_pb2.ClientPayload(
            passive=False,
            pull=False,
            connectType=wa_pb2.ClientPayload.WIFI_UNKNOWN,
            connectReason=wa_pb2.ClientPayload.USER_ACTIVATED,
            userAgent=_user_agent(),
            devicePairingData=wa_pb2.ClientPayload.DevicePairingRegistrationData(
                eRegid=c.registration_id.to_bytes(4, "big"),
                eKeytype=b"\x05",
                eIdent=c.identity.public,
                eSkeyId=c.signed_pre_key_id.to_bytes(3, "big"),
                eSkeyVal=c.signed_pre_key.public,
                eSkeySig=c.signed_pre_key_signature,
                buildHash=hashlib.md5(b"2.3000.0", usedforsecurity=False).digest(),
                deviceProps=props.SerializeToString(),
            ),
        )

    def login_payload(self) -> wa_pb2.ClientPayload:
        assert self.creds.user is not None and self.creds.device_id is not None
        return wa_pb2.ClientPayload(
            username=int(self.creds.user),
            device=self.creds.device_id,
            passive=True,
            pull=True,
            connectType=wa_pb2.ClientPayload.WIFI_UNKNOWN,
            connectReason=wa_pb2.ClientPayload.USER_ACTIVATED,
            userAgent=_user_agent(),
        )

    async def connect_and_register(self, timeout: float = DEFAULT_TIMEOUT_S) -> list[bytes]:
        """Connect unpaired; acknowledge ``pair-device`` and return its refs."""
        await self._connect(self.registration_payload(), timeout)
        iq = await self.wait_for(lambda n: n.child("pair-device") is not None, timeout)
        await self.send(Node("iq", {"to": S_WHATSAPP_NET, "id": iq.attrs["id"], "type": "result"}))
        return [
            r.content for r in iq.children("pair-device")[0].children("ref") if isinstance(r.content, bytes)
        ]

    def qr(self, ref: bytes) -> str:
        data = ppairing.QrData(
            ref.decode(), self.creds.noise.public, self.creds.identity.public, self.creds.adv_secret, "1"
        )
        return ppairing.format_qr_data(data)

    async def complete_pairing(self, timeout: float = DEFAULT_TIMEOUT_S) -> Node:
        """Handle ``pair-success``: verify, sign, reply; return the stream error that follows (515)."""
        iq = await self.wait_for(lambda n: n.child("pair-success") is not None, timeout)
        success = iq.children("pair-success")[0]
        container = success.child_bytes("device-identity")
        device = success.child("device")
        assert container is not None and device is not None
        verified = ppairing.companion_verify_device_identity(
            container, adv_secret=self.creds.adv_secret, identity=self.creds.identity, rand=os.urandom
        )
        jid = Jid.parse(device.attrs["jid"])
        self.creds.user, self.creds.device_id = jid.user, jid.device
        sign = Node(
            "pair-device-sign",
            {},
            [Node("device-identity", {"key-index": str(verified.key_index)}, verified.reply_identity)],
        )
        await self.send(Node("iq", {"to": S_WHATSAPP_NET, "type": "result", "id": iq.attrs["id"]}, [sign]))
        return await self.wait_tag("stream:error", timeout)

    async def request_pairing_code(self, phone: str, timeout: float = DEFAULT_TIMEOUT_S) -> str:
        """On a registering socket, send companion_hello; return the code to type on the phone."""
        self._pair_code = ppairing.generate_pairing_code(os.urandom)
        self._pair_ephemeral = KeyPair.generate(os.urandom)
        wrapped = ppairing.wrap_link_code_ephemeral(self._pair_code, self._pair_ephemeral.public, os.urandom)
        hello = Node(
            "link_code_companion_reg",
            {
                "jid": f"{phone.lstrip('+')}@s.whatsapp.net",
                "stage": "companion_hello",
                "should_show_push_notification": "true",
            },
            [
                Node("link_code_pairing_wrapped_companion_ephemeral_pub", {}, wrapped),
                Node("companion_server_auth_key_pub", {}, self.creds.noise.public),
                Node("companion_platform_id", {}, b"1"),
                Node("companion_platform_display", {}, b"Chrome (Linux)"),
                Node("link_code_pairing_nonce", {}, b"0"),
            ],
        )
        answer = await self.iq("md", "set", [hello], timeout)
        if answer.attrs.get("type") != "result":
            raise CompanionClosed(f"companion_hello refused: {answer!r}")
        return ppairing.format_pairing_code(self._pair_code)

    async def finish_code_pairing(self, timeout: float = DEFAULT_TIMEOUT_S) -> Node:
        """Wait for the phone's notification, send companion_finish; return its iq answer."""
        assert self._pair_code is not None and self._pair_ephemeral is not None
        note = await self.wait_for(
            lambda n: n.tag == "notification" and n.attrs.get("type") == "link_code_companion_reg", timeout
        )
        reg = note.children("link_code_companion_reg")[0]
        if reg.attrs.get("stage") != "primary_hello":  # WhatsApp Web refuses any other (ack error 487)
            raise CompanionClosed(f"link_code_companion_reg notification with stage {reg.attrs.get('stage')!r}")
        ref = reg.child_bytes("link_code_pairing_ref")
        wrapped = reg.child_bytes("link_code_pairing_wrapped_primary_ephemeral_pub")
        primary_identity = reg.child_bytes("primary_identity_pub")
        assert ref is not None and wrapped is not None and primary_identity is not None
        primary_ephemeral = ppairing.unwrap_link_code_ephemeral(self._pair_code, wrapped)
        finish = ppairing.companion_finish_link_code(
            companion_ephemeral=self._pair_ephemeral,
            primary_ephemeral_public=primary_ephemeral,
            companion_identity=self.creds.identity,
            primary_identity_public=primary_identity,
            rand=os.urandom,
        )
        self.creds.adv_secret = finish.adv_secret
        node = Node(
            "link_code_companion_reg",
            {"jid": f"{self.creds.user or ''}@s.whatsapp.net", "stage": "companion_finish"},
            [
                Node("link_code_pairing_wrapped_key_bundle", {}, finish.wrapped_key_bundle),
                Node("companion_identity_public", {}, self.creds.identity.public),
                Node("link_code_pairing_ref", {}, ref),
            ],
        )
        return await self.iq("md", "set", [node], timeout)

    # ------------------------------------------------------------------ login

    async def connect_and_login(self, timeout: float = DEFAULT_TIMEOUT_S) -> Node:
        """Connect as the linked device; return ``<success>`` or ``<failure>``."""
        await self._connect(self.login_payload(), timeout)
        return await self.wait_for(lambda n: n.tag in ("success", "failure"), timeout)

    async def upload_pre_keys(self, count: int, timeout: float = DEFAULT_TIMEOUT_S) -> Node:
        keys = []
        for _ in range(count):
            key_id = self.creds.next_pre_key_id
            self.creds.next_pre_key_id += 1
            pair = KeyPair.generate(os.urandom)
            self.creds.pre_keys[key_id] = pair
            keys.append(
                Node("key", {}, [Node("id", {}, key_id.to_bytes(3, "big")), Node("value", {}, pair.public)])
            )
        c = self.creds
        content = [
            Node("registration", {}, c.registration_id.to_bytes(4, "big")),
            Node("type", {}, b"\x05"),
            Node("identity", {}, c.identity.public),
            Node("list", {}, keys),
            Node(
                "skey",
                {},
                [
                    Node("id", {}, c.signed_pre_key_id.to_bytes(3, "big")),
                    Node("value", {}, c.signed_pre_key.public),
                    Node("signature", {}, c.signed_pre_key_signature),
                ],
            ),
        ]
        return await self.iq("encrypt", "set", content, timeout)


def _user_agent() -> wa_pb2.ClientPayload.UserAgent:
    return wa_pb2.ClientPayload.UserAgent(
        platform=wa_pb2.ClientPayload.UserAgent.WEB,
        appVersion=wa_pb2.ClientPayload.UserAgent.AppVersion(primary=2, secondary=3000, tertiary=0),
        releaseChannel=wa_pb2.ClientPayload.UserAgent.RELEASE,
        osVersion="0.1",
        device="Desktop",
        mcc="000",
        mnc="000",
    )
