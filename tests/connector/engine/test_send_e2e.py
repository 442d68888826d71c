"""A send through the engine (driver + protocol client + send flow) to a simulated phone over real
sockets: the phone decrypts it, the server's ack makes it ``sent``, the phone's receipts ``delivered``
and ``read``."""

from __future__ import annotations

import pytest

from connector.protocol.binary import Jid
from connector.protocol.events import Opened
from connector.protocol.outbound import SendRequest
from connector.protocol.send_status import SendStatus, Status
from connector.protocol.wamessage_encode import text_message
from simulator.testing import running_simulator
from tests.connector.engine.test_simulator_e2e import PHONE, Session, fresh_store, pair_by_qr, restarted

pytestmark = pytest.mark.integration

CONTACT = "+40700000009"


async def test_a_send_reaches_the_phone_and_reports_sent_delivered_read() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        await control.create_phone(CONTACT)
        store = fresh_store()
        await pair_by_qr(sim, control, store)
        session = Session(sim, restarted(store))
        await session.wait(Opened)
        to = Jid.parse(f"{CONTACT.lstrip('+')}@s.whatsapp.net")
        for n, text in enumerate(["first", "second"]):
            message_id = f"3EB0E2E{n}"
            assert await session.engine.send(SendRequest(message_id, to, text_message(text)))
            # The phone's delivery receipt may overtake the server's ack: both come, in either order.
            sent = await session.wait(SendStatus, lambda s, m=message_id: s.message_id == m and s.status is Status.SENT)
            assert sent.timestamp
            await session.wait(SendStatus, lambda s, m=message_id: s.message_id == m and s.status is Status.DELIVERED)
            got = [m for m in (await control.request("GET", f"/v1/phones/{CONTACT}/messages"))["messages"]
                   if m["id"] == message_id]
            assert [m["text"] for m in got] == [text]
        await control.request("POST", f"/v1/phones/{CONTACT}/messages/read", {"ids": ["3EB0E2E1"]})
        await session.wait(SendStatus, lambda s: s.message_id == "3EB0E2E1" and s.status is Status.READ)
        await session.engine.close()
