"""Unit tests of the simulator's pure parts: state, faults, phone-side pairing crypto, the core."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from connector.protocol import pairing as companion_side
from connector.protocol.binary import Node
from connector.protocol.crypto import KeyPair
from connector.protocol.errors import PairingError as CompanionPairingError
from shared import signatures
from simulator import adv, crypto, pairing
from simulator.companion import CompanionCreds, ScriptedCompanion
from simulator.core import Close, Send, SimulatorCore
from simulator.errors import (
    ClientProtocolError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PairingError,
)
from simulator.faults import Fault, FaultBook, FaultKind
from simulator.identity import new_server_identity
from simulator.state import SimulatorState, normalize_phone
from simulator.store import JsonFileStateStore, MemoryStateStore


def seeded(seed: int = 1) -> crypto.RandomBytes:
    rng = random.Random(seed)
    return lambda n: bytes(rng.getrandbits(8) for _ in range(n))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------------------------- state


@pytest.mark.parametrize(
    ("raw", "user"), [("+40700000001", "40700000001"), ("40 700-000-001", "40700000001")]
)
def test_normalize_phone(raw: str, user: str) -> None:
    assert normalize_phone(raw) == user


@pytest.mark.parametrize("raw", ["", "+0700000001", "12345", "+4070000000123456", "abc"])
def test_normalize_phone_rejects(raw: str) -> None:
    with pytest.raises(InvalidRequestError):
        normalize_phone(raw)


def make_core(clock: FakeClock | None = None) -> SimulatorCore:
    rand = seeded()
    state = SimulatorState(identity=new_server_identity(rand, 1_700_000_000))
    return SimulatorCore(state, clock=clock or FakeClock(), random_bytes=rand)


def test_state_round_trips_through_json_and_the_file_store(tmp_path: Path) -> None:
    core = make_core()
    phone = core.create_phone("+40700000001", push_name="Ana")
    phone.removed_device_ids.add(3)
    phone.next_device_id = 4
    store = JsonFileStateStore(tmp_path / "sim")
    assert store.load() is None
    store.save(core.state)
    loaded = store.load()
    assert loaded is not None
    assert loaded.to_json() == core.state.to_json()
    assert loaded.phones["40700000001"].removed_device_ids == {3}
    memory = MemoryStateStore()
    memory.save(core.state)
    assert memory.load() is not None and memory.saves == 1


def test_device_ids_are_never_reused() -> None:
    core = make_core()
    phone = core.create_phone("+40700000001")
    first, _ = phone.allocate_device()
    second, _ = phone.allocate_device()
    assert (first, second) == (1, 2)
    with pytest.raises(NotFoundError):
        phone.unlink(1)
    with pytest.raises(ConflictError):
        core.create_phone("40700000001")


# ---------------------------------------------------------------------------------------- faults


def test_fault_book_matches_targets_and_expires() -> None:
    book = FaultBook()
    device_fault = Fault.from_json(
        {"kind": "stop_pings", "phone": "+40700000001", "device": 2, "seconds": 10}
    )
    book.add(device_fault, now=100)
    assert book.in_force(FaultKind.STOP_PINGS, "40700000001", 2, now=105)
    assert not book.in_force(FaultKind.STOP_PINGS, "40700000001", 3, now=105)
    assert not book.in_force(FaultKind.STOP_PINGS, "40700000002", 2, now=105)
    assert not book.in_force(FaultKind.REFUSE, "40700000001", 2, now=105)
    assert not book.in_force(FaultKind.STOP_PINGS, "40700000001", 2, now=110)
    assert book.active(now=110) == []


def test_instant_faults_are_not_kept() -> None:
    book = FaultBook()
    book.add(Fault.from_json({"kind": "drop"}), now=0)
    assert book.active(now=0) == []
    book.add(Fault.from_json({"kind": "refuse", "seconds": 5}), now=0)
    assert book.refuses_everyone(now=1)
    assert not book.refuses_everyone(now=6)


# ---------------------------------------------------------------------------------------- pairing crypto


def link_code_exchange(seed: int, companion_code: str, phone_code: str) -> tuple[bool, bytes, bytes]:
    """The companion shows ``companion_code``, the user types ``phone_code`` on the phone: both halves
    run, and the phone opens the key bundle; returns (whether the phone unwrapped the companion's
    ephemeral key, what the companion derived, what the phone opened)."""
    rand = seeded(seed)
    phone_identity = KeyPair.generate(rand)
    companion_identity = KeyPair.generate(rand)
    companion_ephemeral = KeyPair.generate(rand)
    wrapped = companion_side.wrap_link_code_ephemeral(companion_code, companion_ephemeral.public, rand)
    hello = pairing.primary_hello(phone_code, wrapped, rand)
    primary_ephemeral = companion_side.unwrap_link_code_ephemeral(companion_code, hello.wrapped_primary_ephemeral)
    finish = companion_side.companion_finish_link_code(
        companion_ephemeral=companion_ephemeral,
        primary_ephemeral_public=primary_ephemeral,
        companion_identity=companion_identity,
        primary_identity_public=phone_identity.public,
        rand=rand,
    )
    opened = pairing.open_key_bundle(
        hello,
        finish.wrapped_key_bundle,
        phone_identity_private=phone_identity.private,
        phone_identity_public=phone_identity.public,
        companion_identity_public=companion_identity.public,
    )
    return hello.companion_ephemeral_public == companion_ephemeral.public, finish.adv_secret, opened


def test_link_code_round_trip_between_the_independent_halves() -> None:
    code = companion_side.generate_pairing_code(seeded(2))
    unwrapped, derived, opened = link_code_exchange(2, code, pairing.normalize_link_code(code[:4] + "-" + code[4:]))
    assert unwrapped
    assert opened == derived


def test_key_bundle_from_a_wrong_code_is_refused() -> None:
    with pytest.raises(PairingError):
        link_code_exchange(3, "ABCDEFGH", "ABCDEFGJ")  # one character off


def test_adv_identity_verifies_on_the_companion_and_its_reply_on_the_phone() -> None:
    rand = seeded(4)
    phone_identity = KeyPair.generate(rand)
    companion_identity = KeyPair.generate(rand)
    secret = rand(32)
    signed = adv.sign_companion(
        phone_identity_private=phone_identity.private,
        phone_identity_public=phone_identity.public,
        companion_identity_public=companion_identity.public,
        adv_secret=secret,
        key_index=3,
        raw_id=77,
        timestamp=1_700_000_000,
        random_bytes=rand,
    )
    verified = companion_side.companion_verify_device_identity(
        signed.container, adv_secret=secret, identity=companion_identity, rand=rand
    )
    assert (verified.key_index, verified.raw_id) == (3, 77)
    adv.check_companion_reply(
        verified.reply_identity,
        expected=signed,
        phone_identity_public=phone_identity.public,
        companion_identity_public=companion_identity.public,
    )
    with pytest.raises(CompanionPairingError):
        companion_side.companion_verify_device_identity(
            signed.container, adv_secret=bytes(32), identity=companion_identity, rand=rand
        )
    other = KeyPair.generate(rand)
    with pytest.raises(PairingError):
        adv.check_companion_reply(
            verified.reply_identity,
            expected=signed,
            phone_identity_public=phone_identity.public,
            companion_identity_public=other.public,
        )


def test_parse_qr_accepts_baileys_and_whatsmeow_forms() -> None:
    creds = CompanionCreds.generate(seeded(5))
    qr = ScriptedCompanion("ws://unused", bytes(32), creds).qr(b"2@abc")
    assert qr.startswith(pairing.QR_URL_PREFIX)
    bare = qr.removeprefix(pairing.QR_URL_PREFIX).rsplit(",", 1)[0]
    for text in (qr, bare):
        parsed = pairing.parse_qr(text)
        assert parsed.ref == b"2@abc"
        assert parsed.noise_public == creds.noise.public
        assert parsed.adv_secret == creds.adv_secret
        assert repr(parsed) == "QrContent(ref=b'2@abc')"  # never the adv secret


def test_xeddsa_sign_and_verify_and_signed_pre_key_check() -> None:
    rand = seeded(6)
    private, public = crypto.x25519_keypair(rand)
    _, spk_public = crypto.x25519_keypair(rand)
    signature = signatures.xeddsa_sign(private, b"\x05" + spk_public, rand)
    assert pairing.signed_pre_key_valid(public, spk_public, signature)
    assert pairing.signed_pre_key_valid(public, b"\x05" + spk_public, signature)
    assert not pairing.signed_pre_key_valid(spk_public, spk_public, signature)
    tampered = bytes([signature[0] ^ 1]) + signature[1:]
    assert not pairing.signed_pre_key_valid(public, spk_public, tampered)


# ---------------------------------------------------------------------------------------- core


def test_core_refuses_stanzas_before_the_handshake_and_on_unknown_connections() -> None:
    core = make_core()
    conn = core.open_connection()
    with pytest.raises(ClientProtocolError):
        core.receive(conn, Node("iq", {"id": "1", "type": "get", "xmlns": "w:p"}))
    with pytest.raises(ClientProtocolError):
        core.client_hello(conn, bytes(32), b"\xff\xff")
    with pytest.raises(ClientProtocolError):
        core.receive(999, Node("iq"))


def test_core_registration_gives_six_refs_and_closing_forgets_them() -> None:
    core = make_core()
    core.create_phone("+40700000001")
    creds = CompanionCreds.generate(seeded(7))
    companion = ScriptedCompanion("ws://unused", bytes(32), creds)
    conn = core.open_connection()
    actions = core.client_hello(
        conn, creds.noise.public, companion.registration_payload().SerializeToString()
    )
    [send] = actions
    assert isinstance(send, Send)
    refs = [r.content for r in send.node.children("pair-device")[0].children("ref")]
    assert len(refs) == 6
    assert isinstance(refs[0], bytes)
    core.connection_lost(conn)
    with pytest.raises(NotFoundError):
        core.scan_qr("+40700000001", companion.qr(refs[0]))


def test_core_login_of_unknown_device_fails_401_and_closes() -> None:
    core = make_core()
    core.create_phone("+40700000001")
    creds = CompanionCreds.generate(seeded(8))
    creds.user, creds.device_id = "40700000001", 4
    companion = ScriptedCompanion("ws://unused", bytes(32), creds)
    conn = core.open_connection()
    failure, close = core.client_hello(
        conn, creds.noise.public, companion.login_payload().SerializeToString()
    )
    assert isinstance(failure, Send) and failure.node.tag == "failure"
    assert failure.node.attrs["reason"] == "401"
    assert close == Close(conn)
    assert core.stats()["loggedIn"] == 0


def test_core_registration_with_a_bad_signed_pre_key_is_refused() -> None:
    core = make_core()
    creds = CompanionCreds.generate(seeded(9))
    creds.signed_pre_key_signature = bytes(64)
    companion = ScriptedCompanion("ws://unused", bytes(32), creds)
    conn = core.open_connection()
    failure, close = core.client_hello(
        conn, creds.noise.public, companion.registration_payload().SerializeToString()
    )
    assert isinstance(failure, Send) and failure.node.attrs["reason"] == "400"
    assert isinstance(close, Close)


def registered_core() -> tuple[SimulatorCore, int, CompanionCreds, Node]:
    """A core with one phone and one registering companion whose QR was scanned: returns the pair-success iq."""
    core = make_core()
    core.create_phone("+40700000001")
    creds = CompanionCreds.generate(seeded(10))
    companion = ScriptedCompanion("ws://unused", bytes(32), creds)
    conn = core.open_connection()
    [send] = core.client_hello(conn, creds.noise.public, companion.registration_payload().SerializeToString())
    assert isinstance(send, Send)
    ref = send.node.children("pair-device")[0].children("ref")[0].content
    assert isinstance(ref, bytes)
    jid, [pair_success] = core.scan_qr("+40700000001", companion.qr(ref))
    assert jid == "40700000001:1@s.whatsapp.net"
    assert isinstance(pair_success, Send)
    return core, conn, creds, pair_success.node


def signed_device_identity(creds: CompanionCreds, pair_success: Node, *, seed: int) -> bytes:
    """What the companion answers a pair-success with: the device identity it verified, signed."""
    container = pair_success.child_bytes("pair-success", "device-identity")
    assert container is not None
    verified = companion_side.companion_verify_device_identity(
        container, adv_secret=creds.adv_secret, identity=creds.identity, rand=seeded(seed)
    )
    return verified.reply_identity


def pair_device_sign(pair_success: Node, device_identity: bytes) -> Node:
    """The companion's result iq to a pair-success, carrying ``device_identity``."""
    sign = Node("pair-device-sign", {}, [Node("device-identity", {"key-index": "1"}, device_identity)])
    return Node("iq", {"type": "result", "id": pair_success.attrs["id"]}, [sign])


def test_pair_device_sign_with_a_bad_device_signature_links_nothing() -> None:
    core, conn, creds, iq = registered_core()
    reply = signed_device_identity(creds, iq, seed=11)
    forged = reply[:-1] + bytes([reply[-1] ^ 1])
    actions = core.receive(conn, pair_device_sign(iq, forged))
    assert actions == [Close(conn)]
    assert core.state.phones["40700000001"].devices == {}


def test_pair_device_sign_links_the_device_then_515() -> None:
    core, conn, creds, iq = registered_core()
    stream_error, close = core.receive(conn, pair_device_sign(iq, signed_device_identity(creds, iq, seed=12)))
    assert isinstance(stream_error, Send) and stream_error.node.tag == "stream:error"
    assert stream_error.node.attrs == {"code": "515"}
    assert close == Close(conn)
    device = core.state.phones["40700000001"].devices[1]
    assert device.noise_public == creds.noise.public
    assert device.identity_public == creds.identity.public
    assert device.registration_id == creds.registration_id


def test_companion_refusing_pair_success_closes_and_links_nothing() -> None:
    core, conn, _, iq = registered_core()
    error = Node("error", {"code": "401", "text": "hmac-mismatch"})
    actions = core.receive(conn, Node("iq", {"type": "error", "id": iq.attrs["id"]}, [error]))
    assert actions == [Close(conn)]
    assert core.state.phones["40700000001"].devices == {}
