"""Addresses as WhatsApp uses them now: every account has a phone-number user (``<pn>@s.whatsapp.net``)
and a LID user (``<lid>@lid``); a device is ``user:N@server`` (the primary, device 0, has no ``:N``).

A client may name the same device either way (Baileys 7 fetches devices by PN, then keys and sessions
by LID); the server resolves both to one account and answers in the form it was asked in.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.protocol.binary import Jid
from connector.protocol.errors import JidError
from simulator.state import LID_SERVER, USER_SERVER, Phone, SimulatorState, device_jid


@dataclass(frozen=True)
class Address:
    """One account (or one of its devices) named in one addressing form."""

    phone: Phone
    server: str  # USER_SERVER or LID_SERVER
    device_id: int | None  # None: the account, not a device

    @property
    def is_lid(self) -> bool:
        return self.server == LID_SERVER

    def user_jid(self) -> str:
        return account_jid(self.phone, self.server)

    def device(self, device_id: int) -> str:
        return device_address(self.phone, device_id, self.server)


def account_jid(phone: Phone, server: str) -> str:
    return f"{phone.lid_user if server == LID_SERVER else phone.user}@{server}"


def device_address(phone: Phone, device_id: int, server: str) -> str:
    return device_jid(phone.lid_user if server == LID_SERVER else phone.user, device_id, server)


def alternate_server(server: str) -> str:
    return USER_SERVER if server == LID_SERVER else LID_SERVER


def resolve(state: SimulatorState, text: str) -> Address | None:
    """The account a PN or LID JID names, or None for anything else (unknown user, other server)."""
    try:
        jid = Jid.parse(text)
    except JidError:
        return None
    phone = state.phone_by_jid_user(jid.user, jid.server)
    if phone is None:
        return None
    return Address(phone, jid.server, jid.device)
