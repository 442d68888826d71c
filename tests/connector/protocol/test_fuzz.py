"""Byte-level fuzzing of the protocol core: server bytes may only surface as a ``ProtocolError``.

Hypothesis drives arbitrary bytes and mutations of real stanzas (``corpus``: what the simulator sends
over registration, pairing, login and a message) through the binary node decoder, the frame decoder,
the protobuf decoders (certificate chain, device identity), the Signal wire messages and the WhatsApp
``Message`` protobuf a peer encrypts to us, and whole clients in AUTHENTICATING and OPEN; a seeded
mutation campaign (``fuzzing.run_campaign``) adds 40,000 inputs on every run.
``bench/protocol_fuzz.py`` runs the same campaign at a million inputs and more.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.protocol import client as client_module
from connector.protocol.binary import Node, decode_node
from connector.protocol.client import ClientState
from connector.protocol.close import CloseReason
from connector.protocol.errors import NodeCodecError
from connector.protocol.events import Closed
from testkit.protocol.corpus import encoded_stanzas, mutate
from testkit.protocol.fake_server import NOW
from testkit.protocol.fuzzing import (
    ClientHarness,
    frame_target,
    node_target,
    protobuf_target,
    run_campaign,
    signal_wire_corpus,
    signal_wire_target,
)

from .test_client import connect, registered_store

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Inputs the first fuzz runs found escaping as IndexError or RecursionError.
ESCAPED_BEFORE = [
    bytes.fromhex("00f808fb80"),  # a HEX_8 string of length 0 marked odd: one character to drop from none
    bytes.fromhex("02789c01f4000bfff80c1906fa0003045a08ff80134484438918737f16fc026d641aff0517000000"),
    b"\x00\xf8\x01" + b"\xfa" * 5000,  # JID pairs nested in JID pairs, past Python's recursion limit
    b"\x00\xf8\x01" + b"\xf7\x00\x00" * 5000,  # the same with AD JIDs
]


@pytest.mark.parametrize("data", ESCAPED_BEFORE, ids=lambda d: d[:8].hex())
def test_inputs_that_escaped_are_codec_errors(data: bytes) -> None:
    with pytest.raises(NodeCodecError):
        decode_node(data)


def test_the_five_byte_stanza_closes_the_client_instead_of_leaving_it_authenticating() -> None:
    harness = ClientHarness(open_=False, registered=True)
    client = harness.client
    assert harness.server.transport is not None
    from connector.protocol.frames import encode_frame

    client.receive_data(encode_frame(harness.server.transport.encrypt(bytes.fromhex("00f808fb80"))), NOW)
    [closed] = [e for e in client.events() if isinstance(e, Closed)]
    assert client.state is ClientState.CLOSED
    assert closed.info.reason is CloseReason.PROTOCOL_ERROR and "NodeCodecError" in (closed.info.detail or "")


def test_a_defect_in_a_stanza_handler_closes_the_client_instead_of_escaping(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a handler raises on server input, receive_data never returns half-way: the client closes."""
    from testkit.protocol.fake_server import FakeServer

    server = FakeServer()
    client = connect(registered_store(), server)

    def broken(*_: object, **__: object) -> None:
        raise KeyError("a defect")

    monkeypatch.setattr(client, "_on_node", broken)
    client.receive_data(server.send(Node("success", {"lid": "987654321:3@lid", "t": "1780000000"})), NOW)
    [closed] = [e for e in client.events() if isinstance(e, Closed)]
    assert client.state is ClientState.CLOSED and client.next_deadline() is None
    assert closed.info.reason is CloseReason.PROTOCOL_ERROR
    assert closed.info.detail == "internal error KeyError on server input"
    assert client_module.ClientState.CLOSED is client.state


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_raise_codec_errors(data: bytes) -> None:
    assert node_target(data) is None
    assert node_target(b"\x00" + data) is None


@FUZZ
@given(st.sampled_from(encoded_stanzas()), st.randoms(use_true_random=False))
def test_mutated_real_stanzas_decode_or_raise_codec_errors(stanza: bytes, rng: random.Random) -> None:
    assert node_target(mutate(stanza, rng, encoded_stanzas())) is None


@FUZZ
@given(st.binary(max_size=200), st.sampled_from([1, 2, 3, 5, 64]))
def test_frame_streams_split_or_raise_frame_errors(data: bytes, chunk: int) -> None:
    assert frame_target(data, chunk) is None
    assert frame_target(b"WA\x06\x03" + data, chunk) is None


@FUZZ
@given(st.sampled_from(sorted(signal_wire_corpus())), st.randoms(use_true_random=False))
def test_mutated_signal_messages_and_message_protobufs_raise_protocol_errors(kind: str, rng: random.Random) -> None:
    assert signal_wire_target(kind, mutate(signal_wire_corpus()[kind], rng)) is None
    assert signal_wire_target(kind, bytes(rng.randrange(256) for _ in range(rng.randrange(80)))) is None


@FUZZ
@given(st.sampled_from(["certs", "device_identity"]), st.binary(max_size=300))
def test_protobuf_decoders_raise_protocol_errors(kind: str, data: bytes) -> None:
    from testkit.protocol.fake_server import FakeServer

    assert protobuf_target(kind, data, FakeServer()) is None


_HARNESSES: dict[tuple[bool, bool], ClientHarness] = {}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(encoded_stanzas()), st.randoms(use_true_random=False), st.booleans(), st.booleans())
def test_mutated_stanzas_never_leave_a_client_half_way(stanza: bytes, rng: random.Random, open_: bool,
                                                        registered: bool) -> None:
    registered = registered or open_  # only a registered client logs in
    harness = _HARNESSES.get((open_, registered))
    if harness is None:
        harness = _HARNESSES[(open_, registered)] = ClientHarness(open_=open_, registered=registered)
    assert harness.feed(mutate(stanza, rng, encoded_stanzas())) is None


def test_a_seeded_mutation_campaign_finds_no_escape() -> None:
    campaign = run_campaign(40_000, seed=16)
    assert sum(campaign.inputs.values()) == 40_000
    assert set(campaign.inputs) == {"node", "frames", "protobuf/certs", "protobuf/device_identity", "client",
                                    "signal/msg", "signal/pkmsg", "signal/skdm", "signal/skmsg", "wamessage",
                                    "wamessage/reply", "wamessage/device_sent"}
    assert not campaign.escapes, campaign.escapes.most_common(5)


def test_a_jid_like_string_whose_user_holds_an_at_sign_travels_as_raw_bytes() -> None:
    from connector.protocol.binary import encode_node

    node = Node("iq", {"id": "@0@0", "to": "a@b@s.whatsapp.net"})
    assert decode_node(encode_node(node)) == node
