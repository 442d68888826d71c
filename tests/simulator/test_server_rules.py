"""The real server's rules over real sockets: 440 replaced, 401 device_removed, after-login iqs, pre-keys."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from connector.protocol.binary import Node
from simulator.companion import CompanionClosed, ScriptedCompanion
from simulator.testing import running_simulator
from tests.simulator.support import PHONE, pair_by_qr

pytestmark = pytest.mark.integration


async def test_second_login_replaces_the_first_with_440() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        first = await pair_by_qr(sim, control)
        assert (await first.connect_and_login()).tag == "success"
        second = ScriptedCompanion(sim.ws_url, sim.root_public_key, first.creds)
        assert (await second.connect_and_login()).tag == "success"

        replaced = await first.wait_tag("stream:error")
        assert replaced.attrs == {}
        [conflict] = replaced.children()
        assert conflict.tag == "conflict" and conflict.attrs == {"type": "replaced"}
        await first.wait_closed()
        device = await control.device(PHONE, 1)
        assert device["liveSockets"] == 1
        assert device["loginCount"] == 2
        assert device["replacedCount"] == 1
        # the survivor is served normally
        pong = await second.iq("w:p", "get", [Node("ping")])
        assert pong.attrs["type"] == "result"
        await second.close()


async def test_unlink_sends_401_device_removed_and_refuses_later_logins() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        companion = await pair_by_qr(sim, control)
        assert (await companion.connect_and_login()).tag == "success"

        answer = await control.unlink(PHONE, 1)
        assert answer["kickedSockets"] == 1
        removed = await companion.wait_tag("stream:error")
        assert removed.attrs == {"code": "401"}
        assert removed.children()[0].attrs == {"type": "device_removed"}
        await companion.wait_closed()
        assert await control.devices(PHONE) == []

        failure = await companion.connect_and_login()
        assert failure.tag == "failure" and failure.attrs["reason"] == "401"
        await companion.wait_closed()


async def test_after_login_iqs_are_answered() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        companion = await pair_by_qr(sim, control)
        await companion.connect_and_login()

        count = await companion.iq("encrypt", "get", [Node("count")])
        assert count.children("count")[0].attrs == {"value": "0"}
        uploaded = await companion.upload_pre_keys(30)
        assert uploaded.attrs["type"] == "result"
        count = await companion.iq("encrypt", "get", [Node("count")])
        assert count.children("count")[0].attrs == {"value": "30"}

        digest = (await companion.iq("encrypt", "get", [Node("digest")])).children("digest")[0]
        creds = companion.creds
        assert digest.child_bytes("identity") == creds.identity.public
        assert digest.child_bytes("registration") == creds.registration_id.to_bytes(4, "big")
        ids = [
            int.from_bytes(n.content, "big")
            for n in digest.children("list")[0].children("id")
            if isinstance(n.content, bytes)
        ]
        assert ids == list(range(1, 31))
        expected = hashlib.sha1(
            creds.identity.public
            + creds.signed_pre_key.public
            + creds.signed_pre_key_signature
            + b"".join(creds.pre_keys[i].public for i in ids)
        ).digest()
        assert digest.child_bytes("hash") == expected

        active = await companion.iq("passive", "set", [Node("active")])
        assert active.attrs["type"] == "result"
        pong = await companion.iq("w:p", "get", [Node("ping")])
        assert pong.attrs["type"] == "result"
        unknown = await companion.iq("w:stats", "set", [Node("add")])
        assert unknown.attrs["type"] == "error"
        assert unknown.children("error")[0].attrs["code"] == "501"
        await companion.close()


async def test_pre_keys_are_consumed_and_a_low_count_is_announced() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        companion = await pair_by_qr(sim, control)
        await companion.connect_and_login()
        await companion.upload_pre_keys(7)

        answer = await control.consume_pre_keys(PHONE, 1, 2)
        assert answer == {"preKeyCount": 5, "notified": False}
        answer = await control.consume_pre_keys(PHONE, 1, 1)
        assert answer == {"preKeyCount": 4, "notified": True}
        note = await companion.wait_for(
            lambda n: n.tag == "notification" and n.attrs.get("type") == "encrypt"
        )
        assert note.children("count")[0].attrs == {"value": "4"}

        # a contact fetching the bundle over the socket consumes the lowest pre-key id
        bundle = await companion.iq(
            "encrypt", "get", [Node("key", {}, [Node("user", {"jid": "40700000001:1@s.whatsapp.net"})])]
        )
        user = bundle.children("list")[0].children("user")[0]
        key = user.child("key")
        assert key is not None and key.child_bytes("id") == (4).to_bytes(3, "big")
        assert user.child_bytes("identity") == companion.creds.identity.public
        assert (await control.device(PHONE, 1))["preKeyCount"] == 3
        await companion.close()


async def test_remove_companion_device_logs_the_device_out() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        companion = await pair_by_qr(sim, control)
        await companion.connect_and_login()
        jid = f"{companion.creds.user}:{companion.creds.device_id}@s.whatsapp.net"
        answer = await companion.iq(
            "md", "set", [Node("remove-companion-device", {"jid": jid, "reason": "user_initiated"})]
        )
        assert answer.attrs["type"] == "result"
        await companion.wait_closed()
        assert await control.devices(PHONE) == []


async def test_many_logins_never_leave_more_than_one_live_socket() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        paired = await pair_by_qr(sim, control)
        clients = [ScriptedCompanion(sim.ws_url, sim.root_public_key, paired.creds) for _ in range(5)]
        results = await asyncio.gather(*(c.connect_and_login() for c in clients), return_exceptions=True)
        assert all(not isinstance(r, BaseException) for r in results)
        device = await control.device(PHONE, 1)
        assert device["liveSockets"] == 1
        assert device["loginCount"] == 5
        assert device["replacedCount"] == 4
        async with asyncio.timeout(10):  # the four replaced sockets are closed by the server
            while sum(c.closed.is_set() for c in clients) < 4:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        survivors = [c for c in clients if not c.closed.is_set()]
        assert len(survivors) == 1
        assert (await survivors[0].iq("w:p", "get", [Node("ping")])).attrs["type"] == "result"
        for client in clients:
            await client.close()


async def test_stanza_before_login_on_registering_socket_is_refused() -> None:
    async with running_simulator() as sim:
        companion = ScriptedCompanion(sim.ws_url, sim.root_public_key)
        await companion.connect_and_register()
        answer = await companion.iq("encrypt", "get", [Node("count")])
        assert answer.attrs["type"] == "error"
        assert answer.children("error")[0].attrs["code"] == "401"
        await companion.close()


async def test_garbage_after_handshake_closes_the_socket() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        companion = await pair_by_qr(sim, control)
        await companion.connect_and_login()
        await companion.send_raw_frame(b"\x01" * 40)
        await companion.wait_closed()
        with pytest.raises(CompanionClosed):
            await companion.wait_tag("never")
        assert (await control.device(PHONE, 1))["liveSockets"] == 0
