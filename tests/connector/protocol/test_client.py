from __future__ import annotations

from typing import Any, TypeVar

import pytest

from connector.protocol import pairing
from connector.protocol.binary import S_WHATSAPP_NET, Node
from connector.protocol.client import Client, ClientConfig, ClientState
from connector.protocol.close import ClosePolicy, CloseReason
from connector.protocol.crypto import KeyPair
from connector.protocol.errors import IllegalTransitionError
from connector.protocol.events import (
    Closed,
    CredsChanged,
    Event,
    FailureReason,
    OfflineSyncDone,
    Opened,
    Paired,
    PairingCodeShown,
    PreKeysUploaded,
    QrCodeShown,
    RetryRequested,
)
from shared.authstate import PRE_KEY, AuthState
from shared.authstore import MemoryAuthStore
from shared.signatures import xeddsa_verify
from testkit.protocol.fake_server import ME, NOW, FakeServer, config_for, connect, registered_store
from testkit.protocol.seeded import SeededRandom
from tests.support import phone_pairing

T = TypeVar("T")


def of_type(events: list[Event], kind: type[T]) -> list[T]:
    return [e for e in events if isinstance(e, kind)]


def open_client(store: MemoryAuthStore, server: FakeServer, **config: Any) -> tuple[Client, list[Node]]:
    client = connect(store, server, **config)
    client.receive_data(server.send(Node("success", {"lid": "987654321:3@lid", "t": "1780000000"})), NOW)
    return client, server.receive(client.data_to_send())


def test_login_sends_login_payload_and_after_login_queries() -> None:
    store, server = registered_store(), FakeServer()
    client, queries = open_client(store, server)
    assert server.client_payload is not None
    assert server.client_payload.username == 15551234567 and server.client_payload.device == 3
    assert server.client_payload.passive and not server.client_payload.HasField("devicePairingData")
    assert server.client_static == store.get_creds().noise_key.public
    assert client.state is ClientState.OPEN
    events = client.events()
    assert of_type(events, Opened) == [Opened(jid=ME, lid="987654321:3@lid")]
    assert any(e.kind == "critical" and "me" in e.creds_fields for e in of_type(events, CredsChanged))
    assert store.get_creds().me is not None and store.get_creds().me.lid == "987654321:3@lid"  # type: ignore[union-attr]
    assert [(q.attrs["xmlns"], q.attrs["type"], q.children()[0].tag) for q in queries] == [
        ("encrypt", "get", "count"), ("passive", "set", "active")
    ]


def test_the_key_digest_check_follows_login_after_a_random_delay_and_a_missing_bundle_is_uploaded() -> None:
    # A restart brings a thousand sockets up at once: the digest (an answer of ~800 ids) waits 5-30 s.
    store, server = registered_store(), FakeServer()
    client, _ = open_client(store, server, keepalive_min_s=1000.0, keepalive_max_s=1000.0)
    deadline = client.next_deadline()
    assert deadline is not None and NOW + 5.0 <= deadline <= NOW + 30.0
    client.tick(NOW + 4.9)
    assert server.receive(client.data_to_send()) == []
    client.tick(NOW + 30.0)
    (digest,) = server.receive(client.data_to_send())
    assert (digest.attrs["xmlns"], digest.children()[0].tag) == ("encrypt", "digest")
    client.tick(NOW + 60.0)
    assert server.receive(client.data_to_send()) == []  # once per login
    client.receive_data(server.send(Node("iq", {"id": digest.attrs["id"], "type": "result",
                                                "from": S_WHATSAPP_NET})), NOW + 60.0)
    (upload,) = server.receive(client.data_to_send())  # no digest node: the server lost the bundle
    assert upload.attrs["xmlns"] == "encrypt" and upload.child("list") is not None


def test_low_server_pre_key_count_generates_stores_and_uploads_keys() -> None:
    store, server = registered_store(), FakeServer()
    client, queries = open_client(store, server)
    client.events()
    count_iq = queries[0]
    client.receive_data(server.send(Node("iq", {"id": count_iq.attrs["id"], "type": "result", "from": S_WHATSAPP_NET},
                                         [Node("count", {"value": "0"})])), NOW)
    (upload,) = server.receive(client.data_to_send())
    keys = upload.child("list").children("key")  # type: ignore[union-attr]
    assert len(keys) == 20
    stored = store.get_keys(PRE_KEY, [str(i) for i in range(1, 21)])
    assert len(stored) == 20  # every uploaded key exists in the store before the server sees it
    first = keys[0]
    assert first.child_bytes("id") == (1).to_bytes(3, "big")
    assert first.child_bytes("value") == stored["1"]["public"]  # type: ignore[index,call-overload]
    skey = upload.child("skey")
    assert skey is not None
    creds = store.get_creds()
    assert xeddsa_verify(creds.signed_identity_key.public, b"\x05" + skey.child_bytes("value"),  # type: ignore[operator]
                         skey.child_bytes("signature") or b"")
    assert any(e.categories >= {PRE_KEY} and e.kind == "critical" for e in of_type(client.events(), CredsChanged))
    assert creds.first_unuploaded_pre_key_id == 1
    client.receive_data(server.send(Node("iq", {"id": upload.attrs["id"], "type": "result"})), NOW)
    assert of_type(client.events(), PreKeysUploaded) == [PreKeysUploaded(count=20, server_count_before=0)]
    assert store.get_creds().first_unuploaded_pre_key_id == 21
    assert store.get_creds().next_pre_key_id == 21


def test_enough_pre_keys_on_server_means_no_upload() -> None:
    store, server = registered_store(), FakeServer()
    client, queries = open_client(store, server)
    client.receive_data(server.send(Node("iq", {"id": queries[0].attrs["id"], "type": "result"},
                                         [Node("count", {"value": "40"})])), NOW)
    assert server.receive(client.data_to_send()) == []


def test_pre_key_low_notification_triggers_upload() -> None:
    store, server = registered_store(), FakeServer()
    client, queries = open_client(store, server)
    client.receive_data(server.send(Node("iq", {"id": queries[0].attrs["id"], "type": "result"},
                                         [Node("count", {"value": "40"})])), NOW)
    client.receive_data(server.send(Node("notification", {"id": "n9", "type": "encrypt", "from": S_WHATSAPP_NET},
                                         [Node("count", {"value": "3"})])), NOW)
    ack, upload = server.receive(client.data_to_send())
    assert ack.attrs == {"id": "n9", "to": S_WHATSAPP_NET, "class": "notification", "type": "encrypt"}
    assert len(upload.child("list").children("key")) == 50  # type: ignore[union-attr]


def test_keepalive_ping_and_dead_socket_detection() -> None:
    store, server = registered_store(), FakeServer()
    client, _ = open_client(store, server, digest_delay_min_s=1000.0, digest_delay_max_s=1000.0)
    client.events()
    first_ping_at = client.next_deadline()
    assert first_ping_at is not None and NOW + 20 <= first_ping_at <= NOW + 30
    client.tick(first_ping_at)
    (ping,) = server.receive(client.data_to_send())
    assert (ping.attrs["xmlns"], ping.attrs["type"], ping.children()[0].tag) == ("w:p", "get", "ping")
    client.receive_data(server.send(Node("iq", {"id": ping.attrs["id"], "type": "result"})), first_ping_at + 1)
    second = client.next_deadline()
    assert second is not None
    client.tick(second)
    assert len(server.receive(client.data_to_send())) == 1  # the next ping; never answered
    client.tick(second + 10)
    (closed,) = of_type(client.events(), Closed)
    assert closed.info.reason is CloseReason.CONNECTION_LOST and closed.info.policy is ClosePolicy.BACKOFF
    assert client.state is ClientState.CLOSED


def test_incoming_message_that_does_not_decrypt_gets_a_retry_receipt_at_once() -> None:
    store, server = registered_store(), FakeServer()
    client, _ = open_client(store, server)
    client.events()
    attrs = {"id": "3EB0ABC", "from": "120363000000000000@g.us", "participant": "155500001:2@s.whatsapp.net",
             "t": "1780000001", "type": "text"}
    stanza = Node("message", attrs, [Node("enc", {"type": "skmsg", "v": "2"}, b"ciphertext")])
    client.receive_data(server.send(stanza), NOW)
    (retried,) = of_type(client.events(), RetryRequested)
    assert (retried.count, retried.failure.reason) == (1, FailureReason.NO_SENDER_KEY)
    receipt, ack = server.receive(client.data_to_send())
    assert (receipt.tag, receipt.attrs["type"], receipt.attrs["to"], receipt.attrs["participant"]) == (
        "receipt", "retry", "120363000000000000@g.us", "155500001:2@s.whatsapp.net")
    assert ack.tag == "ack" and ack.attrs["error"] == "500" and ack.attrs["from"] == ME


def test_a_message_before_success_on_a_login_is_handled_not_dropped() -> None:
    # A server that lets a message overtake <success> (the simulator did, on a busy loop): dropped,
    # it stayed unacknowledged on that socket until the next login.
    store, server = registered_store(), FakeServer()
    client = connect(store, server)
    attrs = {"id": "3EB0ABD", "from": "120363000000000000@g.us", "participant": "155500001:2@s.whatsapp.net",
             "t": "1780000001", "type": "text"}
    stanza = Node("message", attrs, [Node("enc", {"type": "skmsg", "v": "2"}, b"ciphertext")])
    client.receive_data(server.send(stanza), NOW)
    assert client.state is ClientState.AUTHENTICATING
    (retried,) = of_type(client.events(), RetryRequested)
    assert (retried.count, retried.failure.reason) == (1, FailureReason.NO_SENDER_KEY)
    receipt, ack = server.receive(client.data_to_send())
    assert (receipt.tag, receipt.attrs["type"], ack.tag, ack.attrs["error"]) == ("receipt", "retry", "ack", "500")
    client.receive_data(server.send(Node("success", {"lid": "987654321:3@lid", "t": "1780000000"})), NOW)
    assert client.state is ClientState.OPEN


@pytest.mark.parametrize(
    ("stanza", "reason", "policy"),
    [
        (Node("stream:error", {"code": "515"}), CloseReason.RESTART_REQUIRED, ClosePolicy.RESTART_NOW),
        (Node("stream:error", {}, [Node("conflict", {"type": "replaced"})]), CloseReason.REPLACED,
         ClosePolicy.STOP_REPLACED),
        (Node("stream:error", {"code": "401"}, [Node("conflict", {"type": "device_removed"})]),
         CloseReason.DEVICE_REMOVED, ClosePolicy.STOP_LOGGED_OUT),
        (Node("stream:error", {"code": "503"}), CloseReason.SERVICE_UNAVAILABLE, ClosePolicy.BACKOFF),
        (Node("stream:error", {}, [Node("xml-not-well-formed")]), CloseReason.BAD_SESSION, ClosePolicy.BACKOFF),
        (Node("failure", {"reason": "401"}), CloseReason.LOGGED_OUT, ClosePolicy.STOP_LOGGED_OUT),
        (Node("failure", {"reason": "403"}), CloseReason.LOGGED_OUT, ClosePolicy.STOP_LOGGED_OUT),
        (Node("failure", {"reason": "406"}), CloseReason.LOGGED_OUT, ClosePolicy.STOP_LOGGED_OUT),
        (Node("failure", {"reason": "405"}), CloseReason.CLIENT_OUTDATED, ClosePolicy.STOP_OUTDATED),
        (Node("failure", {"reason": "500"}), CloseReason.BAD_SESSION, ClosePolicy.BACKOFF),
        (Node("failure", {"reason": "503"}), CloseReason.SERVICE_UNAVAILABLE, ClosePolicy.BACKOFF),
        (Node("xmlstreamend"), CloseReason.CONNECTION_CLOSED, ClosePolicy.BACKOFF),
        (Node("ib", {}, [Node("downgrade_webclient")]), CloseReason.MULTIDEVICE_MISMATCH,
         ClosePolicy.STOP_LOGGED_OUT),
    ],
)
def test_server_close_stanzas_are_classified(stanza: Node, reason: CloseReason, policy: ClosePolicy) -> None:
    store, server = registered_store(), FakeServer()
    client = connect(store, server)
    client.receive_data(server.send(stanza), NOW)
    (closed,) = of_type(client.events(), Closed)
    assert (closed.info.reason, closed.info.policy) == (reason, policy)
    assert client.close_info == closed.info


def test_transport_and_client_closes() -> None:
    store, server = registered_store(), FakeServer()
    client = connect(store, server)
    client.connection_lost()
    (closed,) = of_type(client.events(), Closed)
    assert closed.info.reason is CloseReason.CONNECTION_CLOSED and closed.info.code == 428
    client.close()  # already closed: no second event
    assert client.events() == []
    other = connect(registered_store(), FakeServer())
    other.close()
    assert of_type(other.events(), Closed)[0].info.policy is ClosePolicy.STOP_REQUESTED


def test_certificate_from_unknown_root_ends_with_protocol_error() -> None:
    server = FakeServer()
    client = Client(registered_store(), ClientConfig(), SeededRandom("c"))  # default root: WhatsApp's
    client.start(NOW)
    client.receive_data(server.handshake(client.data_to_send()), NOW)
    (closed,) = of_type(client.events(), Closed)
    assert closed.info.reason is CloseReason.PROTOCOL_ERROR and "CertificateError" in closed.info.detail
    assert client.data_to_send() == []  # no client finish after a bad certificate


def test_handshake_timeout() -> None:
    client = Client(registered_store(), ClientConfig(), SeededRandom("c"))
    client.start(NOW)
    assert client.next_deadline() == NOW + 20
    client.tick(NOW + 20)
    assert of_type(client.events(), Closed)[0].info.reason is CloseReason.TIMED_OUT


def test_illegal_transition_raises_and_keeps_state() -> None:
    client = Client(registered_store(), ClientConfig(), SeededRandom("c"))
    client.start(NOW)
    with pytest.raises(IllegalTransitionError):
        client.start(NOW)
    assert client.state is ClientState.HANDSHAKING


def test_garbage_after_handshake_is_a_protocol_error() -> None:
    store, server = registered_store(), FakeServer()
    client = connect(store, server)
    client.receive_data(b"\x00\x00\x05abcde", NOW)
    assert of_type(client.events(), Closed)[0].info.reason is CloseReason.PROTOCOL_ERROR


# ------------------------------------------------------------------------------------------ pairing


def pair_device(server: FakeServer, refs: list[str]) -> bytes:
    return server.send(Node("iq", {"id": "pd1", "type": "set", "from": S_WHATSAPP_NET, "xmlns": "md"},
                            [Node("pair-device", {}, [Node("ref", {}, r.encode()) for r in refs])]))


def pair_success(server: FakeServer, container: bytes) -> bytes:
    return server.send(Node("iq", {"id": "ps1", "type": "set", "from": S_WHATSAPP_NET}, [
        Node("pair-success", {}, [
            Node("device-identity", {}, container),
            Node("device", {"jid": "15551234567:9@s.whatsapp.net", "lid": "987654321:9@lid"}),
            Node("platform", {"name": "smba"}),
        ])
    ]))


def test_registration_payload_and_qr_pairing_then_515_then_login() -> None:
    store, server = MemoryAuthStore(AuthState.generate(SeededRandom("fresh"))), FakeServer()
    client = connect(store, server)
    creds = store.get_creds()
    data = server.client_payload.devicePairingData  # type: ignore[union-attr]
    assert data.eIdent == creds.signed_identity_key.public and data.eKeytype == b"\x05"
    assert int.from_bytes(data.eRegid, "big") == creds.registration_id
    assert xeddsa_verify(data.eIdent, b"\x05" + data.eSkeyVal, data.eSkeySig)

    client.receive_data(pair_device(server, ["ref-1", "ref-2", "ref-3"]), NOW)
    (ack,) = server.receive(client.data_to_send())
    assert ack.attrs == {"to": S_WHATSAPP_NET, "id": "pd1", "type": "result"}
    (qr,) = of_type(client.events(), QrCodeShown)
    assert qr.index == 1 and qr.expires_at == NOW + 60
    scanned = pairing.parse_qr_data(qr.qr)
    assert scanned.ref == "ref-1" and scanned.noise_public == creds.noise_key.public
    client.tick(NOW + 60)
    (second,) = of_type(client.events(), QrCodeShown)
    assert pairing.parse_qr_data(second.qr).ref == "ref-2" and second.expires_at == NOW + 80

    phone = KeyPair.generate(SeededRandom("phone"))
    container = phone_pairing.primary_sign_device_identity(
        account_identity=phone, companion_identity_public=scanned.identity_public, adv_secret=scanned.adv_secret,
        raw_id=42, key_index=7, timestamp=int(NOW), rand=SeededRandom("sig"),
    )
    client.receive_data(pair_success(server, container), NOW + 61)
    events = client.events()
    assert of_type(events, Paired) == [Paired("15551234567:9@s.whatsapp.net", "987654321:9@lid", "smba", None)]
    assert any(e.kind == "critical" and {"me", "account"} <= e.creds_fields for e in of_type(events, CredsChanged))
    assert events.index(of_type(events, CredsChanged)[0]) < events.index(of_type(events, Paired)[0])
    assert store.get_creds().registered and store.get_creds().platform == "smba"
    (reply,) = [n for n in server.receive(client.data_to_send()) if n.attrs.get("id") == "ps1"]
    identity = reply.child("pair-device-sign", "device-identity")
    assert reply.attrs["id"] == "ps1" and identity is not None and identity.attrs["key-index"] == "7"
    assert phone_pairing.primary_verify_device_signature(
        identity.content, account_signature_key=phone.public,  # type: ignore[arg-type]
        companion_identity_public=creds.signed_identity_key.public,
    ) == 7
    assert client.state is ClientState.PAIRED
    client.receive_data(server.send(Node("stream:error", {"code": "515"})), NOW + 62)
    assert of_type(client.events(), Closed)[0].info.policy is ClosePolicy.RESTART_NOW

    relogin_server = FakeServer("server-2", root=server.root)
    relogin = connect(store, relogin_server)
    assert relogin.is_registered
    assert relogin_server.client_payload.username == 15551234567  # type: ignore[union-attr]
    assert relogin_server.client_payload.device == 9  # type: ignore[union-attr]


def test_qr_refs_running_out_ends_pairing() -> None:
    store, server = MemoryAuthStore(AuthState.generate(SeededRandom("fresh"))), FakeServer()
    client = connect(store, server)
    client.receive_data(pair_device(server, ["a", "b"]), NOW)
    for now in (NOW + 60, NOW + 80):
        client.tick(now)
        for ping in server.receive(client.data_to_send()):  # a live server answers keepalive pings
            client.receive_data(server.send(Node("iq", {"id": ping.attrs["id"], "type": "result"})), now)
        assert client.state is (ClientState.PAIRING if now == NOW + 60 else ClientState.CLOSED)
    closed = of_type(client.events(), Closed)
    assert closed[0].info.reason is CloseReason.PAIRING_EXPIRED and closed[0].info.policy is ClosePolicy.STOP_PAIRING


def test_pair_success_with_wrong_adv_secret_is_refused() -> None:
    store, server = MemoryAuthStore(AuthState.generate(SeededRandom("fresh"))), FakeServer()
    client = connect(store, server)
    client.receive_data(pair_device(server, ["a"]), NOW)
    server.receive(client.data_to_send())
    container = phone_pairing.primary_sign_device_identity(
        account_identity=KeyPair.generate(SeededRandom("p")),
        companion_identity_public=store.get_creds().signed_identity_key.public,
        adv_secret=b"\x00" * 32, raw_id=1, key_index=1, timestamp=int(NOW), rand=SeededRandom("s"),
    )
    client.receive_data(pair_success(server, container), NOW)
    (error,) = server.receive(client.data_to_send())
    assert error.attrs["type"] == "error" and error.child("error").attrs["text"] == "hmac-mismatch"  # type: ignore[union-attr]
    assert of_type(client.events(), Closed)[0].info.reason is CloseReason.PAIRING_FAILED
    assert store.get_creds().get("me") is None


def test_pairing_by_code() -> None:
    store, server = MemoryAuthStore(AuthState.generate(SeededRandom("fresh"))), FakeServer()
    client = connect(store, server, pairing_phone_number="+1 555 123 4567")
    client.receive_data(pair_device(server, ["r1", "r2", "r3"]), NOW)
    _pair_ack, hello = server.receive(client.data_to_send())
    assert of_type(client.events(), QrCodeShown) == []
    reg = hello.child("link_code_companion_reg")
    assert reg is not None and reg.attrs["stage"] == "companion_hello"
    assert reg.attrs["jid"] == "15551234567@s.whatsapp.net"
    client.receive_data(server.send(Node("iq", {"id": hello.attrs["id"], "type": "result"}, [
        Node("link_code_companion_reg", {}, [Node("link_code_pairing_ref", {}, b"REF-1")])
    ])), NOW)
    events = client.events()
    (shown,) = of_type(events, PairingCodeShown)
    assert shown.phone_number == "+1 555 123 4567" and len(shown.code) == 9 and shown.code[4] == "-"

    # the phone: the user types the code; the phone unwraps the companion key and answers with its own
    code = pairing.normalize_pairing_code(shown.code)
    phone_rand = SeededRandom("phone")
    wrapped_companion = reg.child_bytes("link_code_pairing_wrapped_companion_ephemeral_pub") or b""
    companion_ephemeral = pairing.unwrap_link_code_ephemeral(code, wrapped_companion)
    phone_ephemeral, phone_identity = KeyPair.generate(phone_rand), KeyPair.generate(phone_rand)
    client.receive_data(server.send(Node("notification", {"id": "n1", "type": "link_code_companion_reg",
                                                          "from": S_WHATSAPP_NET}, [
        Node("link_code_companion_reg", {"stage": "primary_hello"}, [
            Node("link_code_pairing_ref", {}, b"REF-1"),
            Node("primary_identity_pub", {}, phone_identity.public),
            Node("link_code_pairing_wrapped_primary_ephemeral_pub", {},
                 pairing.wrap_link_code_ephemeral(code, phone_ephemeral.public, phone_rand)),
        ])
    ])), NOW + 5)
    ack, finish = server.receive(client.data_to_send())
    assert ack.tag == "ack" and ack.attrs["class"] == "notification"
    finish_reg = finish.child("link_code_companion_reg")
    assert finish_reg is not None and finish_reg.attrs["stage"] == "companion_finish"
    opened = phone_pairing.primary_open_key_bundle(
        primary_ephemeral=phone_ephemeral, companion_ephemeral_public=companion_ephemeral,
        primary_identity=phone_identity,
        wrapped_key_bundle=finish_reg.child_bytes("link_code_pairing_wrapped_key_bundle") or b"",
    )
    creds = store.get_creds()
    assert opened.adv_secret == creds.adv_secret_key_bytes
    changes = of_type(client.events(), CredsChanged)
    assert any("advSecretKey" in e.creds_fields and e.kind == "critical" for e in changes)

    container = phone_pairing.primary_sign_device_identity(
        account_identity=phone_identity, companion_identity_public=opened.companion_identity_public,
        adv_secret=opened.adv_secret, raw_id=5, key_index=2, timestamp=int(NOW), rand=phone_rand,
    )
    client.receive_data(server.send(Node("iq", {"id": finish.attrs["id"], "type": "result"})), NOW + 6)
    client.receive_data(pair_success(server, container), NOW + 6)
    assert of_type(client.events(), Paired)
    assert store.get_creds().get("pairingCode") is None


def test_edge_routing_is_stored_and_used_for_the_next_intro() -> None:
    store, server = registered_store(), FakeServer()
    client, _ = open_client(store, server)
    client.events()
    routing = Node("ib", {}, [Node("edge_routing", {}, [Node("routing_info", {}, b"\x08\x08\x08\x05")])])
    client.receive_data(server.send(routing, Node("ib", {}, [Node("offline_preview", {"count": "3"})]),
                                    Node("ib", {}, [Node("offline", {"count": "3"})])), NOW)
    (batch,) = server.receive(client.data_to_send())
    assert batch.child("offline_batch") is not None
    events = client.events()
    assert any("routingInfo" in e.creds_fields for e in of_type(events, CredsChanged))
    assert of_type(events, OfflineSyncDone) == [OfflineSyncDone(3)]
    assert store.get_creds().routing_info == b"\x08\x08\x08\x05"

    next_server = FakeServer("server-3", root=server.root)
    again = Client(store, config_for(next_server), SeededRandom("again"))
    again.start(NOW)
    hello = b"".join(again.data_to_send())
    assert hello.startswith(b"ED\x00\x01\x00\x00\x04\x08\x08\x08\x05WA\x06\x03")
    again.receive_data(next_server.handshake([hello]), NOW)
    assert next_server.frames.routing_info == b"\x08\x08\x08\x05"
    assert again.state is ClientState.AUTHENTICATING


def test_invalid_pairing_phone_number_ends_pairing_without_retry() -> None:
    store, server = MemoryAuthStore(AuthState.generate(SeededRandom("fresh"))), FakeServer()
    client = connect(store, server, pairing_phone_number="0700 000 001")  # a local number
    client.receive_data(pair_device(server, ["r1"]), NOW)
    (closed,) = of_type(client.events(), Closed)
    assert (closed.info.reason, closed.info.policy) == (CloseReason.PAIRING_FAILED, ClosePolicy.STOP_PAIRING)
    assert store.get_creds().get("pairingCode") is None


def test_a_pairing_code_for_a_number_without_an_account_ends_as_unknown_number() -> None:
    store, server = MemoryAuthStore(AuthState.generate(SeededRandom("fresh"))), FakeServer()
    client = connect(store, server, pairing_phone_number="+40700000099")
    client.receive_data(pair_device(server, ["r1"]), NOW)
    _pair_ack, hello = server.receive(client.data_to_send())
    client.receive_data(server.send(Node("iq", {"id": hello.attrs["id"], "type": "error"}, [
        Node("error", {"code": "404", "text": "item-not-found"})])), NOW)
    (closed,) = of_type(client.events(), Closed)
    assert (closed.info.reason, closed.info.policy) == (CloseReason.PAIRING_UNKNOWN_NUMBER, ClosePolicy.STOP_PAIRING)


def test_a_refused_pairing_code_request_of_another_kind_ends_as_failed() -> None:
    store, server = MemoryAuthStore(AuthState.generate(SeededRandom("fresh"))), FakeServer()
    client = connect(store, server, pairing_phone_number="+40700000099")
    client.receive_data(pair_device(server, ["r1"]), NOW)
    _pair_ack, hello = server.receive(client.data_to_send())
    client.receive_data(server.send(Node("iq", {"id": hello.attrs["id"], "type": "error"}, [
        Node("error", {"code": "400", "text": "bad-request"})])), NOW)
    (closed,) = of_type(client.events(), Closed)
    assert closed.info.reason is CloseReason.PAIRING_FAILED
