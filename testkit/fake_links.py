"""In-memory doubles for the connector's interfaces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from connector.errors import PublishError, SyncUnavailable
from connector.link import BeforeSend
from connector.protocol.binary import Node
from connector.protocol.close import CloseInfo, CloseReason, close_info
from connector.protocol.events import (
    Addressing,
    Closed,
    CredsChanged,
    DecryptedMessage,
    Event,
    MessageDecrypted,
    Opened,
    Paired,
    PairingCodeShown,
    ReceivedMessage,
)
from connector.protocol.outbound import SendRequest
from connector.protocol.stanzas import incoming_message
from connector.protocol.wamessage import decode_message
from connector.protocol.wamessage_encode import text_message
from shared.authstate import AuthState
from shared.authstore import MemoryAuthStore
from shared.connector_sync import (
    RESTORE_AAD,
    RESTORE_KEY_ID,
    Claim,
    Command,
    Lost,
    PairingRequest,
    RenewedLease,
    SyncReply,
    SyncRequest,
)
from shared.sealing import open_sealed, public_key_bytes, seal
from shared.snapshot import Snapshot, snapshot_aad


@dataclass(frozen=True)
class Published:
    topic: str
    data: bytes
    attributes: Mapping[str, str]
    ordering_key: str


class MemoryTransport:
    """A MessageTransport that can be switched down to simulate an outage."""

    def __init__(self, latency_s: float = 0.0) -> None:
        self.published: list[Published] = []
        self.down = False
        self.attempts = 0
        self.latency_s = latency_s

    async def publish(self, topic: str, data: bytes, attributes: Mapping[str, str], ordering_key: str) -> str:
        self.attempts += 1
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if self.down:
            raise PublishError("transport is down")
        self.published.append(Published(topic, data, dict(attributes), ordering_key))
        return str(len(self.published))

    async def close(self) -> None:
        pass

    def on(self, topic: str) -> list[Published]:
        return [p for p in self.published if p.topic == topic]


# --- link (engine) ----------------------------------------------------------------------------------




class _Critical:
    """Queued by :meth:`FakeSession.critical`: the session awaits its before-send hook here."""


def close_event(reason: str, code: int | None = None) -> Closed:
    """The ``Closed`` event a link ends with, by reason slug (policy and code from the close table)."""
    return Closed(close_info(CloseReason(reason), code=code))


def opened(jid: str = "40700000001:1@s.whatsapp.net") -> Opened:
    return Opened(jid=jid, lid=None)


def paired(jid: str) -> Paired:
    return Paired(jid=jid, lid=None, platform=None, business_name=None)


def code_shown(code: str, phone_number: str = "+40700000001") -> PairingCodeShown:
    return PairingCodeShown(code=code, phone_number=phone_number)


def arrived(message_id: str, sender: str = "1@s.whatsapp.net", text: str = "hi") -> MessageDecrypted:
    """An incoming text message (one ``<enc>``), as the protocol client hands it over once decrypted."""
    node = Node("message", {"id": message_id, "from": sender, "t": "1", "type": "text"},
                [Node("enc", {"v": "2", "type": "msg"}, b"\x01")])
    return MessageDecrypted(DecryptedMessage(incoming_message(node), decode_message(text_message(text)),
                                             Addressing(chat=sender, sender=sender, participant=None, from_me=False)))


class FakeSession:
    """A :class:`connector.link.LinkSession` whose events the test pushes; ``close()`` ends it like a
    real one. :meth:`critical` stands for a critical credentials change: the events after it wait for
    the before-send hook, as the bytes after such a change do on a real link."""

    def __init__(self, account_id: str, store: MemoryAuthStore, pairing: PairingRequest | None,
                 before_send: BeforeSend) -> None:
        self.account_id = account_id
        self.store = store
        self.pairing = pairing
        self.before_send = before_send
        self.queue: asyncio.Queue[Event | _Critical | None] = asyncio.Queue()
        self.closed = False
        self.logged_out = False
        self.logout_confirmed = True
        self.acked: list[str] = []
        self.sends: list[SendRequest] = []

    def push(self, event: Event) -> None:
        self.queue.put_nowait(event)

    def critical(self) -> None:
        """A critical credentials change (already written to ``store``): persisted before what follows."""
        self.queue.put_nowait(_Critical())

    async def events(self) -> AsyncIterator[Event]:
        while True:
            event = await self.queue.get()
            if event is None:
                return
            if isinstance(event, _Critical):
                change = CredsChanged("critical")
                await self.before_send([change])
                yield change
                continue
            if isinstance(event, Closed):
                self.closed = True  # a real socket is gone by the time it reports its close
                yield event
                return
            yield event

    async def ack(self, message: ReceivedMessage) -> bool:
        if self.closed:
            return False
        incoming = message.message.incoming if isinstance(message, MessageDecrypted) else message.failure.incoming
        self.acked.append(incoming.id)
        return True

    async def send(self, request: SendRequest) -> bool:
        """Record the send (the test pushes its ``SendStatus`` events); False once closed."""
        if self.closed:
            return False
        self.sends.append(request)
        return True

    async def close(self) -> CloseInfo:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)
        return close_info(CloseReason.CLOSED_BY_CLIENT)

    async def logout(self, timeout_s: float | None = None) -> CloseInfo:
        """Unlink (the fake WhatsApp confirms unless ``logout_confirmed`` is False), then close."""
        self.logged_out = True
        await self.close()
        if self.logout_confirmed:
            return close_info(CloseReason.LOGGED_OUT_BY_CLIENT)
        return close_info(CloseReason.LOGOUT_FAILED)


class FakeLinkFactory:
    """Hands out FakeSessions; ``script`` runs on each new session (e.g. push Opened)."""

    def __init__(self, script: Callable[[FakeSession], None] | None = None) -> None:
        self.sessions: list[FakeSession] = []
        self.script = script

    def open(self, account_id: str, store: MemoryAuthStore, pairing: PairingRequest | None,
             before_send: BeforeSend) -> FakeSession:
        session = FakeSession(account_id, store, pairing, before_send)
        self.sessions.append(session)
        if self.script is not None:
            self.script(session)
        return session

    def of(self, account_id: str) -> list[FakeSession]:
        return [s for s in self.sessions if s.account_id == account_id]

    def live(self, account_id: str) -> list[FakeSession]:
        return [s for s in self.of(account_id) if not s.closed]


async def eventually(check: Callable[[], bool], timeout_s: float = 3.0) -> None:
    """Wait until ``check()`` is true; fail the test after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# --- connectorSync ----------------------------------------------------------------------------------




class FakeFunctions:
    """connectorSync in memory: leases with generations, a vault key pair, stored states."""

    def __init__(self, lease_ttl_s: float = 30.0) -> None:
        self.lease_ttl_s = lease_ttl_s
        self.vault_key = X25519PrivateKey.generate()
        self.states: dict[str, AuthState] = {}
        self.pairing: dict[str, PairingRequest] = {}
        self.leases: dict[str, tuple[str, int]] = {}  # account -> (connector, generation)
        self.generations: dict[str, int] = {}
        self.commands: list[Command] = []
        self.lost: list[Lost] = []
        self.requests: list[SyncRequest] = []
        self.down = False

    def add(self, account_id: str, state: AuthState | None = None, pairing: PairingRequest | None = None) -> None:
        if state is not None:
            self.states[account_id] = state
        if pairing is not None:
            self.pairing[account_id] = pairing

    def open_snapshot(self, sealed: bytes, account_id: str) -> Snapshot:
        return Snapshot.from_bytes(open_sealed(sealed, self.vault_key, snapshot_aad(account_id)))

    def client(self) -> FakeSyncClient:
        return FakeSyncClient(self)

    def sync(self, request: SyncRequest) -> SyncReply:
        if self.down:
            raise SyncUnavailable("functions are down")
        self.requests.append(request)
        me = request.connector_id
        for ref in request.release:
            if self.leases.get(ref.account_id) == (me, ref.generation):
                del self.leases[ref.account_id]
        renewed = [ref for ref in request.held if self.leases.get(ref.account_id) == (me, ref.generation)]
        lost = [Lost(ref.account_id, "taken") for ref in request.held if ref not in renewed]
        lost += [item for item in self.lost if any(r.account_id == item.account_id for r in renewed)]
        renewed = [r for r in renewed if r.account_id not in {item.account_id for item in self.lost}]
        self.lost = []
        claimed: list[Claim] = []
        free = request.capacity - len(renewed)
        for account_id in sorted(set(self.states) | set(self.pairing)):
            if free <= 0:
                break
            if account_id in self.leases or any(r.account_id == account_id for r in request.release):
                continue
            generation = self.generations.get(account_id, 0) + 1
            self.generations[account_id] = generation
            self.leases[account_id] = (me, generation)
            free -= 1
            pairing = self.pairing.get(account_id)
            if pairing is not None:
                claimed.append(Claim(account_id, generation, "pair", pairing=pairing))
                continue
            snapshot = Snapshot(account_id, generation, datetime.now(UTC), me, self.states[account_id])
            sealed = seal(snapshot.to_bytes(), request.public_key, RESTORE_KEY_ID, RESTORE_AAD)
            claimed.append(Claim(account_id, generation, "restore", sealed_state=sealed, version=1))
        commands = [c for c in self.commands if self.leases.get(c.account_id, ("", 0))[0] == me]
        self.commands = [c for c in self.commands if c not in commands]
        return SyncReply(self.lease_ttl_s, public_key_bytes(self.vault_key), "kek-1",
                         renewed=[RenewedLease(r.account_id, r.generation) for r in renewed], lost=lost,
                         claimed=claimed, commands=commands)


class FakeSyncClient:
    def __init__(self, functions: FakeFunctions) -> None:
        self.functions = functions

    async def sync(self, request: SyncRequest) -> SyncReply:
        await asyncio.sleep(0)
        return self.functions.sync(request)

    async def close(self) -> None:
        pass


def pair_then_open(registered: AuthState) -> Callable[[FakeSession], None]:
    """A fake engine: a pairing session writes a registered identity, then 515; logins open."""

    def script(session: FakeSession) -> None:
        if session.pairing is None:
            session.push(opened())
            return
        session.push(code_shown("ABCD1234"))
        session.store.update_creds(dict(registered.creds.as_json()))
        session.store.set_keys({category: dict(entries) for category, entries in registered.keys.items()})
        # linked by the account's own phone (another number's would be refused and unlinked)
        digits = (session.pairing.phone_number or "").lstrip("+")
        session.push(paired(f"{digits}:7@s.whatsapp.net"))
        session.push(close_event("restart_required", 515))

    return script
