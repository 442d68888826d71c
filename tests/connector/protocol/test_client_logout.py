"""Logout (``Client.logout``): remove-companion-device, then a close that says whether the device is unlinked."""

from __future__ import annotations

import pytest

from connector.protocol import pairing
from connector.protocol.binary import S_WHATSAPP_NET, Node
from connector.protocol.client import Client, ClientState
from connector.protocol.close import CloseInfo, ClosePolicy, CloseReason, close_info, logout_outcome
from connector.protocol.crypto import KeyPair
from connector.protocol.events import Closed, Opened, QrCodeShown
from shared.authstate import AuthState
from shared.authstore import MemoryAuthStore
from testkit.protocol.fake_server import NOW, FakeServer
from testkit.protocol.seeded import SeededRandom
from tests.support import phone_pairing

from .test_client import ME, config_for, connect, of_type, open_client, pair_device, pair_success, registered_store


def closed_info(client: Client) -> CloseInfo:
    (closed,) = of_type(client.events(), Closed)
    assert client.state is ClientState.CLOSED and client.close_info == closed.info
    return closed.info


def logout_open_client(timeout_s: float = 5.0) -> tuple[Client, FakeServer, Node]:
    """An open client that was asked to log out; returns the logout iq the server received."""
    client, _ = open_client(registered_store(), server := FakeServer())
    client.events()
    client.logout(NOW, timeout_s)
    (request,) = server.receive(client.data_to_send())
    return client, server, request


def test_logout_sends_remove_companion_device_and_closes_on_the_result() -> None:
    client, server, request = logout_open_client()
    assert request.tag == "iq"
    assert {k: v for k, v in request.attrs.items() if k != "id"} == {
        "to": S_WHATSAPP_NET, "type": "set", "xmlns": "md"}
    assert request.attrs["id"]
    (child,) = request.children()
    assert (child.tag, child.attrs) == ("remove-companion-device", {"jid": ME, "reason": "user_initiated"})
    assert client.state is ClientState.OPEN and client.logging_out and client.events() == []

    client.receive_data(server.send(Node("iq", {"id": request.attrs["id"], "type": "result",
                                                "from": S_WHATSAPP_NET})), NOW + 0.2)
    info = closed_info(client)
    assert (info.reason, info.policy, info.code) == (CloseReason.LOGGED_OUT_BY_CLIENT, ClosePolicy.STOP_REQUESTED, 401)
    assert info.policy not in (ClosePolicy.RESTART_NOW, ClosePolicy.BACKOFF) and not client.logging_out
    assert client.data_to_send() == [] and client.next_deadline() is None


def test_logout_refused_by_the_server_fails_with_its_code() -> None:
    client, server, request = logout_open_client()
    client.receive_data(server.send(Node("iq", {"id": request.attrs["id"], "type": "error"},
                                         [Node("error", {"code": "403", "text": "forbidden"})])), NOW)
    info = closed_info(client)
    assert (info.reason, info.policy, info.code) == (CloseReason.LOGOUT_FAILED, ClosePolicy.STOP_REQUESTED, 403)
    assert "403 forbidden" in info.detail


def test_unanswered_logout_fails_at_its_deadline() -> None:
    client, _, _ = logout_open_client(timeout_s=3.0)
    assert client.next_deadline() == NOW + 3.0  # earlier than the first keepalive ping (20-30 s)
    client.tick(NOW + 2.9)
    assert client.state is ClientState.OPEN
    client.tick(NOW + 3.0)
    info = closed_info(client)
    assert info.reason is CloseReason.LOGOUT_FAILED and "waiting for an answer" in info.detail


def test_server_dropping_the_device_counts_as_logged_out() -> None:
    """WhatsApp may end the stream with 401 device_removed instead of (or before) answering the iq."""
    client, server, _ = logout_open_client()
    client.receive_data(server.send(Node("stream:error", {"code": "401"},
                                         [Node("conflict", {"type": "device_removed"})])), NOW)
    info = closed_info(client)
    assert (info.reason, info.code) == (CloseReason.LOGGED_OUT_BY_CLIENT, 401) and "device_removed" in info.detail


@pytest.mark.parametrize("end", ["connection_lost", "close"])
def test_connection_ending_before_the_answer_fails_the_logout(end: str) -> None:
    client, _, _ = logout_open_client()
    getattr(client, end)()
    info = closed_info(client)
    assert info.reason is CloseReason.LOGOUT_FAILED and info.policy is ClosePolicy.STOP_REQUESTED


def test_logout_asked_while_connecting_logs_in_without_opening_then_logs_out() -> None:
    store, server = registered_store(), FakeServer()
    client = Client(store, config_for(server), SeededRandom("client"))
    client.logout(NOW, 5.0)  # before start: kept until the login succeeds
    client.start(NOW)
    client.receive_data(server.handshake(client.data_to_send()), NOW)
    assert server.finish(client.data_to_send()) == []  # nothing before <success>
    assert client.next_deadline() == NOW + 5.0
    client.receive_data(server.send(Node("success", {"lid": "987654321:3@lid"})), NOW + 1)
    (request,) = server.receive(client.data_to_send())  # no pre-key count, passive or digest queries
    assert request.children()[0].tag == "remove-companion-device"
    assert of_type(client.events(), Opened) == []  # the account must not look online
    client.receive_data(server.send(Node("iq", {"id": request.attrs["id"], "type": "result"})), NOW + 1)
    assert closed_info(client).reason is CloseReason.LOGGED_OUT_BY_CLIENT


def test_login_not_reached_in_time_fails_the_logout() -> None:
    client = connect(registered_store(), FakeServer())
    client.logout(NOW, 2.0)
    client.tick(NOW + 2.0)
    info = closed_info(client)
    assert info.reason is CloseReason.LOGOUT_FAILED and "waiting for the login" in info.detail


def test_device_already_unlinked_at_login_counts_as_logged_out() -> None:
    client = connect(registered_store(), server := FakeServer())
    client.logout(NOW)
    client.receive_data(server.send(Node("failure", {"reason": "401"})), NOW)
    assert closed_info(client).reason is CloseReason.LOGGED_OUT_BY_CLIENT


def test_unlinked_or_pairing_device_has_nothing_to_log_out() -> None:
    fresh = Client(MemoryAuthStore(AuthState.generate(SeededRandom("fresh"))), config_for(FakeServer()),
                   SeededRandom("c"))
    fresh.logout(NOW)
    info = closed_info(fresh)
    assert (info.reason, info.detail) == (CloseReason.LOGGED_OUT_BY_CLIENT, "no linked device")
    assert fresh.data_to_send() == []

    pairing_client = connect(MemoryAuthStore(AuthState.generate(SeededRandom("fresh"))), server := FakeServer())
    pairing_client.receive_data(pair_device(server, ["ref-1"]), NOW)
    server.receive(pairing_client.data_to_send())
    assert pairing_client.state is ClientState.PAIRING
    pairing_client.logout(NOW)
    assert closed_info(pairing_client).reason is CloseReason.LOGGED_OUT_BY_CLIENT


def test_device_paired_on_this_connection_cannot_log_out_yet() -> None:
    store, server = MemoryAuthStore(AuthState.generate(SeededRandom("fresh"))), FakeServer()
    client = connect(store, server)
    client.receive_data(pair_device(server, ["ref-1"]), NOW)
    (qr,) = of_type(client.events(), QrCodeShown)
    scanned = pairing.parse_qr_data(qr.qr)
    container = phone_pairing.primary_sign_device_identity(
        account_identity=KeyPair.generate(SeededRandom("phone")), companion_identity_public=scanned.identity_public,
        adv_secret=scanned.adv_secret, raw_id=42, key_index=7, timestamp=int(NOW), rand=SeededRandom("sig"),
    )
    client.receive_data(pair_success(server, container), NOW + 1)
    assert client.state is ClientState.PAIRED
    client.events()
    client.logout(NOW + 1)
    info = closed_info(client)
    assert info.reason is CloseReason.LOGOUT_FAILED and info.policy is ClosePolicy.STOP_REQUESTED


def test_second_logout_and_logout_after_close_change_nothing() -> None:
    client, server, _ = logout_open_client(timeout_s=5.0)
    client.logout(NOW + 1, 100.0)
    assert server.receive(client.data_to_send()) == [] and client.next_deadline() == NOW + 5.0
    client.close()
    client.events()
    client.logout(NOW + 2)
    assert client.events() == [] and client.data_to_send() == []


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (CloseReason.LOGGED_OUT, CloseReason.LOGGED_OUT_BY_CLIENT),
        (CloseReason.DEVICE_REMOVED, CloseReason.LOGGED_OUT_BY_CLIENT),
        (CloseReason.LOGGED_OUT_BY_CLIENT, CloseReason.LOGGED_OUT_BY_CLIENT),
        (CloseReason.LOGOUT_FAILED, CloseReason.LOGOUT_FAILED),
        (CloseReason.CONNECTION_CLOSED, CloseReason.LOGOUT_FAILED),
        (CloseReason.TIMED_OUT, CloseReason.LOGOUT_FAILED),
        (CloseReason.REPLACED, CloseReason.LOGOUT_FAILED),
        (CloseReason.RESTART_REQUIRED, CloseReason.LOGOUT_FAILED),
        (CloseReason.CLOSED_BY_CLIENT, CloseReason.LOGOUT_FAILED),
    ],
)
def test_logout_outcome_of_every_kind_of_end(before: CloseReason, after: CloseReason) -> None:
    outcome = logout_outcome(close_info(before, detail="why"))
    assert outcome.reason is after and outcome.policy is ClosePolicy.STOP_REQUESTED
    if before is not after:
        assert "why" in outcome.detail
