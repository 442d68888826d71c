"""Unit tests of the Signal building blocks: KDF chains, MAC, wire codecs, session records, fuzz."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.protocol.signal import group, kdf, keys
from connector.protocol.signal.errors import BadMacError, InvalidMessageError, InvalidRecordError, SignalError
from connector.protocol.signal.session import SessionRecord
from connector.protocol.signal.types import SignalAddress
from connector.protocol.signal.wire import (
    PreKeySignalMessage,
    SenderKeyDistributionMessage,
    SenderKeyMessage,
    SignalMessage,
    parse_fields,
)
from shared.authstate import SESSION
from shared.bufferjson import revive
from testkit.protocol.seeded import SeededRandom

from .parties import make_party, pair

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- KDF and ciphers -----------------------------------------------------------------------


@given(st.binary(max_size=200), st.binary(min_size=32, max_size=32), st.binary(max_size=40),
       st.integers(min_value=1, max_value=3))
def test_derive_secrets_is_rfc5869_hkdf(material: bytes, salt: bytes, info: bytes, blocks: int) -> None:
    expected = HKDF(algorithm=hashes.SHA256(), length=32 * blocks, salt=salt, info=info).derive(material)
    assert b"".join(kdf.derive_secrets(material, salt, info, blocks)) == expected


def test_chain_step_and_message_keys() -> None:
    chain_key = bytes(range(32))
    seed, next_key = kdf.chain_step(chain_key)
    assert seed == hmac.new(chain_key, b"\x01", hashlib.sha256).digest()
    assert next_key == hmac.new(chain_key, b"\x02", hashlib.sha256).digest()
    cipher_key, mac_key, iv = kdf.message_keys(seed)
    out = HKDF(algorithm=hashes.SHA256(), length=96, salt=bytes(32), info=b"WhisperMessageKeys").derive(seed)
    assert (cipher_key, mac_key, iv) == (out[:32], out[32:64], out[64:80])
    group_iv, group_key = kdf.group_message_keys(seed)
    out = HKDF(algorithm=hashes.SHA256(), length=64, salt=bytes(32), info=b"WhisperGroup").derive(seed)
    assert (group_iv, group_key) == (out[:16], out[16:48])


@given(st.binary(max_size=100))
def test_aes_cbc_round_trip(plaintext: bytes) -> None:
    key, iv = bytes(range(32)), bytes(16)
    ciphertext = kdf.aes_cbc_encrypt(key, iv, plaintext)
    assert len(ciphertext) % 16 == 0 and len(ciphertext) > len(plaintext)
    assert kdf.aes_cbc_decrypt(key, iv, ciphertext) == plaintext


@given(st.binary(max_size=64))
def test_aes_cbc_garbage_is_bad_mac(data: bytes) -> None:
    with contextlib.suppress(BadMacError):
        kdf.aes_cbc_decrypt(bytes(32), bytes(16), data)


def test_message_mac_covers_both_identities_and_body() -> None:
    alice, bob = make_party("alice"), make_party("bob")
    pair(alice, bob)
    record = SessionRecord.from_json(alice.store.get_keys(SESSION, [bob.address.name])[bob.address.name])
    entry = record.open_session()
    assert entry is not None
    sending = entry.chains[base64.b64encode(entry.ephemeral.public).decode()]
    assert sending.key is not None
    _, data = alice.repo.encrypt(bob.address, b"mac me")
    message = SignalMessage.parse(data)
    assert message.counter == sending.counter + 1
    seed, _ = kdf.chain_step(sending.key)
    _, mac_key, _ = kdf.message_keys(seed)
    expected = hmac.new(mac_key, alice.identity_public() + bob.identity_public() + message.body,
                        hashlib.sha256).digest()[:8]
    assert message.mac == expected
    assert bob.repo.decrypt(alice.address, "msg", data) == b"mac me"


# --- signatures ----------------------------------------------------------------------------


@given(st.binary(max_size=100))
def test_signatures_verify_and_carry_the_sign_bit_convention(message: bytes) -> None:
    rand = SeededRandom("sig")
    pair_ = keys.SignalKeyPair.generate(rand)
    signature = keys.sign(pair_.private, message, rand)
    assert keys.verify(pair_.public, message, signature)
    assert keys.verify(pair_.public[1:], message, signature)
    assert not keys.verify(pair_.public, message + b"x", signature)
    assert not keys.verify(pair_.public, message, signature[:-1] + bytes([signature[-1] ^ 0x80]))
    assert not keys.verify(b"\x06" + pair_.public[1:], message, signature)


# --- wire codecs ---------------------------------------------------------------------------

key33 = st.binary(min_size=32, max_size=32).map(lambda b: b"\x05" + b)
uint32 = st.integers(min_value=0, max_value=2**32 - 1)


@given(key33, uint32, uint32, st.binary(max_size=80), st.binary(min_size=8, max_size=8))
def test_signal_message_round_trip(key: bytes, counter: int, previous: int, ciphertext: bytes, mac: bytes) -> None:
    data = SignalMessage.build(key, counter, previous, ciphertext).with_mac(mac)
    parsed = SignalMessage.parse(data)
    assert (parsed.ephemeral_key, parsed.counter, parsed.previous_counter, parsed.ciphertext, parsed.mac) == (
        key, counter, previous, ciphertext, mac)


@given(uint32, st.none() | uint32, uint32, key33, key33, st.binary(max_size=80))
def test_pre_key_message_round_trip(reg: int, pre_key_id: int | None, spk: int, base: bytes, ident: bytes,
                                    inner: bytes) -> None:
    message = PreKeySignalMessage(reg, pre_key_id, spk, base, ident, inner)
    assert PreKeySignalMessage.parse(message.encode()) == message


@given(uint32, uint32, st.binary(min_size=32, max_size=32), key33)
def test_skdm_round_trip(key_id: int, iteration: int, chain_key: bytes, signing: bytes) -> None:
    message = SenderKeyDistributionMessage(key_id, iteration, chain_key, signing)
    assert SenderKeyDistributionMessage.parse(message.encode()) == message


@given(uint32, uint32, st.binary(max_size=80), st.binary(min_size=64, max_size=64))
def test_sender_key_message_round_trip(key_id: int, iteration: int, ciphertext: bytes, sig: bytes) -> None:
    parsed = SenderKeyMessage.parse(SenderKeyMessage.build(key_id, iteration, ciphertext).with_signature(sig))
    assert (parsed.key_id, parsed.iteration, parsed.ciphertext, parsed.signature) == (key_id, iteration,
                                                                                     ciphertext, sig)


def test_unknown_fields_are_skipped_and_versions_checked() -> None:
    # field 9 varint, field 10 fixed64, field 11 fixed32 before the known ones
    extra = bytes([0x48, 0x01, 0x51]) + bytes(8) + bytes([0x5D]) + bytes(4)
    skdm = SenderKeyDistributionMessage(7, 1, bytes(32), b"\x05" + bytes(32)).encode()
    assert SenderKeyDistributionMessage.parse(skdm[:1] + extra + skdm[1:]).key_id == 7
    for version in (0x23, 0x34, 0x00):
        try:
            SenderKeyDistributionMessage.parse(bytes([version]) + skdm[1:])
        except InvalidMessageError:
            continue
        raise AssertionError(f"version 0x{version:02x} accepted")
    assert SenderKeyDistributionMessage.parse(bytes([0x43]) + skdm[1:]).key_id == 7  # newer sender, min 3


@FUZZ
@given(st.binary(max_size=200))
def test_every_parser_raises_only_its_error(data: bytes) -> None:
    for parse in (SignalMessage.parse, PreKeySignalMessage.parse, SenderKeyDistributionMessage.parse,
                  SenderKeyMessage.parse, lambda d: parse_fields(d, "fuzz")):
        with contextlib.suppress(InvalidMessageError):
            parse(data)


@FUZZ
@given(st.binary(max_size=200), st.sampled_from(["pkmsg", "msg"]))
def test_repository_refuses_any_bytes_with_signal_errors(data: bytes, kind: str) -> None:
    alice, bob = _paired()
    before = bob.store.snapshot()
    for call in (lambda: bob.repo.decrypt(alice.address, kind, data),  # type: ignore[arg-type]
                 lambda: bob.repo.group_decrypt("g@g.us", alice.address, data),
                 lambda: bob.repo.process_sender_key_distribution("g@g.us", alice.address, data)):
        with contextlib.suppress(SignalError):
            call()
    assert bob.store.snapshot().keys.get(SESSION) == before.keys.get(SESSION)


@FUZZ
@given(st.binary(min_size=1, max_size=3), st.integers(min_value=0, max_value=300))
def test_mutated_real_messages_are_refused_cleanly(patch: bytes, offset: int) -> None:
    alice, bob = _paired()
    kind, data = _REAL
    position = offset % len(data)
    mutated = data[:position] + patch + data[position + len(patch):]
    with contextlib.suppress(SignalError):
        bob.repo.decrypt(alice.address, kind, mutated)  # type: ignore[arg-type]


_PAIR_CACHE: dict[str, object] = {}
_REAL: tuple[str, bytes] = ("msg", b"")


def _paired():  # type: ignore[no-untyped-def]
    global _REAL
    if "pair" not in _PAIR_CACHE:
        alice, bob = make_party("fuzz-alice"), make_party("fuzz-bob")
        pair(alice, bob)
        _REAL = alice.repo.encrypt(bob.address, b"real message")
        _PAIR_CACHE["pair"] = (alice, bob, bob.store.snapshot())
    alice, bob, state = _PAIR_CACHE["pair"]  # type: ignore[misc]
    fresh = make_party("fuzz-bob", state=state)
    return alice, fresh


# --- session records -----------------------------------------------------------------------

jsonish = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)


@FUZZ
@given(jsonish)
def test_malformed_records_raise_invalid_record(value: object) -> None:
    for parse in (SessionRecord.from_json, group.SenderKeyRecord.from_store):
        with contextlib.suppress(InvalidRecordError):
            parse(value)  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["a2b", "b2a", "a2b-hold", "b-deliver"]), max_size=25))
def test_session_records_round_trip_losslessly(script: list[str]) -> None:
    alice, bob = make_party("rt-alice"), make_party("rt-bob")
    pair(alice, bob)
    held: list[tuple[str, bytes]] = []
    for step in script:
        if step == "a2b":
            bob.repo.decrypt(alice.address, *alice.repo.encrypt(bob.address, b"x"))
        elif step == "b2a":
            alice.repo.decrypt(bob.address, *bob.repo.encrypt(alice.address, b"y"))
        elif step == "a2b-hold":
            held.append(alice.repo.encrypt(bob.address, b"held"))  # type: ignore[arg-type]
        elif held:
            bob.repo.decrypt(alice.address, *held.pop(0))  # type: ignore[arg-type]
    for party, peer in ((alice, bob), (bob, alice)):
        value = party.store.get_keys(SESSION, [peer.address.name])[peer.address.name]
        text = json.dumps(value)
        assert SessionRecord.from_json(json.loads(text)).to_json() == value
        assert json.dumps(SessionRecord.from_json(value).to_json()) == text  # same key order too


def _paths(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


def _replace(value: object, path: tuple[object, ...], new: object) -> object:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}  # type: ignore[index]
    assert isinstance(value, list) and isinstance(head, int)
    return [*value[:head], _replace(value[head], rest, new), *value[head + 1:]]


def _real_records() -> tuple[object, object]:
    alice, bob = make_party("records-alice"), make_party("records-bob")
    pair(alice, bob)
    alice.repo.encrypt(bob.address, b"skipped")
    bob.repo.decrypt(alice.address, *alice.repo.encrypt(bob.address, b"leaves a seed behind"))
    session = bob.store.get_keys(SESSION, [alice.address.name])[alice.address.name]
    rand = SeededRandom("records")
    own = group.create_own_state(rand)
    received = group.state_from_distribution(group.distribution_message(own))
    received.message_seed(2)
    return session, revive(group.SenderKeyRecord([received, own]).to_store())


_SESSION_JSON, _SENDER_KEY_JSON = _real_records()
replacements = (st.none() | st.booleans() | st.integers(min_value=-3, max_value=2**40) | st.text(max_size=50)
                | st.binary(max_size=40) | st.just({}) | st.just([]) | st.just("BQ==")
                | st.sampled_from([-1, -2**31, 2**32, 2**64, 0.5])
                | st.just(base64.b64encode(bytes(33)).decode()))


@FUZZ
@given(st.data())
def test_mutated_real_records_raise_invalid_record_or_work(data: st.DataObject) -> None:
    cases = ((_SESSION_JSON, SessionRecord.from_json), (_SENDER_KEY_JSON, group.SenderKeyRecord.from_store))
    for value, parse in cases:
        path = data.draw(st.sampled_from(_paths(value)))
        mutated = _replace(value, path, data.draw(replacements))
        with contextlib.suppress(InvalidRecordError):
            parsed = parse(mutated)  # type: ignore[arg-type]
            parsed.to_json() if isinstance(parsed, SessionRecord) else parsed.to_store()


@FUZZ
@given(st.data())
def test_repository_on_mutated_stored_records_raises_only_signal_errors(data: st.DataObject) -> None:
    alice, bob = _paired()
    value = bob.store.get_keys(SESSION, [alice.address.name])[alice.address.name]
    path = data.draw(st.sampled_from(_paths(value)))
    bob.store.set_keys({SESSION: {alice.address.name: _replace(value, path, data.draw(replacements))}})  # type: ignore[dict-item]
    kind, message = _REAL
    with contextlib.suppress(SignalError):
        bob.repo.decrypt(alice.address, kind, message)  # type: ignore[arg-type]
    with contextlib.suppress(SignalError):
        bob.repo.encrypt(alice.address, b"reply")


def test_records_never_print_key_material() -> None:
    session = SessionRecord.from_json(_SESSION_JSON)  # type: ignore[arg-type]
    text = repr(session)
    entry = next(iter(session.sessions.values()))
    secrets = [entry.root_key, entry.ephemeral.private, *(c.key for c in entry.chains.values() if c.key),
               *(seed for c in entry.chains.values() for seed in c.message_keys.values())]
    sender_keys = group.SenderKeyRecord.from_store(_SENDER_KEY_JSON)  # type: ignore[arg-type]
    text += repr(sender_keys)
    secrets += [s.chain_key for s in sender_keys.states]
    secrets += [s.signing_private for s in sender_keys.states if s.signing_private]
    for secret in secrets:
        assert secret.hex() not in text and base64.b64encode(secret).decode() not in text and repr(secret) not in text


_INITIATOR = make_party("fuzz-initiator")
_INITIATOR.repo.build_session(SignalAddress("fuzz-responder"), make_party("fuzz-responder").bundle())
_INITIATOR_STATE = _INITIATOR.store.snapshot()


@FUZZ
@given(st.data())
def test_encrypt_on_a_mutated_pending_session_raises_only_signal_errors(data: st.DataObject) -> None:
    party = make_party("fuzz-initiator", state=_INITIATOR_STATE)
    name = SignalAddress("fuzz-responder").name
    value = party.store.get_keys(SESSION, [name])[name]
    path = data.draw(st.sampled_from(_paths(value)))
    party.store.set_keys({SESSION: {name: _replace(value, path, data.draw(replacements))}})  # type: ignore[dict-item]
    with contextlib.suppress(SignalError):
        party.repo.encrypt(SignalAddress("fuzz-responder"), b"first")
