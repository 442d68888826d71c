"""The values the Signal layer shares with the rest of the protocol core.

``SignalAddress`` names one device's Signal party the way Baileys 7 names its stored records
(``session-<name>``, ``identity-key-<name>``); ``PreKeyBundle`` is a device's published keys as the
server's ``encrypt`` iq hands them out. Both are defined here, once, for the stanza parsers, the
Signal repository and the simulator alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.protocol.binary import HOSTED_LID_SERVER, HOSTED_SERVER, LID_SERVER, USER_SERVER, Jid
from connector.protocol.errors import JidError

# Baileys' Signal address domain types (``jidToSignalProtocolAddress``): PN 0, LID 1, hosted 128/129.
DOMAIN_PN = 0
DOMAIN_LID = 1
DOMAIN_HOSTED = 128
DOMAIN_HOSTED_LID = 129

_SERVER_BY_DOMAIN = {DOMAIN_PN: USER_SERVER, DOMAIN_LID: LID_SERVER, DOMAIN_HOSTED: HOSTED_SERVER,
                     DOMAIN_HOSTED_LID: HOSTED_LID_SERVER}
_DOMAIN_BY_SERVER = {server: domain for domain, server in _SERVER_BY_DOMAIN.items()}


@dataclass(frozen=True, slots=True, order=True)
class SignalAddress:
    """One device of one user: ``user[_domain].device`` (``4915550001.0``, ``12345_1.3``)."""

    user: str
    device: int = 0
    domain: int = DOMAIN_PN

    @property
    def name(self) -> str:
        """The id Baileys 7 stores this address's records under."""
        domain = f"_{self.domain}" if self.domain else ""
        return f"{self.user}{domain}.{self.device}"

    @classmethod
    def parse(cls, name: str) -> SignalAddress:
        """Parse :attr:`name`; raises ``JidError`` for anything else."""
        user_part, dot, device_text = name.rpartition(".")
        if not dot or not user_part or not device_text.isdigit():
            raise JidError(f"not a Signal address: {name!r}")
        domain = 0
        if "_" in user_part:
            user_part, _, domain_text = user_part.partition("_")
            if not domain_text.isdigit() or int(domain_text) not in _SERVER_BY_DOMAIN:
                raise JidError(f"bad domain in Signal address {name!r}")
            domain = int(domain_text)
        if not user_part:
            raise JidError(f"not a Signal address: {name!r}")
        return cls(user=user_part, device=int(device_text), domain=domain)

    @classmethod
    def from_jid(cls, jid: Jid) -> SignalAddress:
        """The address of a user or device JID (``user:3@lid`` -> ``user_1.3``)."""
        domain = _DOMAIN_BY_SERVER.get(jid.server)
        if domain is None:
            raise JidError(f"no Signal address for server {jid.server!r}")
        return cls(user=jid.user, device=jid.device or 0, domain=domain)

    def to_jid(self) -> Jid:
        """The device JID of this address (device 0 is the user JID without a device part)."""
        return Jid(user=self.user, server=_SERVER_BY_DOMAIN[self.domain], device=self.device or None)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class PreKeyBundle:
    """A device's published keys (the ``encrypt`` iq's ``<user>``): what X3DH as initiator starts from.

    Keys are the 32-byte raw X25519 values of the wire; the signature is the 64-byte XEdDSA signature
    of the signed pre-key's 33-byte form (``0x05`` prefix) by the identity key.
    """

    registration_id: int
    identity_key: bytes
    signed_pre_key_id: int
    signed_pre_key: bytes
    signed_pre_key_signature: bytes
    pre_key_id: int | None = None
    pre_key: bytes | None = None
