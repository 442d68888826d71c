"""The receive path of the protocol client with the real Signal layer: a peer encrypts for our device, the
client decrypts the stanza's payloads in order and reports a typed outcome; receipts, duplicates (487),
retry receipts (keys from count 2, at most 5) and the final failure."""

from __future__ import annotations

from typing import TypeVar

from connector.protocol import prekeys
from connector.protocol.binary import Jid, Node
from connector.protocol.client import Client
from connector.protocol.events import (
    CredsChanged,
    DuplicateIgnored,
    Event,
    FailureReason,
    MessageDecrypted,
    MessageUndecryptable,
    RetryRequested,
)
from connector.protocol.inbound import decrypt_message
from connector.protocol.padding import pad
from connector.protocol.retries import RetryLedger
from connector.protocol.signal.repository import SignalRepository
from connector.protocol.signal.types import PreKeyBundle, SignalAddress
from connector.protocol.stanzas import incoming_message
from connector.protocol.wamessage import ContentKind
from connector.protocol.wamessage_encode import device_sent_message, sender_key_distribution_message, text_message
from shared.authstore import MemoryAuthStore
from testkit.protocol.fake_server import NOW, FakeServer
from testkit.protocol.seeded import SeededRandom
from tests.connector.protocol.signal.parties import Party, make_party

from .test_client import ME, open_client, registered_store

T = TypeVar("T")
US = SignalAddress.from_jid(Jid.parse(ME))
BOB = "155500001@s.whatsapp.net"
OWN_PHONE = "15551234567@s.whatsapp.net"
GROUP = "120363000000000001@g.us"


def of_type(events: list[Event], kind: type[T]) -> list[T]:
    return [e for e in events if isinstance(e, kind)]


def our_bundle(store: MemoryAuthStore) -> PreKeyBundle:
    creds = store.get_creds()
    batch = prekeys.prepare_pre_keys(store, 1, SeededRandom("bundle"))
    prekeys.mark_uploaded(store, batch)
    (pre_key_id, pre_key), = batch.keys
    signed = creds.signed_pre_key
    return PreKeyBundle(registration_id=creds.registration_id, identity_key=creds.signed_identity_key.public,
                        signed_pre_key_id=signed.key_id, signed_pre_key=signed.key_pair.public,
                        signed_pre_key_signature=signed.signature, pre_key_id=pre_key_id, pre_key=pre_key)


def encrypt(peer: Party, plaintext: bytes, bundle: PreKeyBundle | None) -> tuple[str, bytes]:
    [(kind, data)] = peer.repo.encrypt_for(pad(plaintext, peer.random), {US: bundle}).values()
    return kind, data


def stanza(message_id: str, sender: str, encs: list[tuple[str, bytes]], **attrs: str) -> Node:
    return Node("message", {"id": message_id, "from": sender, "t": "1780000001", "type": "text", **attrs},
                [Node("enc", {"v": "2", "type": kind}, data) for kind, data in encs])


def setup() -> tuple[Client, FakeServer, MemoryAuthStore, Party]:
    store, server = registered_store(), FakeServer()
    client, _ = open_client(store, server)
    client.events()
    return client, server, store, make_party("bob", SignalAddress.from_jid(Jid.parse(BOB)))


def test_a_peers_first_and_second_message_decrypt_and_are_confirmed_only_on_ack() -> None:
    client, server, store, bob = setup()
    first = encrypt(bob, text_message("hello keeper"), our_bundle(store))
    assert first[0] == "pkmsg"
    client.receive_data(server.send(stanza("3EB0A1", BOB, [first], notify="Bob")), NOW)
    (decrypted,) = of_type(client.events(), MessageDecrypted)
    message = decrypted.message
    assert (message.decoded.content.kind, message.decoded.text) == (ContentKind.TEXT, "hello keeper")
    assert (message.addressing.chat, message.addressing.sender, message.addressing.from_me) == (BOB, BOB, False)
    assert message.decoded.json == {"conversation": "hello keeper"}
    assert message.incoming.push_name == "Bob"
    assert server.receive(client.data_to_send()) == []  # nothing confirmed before the caller says so
    assert client.ack_message(decrypted)
    assert server.receive(client.data_to_send()) == [Node("receipt", {"id": "3EB0A1", "to": BOB})]

    second = encrypt(bob, text_message("again"), None)
    client.receive_data(server.send(stanza("3EB0A2", BOB, [second])), NOW + 1)
    (decrypted,) = of_type(client.events(), MessageDecrypted)
    assert decrypted.message.decoded.text == "again"

    # Redelivered after its key was spent (the receipt was lost): acked with 487, nothing reported again.
    client.receive_data(server.send(stanza("3EB0A2", BOB, [second])), NOW + 2)
    events = client.events()
    assert of_type(events, MessageDecrypted) == [] and len(of_type(events, DuplicateIgnored)) == 1
    (nack,) = server.receive(client.data_to_send())
    assert (nack.tag, nack.attrs["error"], nack.attrs["id"]) == ("ack", "487", "3EB0A2")


def test_a_group_message_uses_the_sender_key_distributed_in_the_same_stanza() -> None:
    client, server, store, bob = setup()
    author = SignalAddress.from_jid(Jid.parse(BOB))
    skmsg, skdm = bob.repo.group_encrypt(GROUP, author, pad(text_message("hello group"), bob.random))
    carrier = encrypt(bob, sender_key_distribution_message(GROUP, skdm), our_bundle(store))
    node = stanza("3EB0G1", GROUP, [carrier, ("skmsg", skmsg)], participant=BOB)
    client.receive_data(server.send(node), NOW)
    (decrypted,) = of_type(client.events(), MessageDecrypted)
    where = decrypted.message.addressing
    assert decrypted.message.decoded.text == "hello group"
    assert (where.chat, where.sender, where.participant) == (GROUP, BOB, BOB)
    client.ack_message(decrypted)
    assert server.receive(client.data_to_send()) == [
        Node("receipt", {"id": "3EB0G1", "to": GROUP, "participant": BOB})]
    # The next group message comes without a pairwise copy.
    skmsg2, _ = bob.repo.group_encrypt(GROUP, author, pad(text_message("second"), bob.random))
    client.receive_data(server.send(stanza("3EB0G2", GROUP, [("skmsg", skmsg2)], participant=BOB)), NOW + 1)
    (decrypted,) = of_type(client.events(), MessageDecrypted)
    assert decrypted.message.decoded.text == "second"


def test_our_own_phones_send_is_from_me_in_the_chat_it_went_to_with_a_sender_receipt() -> None:
    client, server, store, _ = setup()
    phone = make_party("phone", SignalAddress.from_jid(Jid.parse(OWN_PHONE)))
    copy = encrypt(phone, device_sent_message(text_message("sent from my phone"), BOB), our_bundle(store))
    client.receive_data(server.send(stanza("3EB0M1", OWN_PHONE, [copy], recipient=BOB)), NOW)
    (decrypted,) = of_type(client.events(), MessageDecrypted)
    where = decrypted.message.addressing
    assert (where.chat, where.sender, where.from_me) == (BOB, OWN_PHONE, True)
    assert decrypted.message.decoded.text == "sent from my phone"
    client.ack_message(decrypted)
    (receipt,) = server.receive(client.data_to_send())
    assert receipt.attrs["type"] == "sender" and receipt.attrs["to"] == OWN_PHONE


def test_a_corrupted_message_gets_five_retry_receipts_then_is_undecryptable() -> None:
    client, server, store, bob = setup()
    client.receive_data(server.send(stanza("3EB0C0", BOB, [encrypt(bob, text_message("hi"), our_bundle(store))])),
                        NOW)
    client.events()
    kind, data = encrypt(bob, text_message("secret"), None)
    middle = len(data) // 2  # as the simulator's corrupt_ciphertext fault does
    corrupted = data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:]
    node = stanza("3EB0C1", BOB, [(kind, corrupted)])
    for count in range(1, 6):
        client.receive_data(server.send(node), NOW + count)
        events = client.events()
        (retried,) = of_type(events, RetryRequested)
        assert retried.count == count and retried.failure.reason in (FailureReason.BAD_MAC, FailureReason.INVALID)
        receipt, nack = server.receive(client.data_to_send())
        retry = receipt.child("retry")
        assert retry is not None and retry.attrs["count"] == str(count) and retry.attrs["id"] == "3EB0C1"
        assert receipt.child_bytes("registration") == store.get_creds().registration_id.to_bytes(4, "big")
        keys = receipt.child("keys")
        # Our keys from the second retry on, with a fresh pre-key: a critical change (persisted first).
        assert (keys is not None) == (count >= 2)
        assert any(isinstance(e, CredsChanged) and e.kind == "critical" for e in events) == (count >= 2)
        assert nack.attrs["error"] == "500"
    client.receive_data(server.send(node), NOW + 6)
    (final,) = of_type(client.events(), MessageUndecryptable)
    assert (final.retries, final.acked) == (5, False)
    assert server.receive(client.data_to_send()) == []
    client.ack_message(final)
    (nack,) = server.receive(client.data_to_send())
    assert nack.attrs["error"] == "500"


def test_a_message_whose_sender_never_resends_is_reported_when_the_wait_runs_out() -> None:
    store, server = registered_store(), FakeServer()
    ledger = RetryLedger(resend_wait_s=30.0)
    client, _ = open_client(store, server)
    client._retries = ledger  # the account's ledger, as the driver passes it
    client.events()
    client.receive_data(server.send(stanza("3EB0X1", BOB, [("msg", b"\x33garbage")])), NOW)
    (retried,) = of_type(client.events(), RetryRequested)
    assert retried.failure.reason is FailureReason.NO_SESSION
    deadline = client.next_deadline()
    assert deadline is not None and deadline <= NOW + 30.0
    client.tick(NOW + 31.0)
    (final,) = of_type(client.events(), MessageUndecryptable)
    assert (final.retries, final.acked, final.failure.reason) == (1, True, FailureReason.NO_SESSION)
    server.receive(client.data_to_send())  # the retry receipt and the ping
    client.ack_message(final)
    assert all(n.attrs.get("error") is None for n in server.receive(client.data_to_send()))


def test_any_payload_gives_an_outcome_never_an_exception() -> None:
    store = registered_store()
    repo = SignalRepository(store, random_bytes=SeededRandom("r"), now_ms=lambda: 1)
    cases = [
        [("pkmsg", b"")], [("msg", b"\x33" * 40)], [("skmsg", b"x")], [("frob", b"x")], [],
        [("pkmsg", bytes(range(256)))],
    ]
    for encs in cases:
        outcome = decrypt_message(repo, incoming_message(stanza("3EB0Z", BOB, encs)), Jid.parse(ME))
        assert not isinstance(outcome, type(None))
        assert getattr(outcome, "reason", None) in set(FailureReason)
    v3 = Node("message", {"id": "3EB0V", "from": BOB}, [Node("enc", {"v": "3", "type": "msg"}, b"x")])
    assert decrypt_message(repo, incoming_message(v3), Jid.parse(ME)).reason is FailureReason.UNSUPPORTED  # type: ignore[union-attr]
