"""Adapts ``EngineSession`` to the supervisor's ``connector.link`` interface (``LinkFactory``).

The supervisor sees only ``connector.link`` types; this module translates engine events into them and
drops the ones the supervisor learns through the auth store's listener (``CredsChanged``) or does not
use (``PreKeysUploaded``, ``OfflineSyncDone``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable

from connector import link
from connector.engine.driver import WHATSAPP_WEB_URL, EngineConfig, EngineSession
from connector.protocol import certs
from connector.protocol.client import ClientConfig
from connector.protocol.close import CloseInfo
from connector.protocol.events import (
    Closed,
    CredsChanged,
    IncomingMessage,
    MessageReceived,
    Opened,
    Paired,
    PairingCodeShown,
    QrCodeShown,
)
from shared import events as shared_events
from shared.authstore import MemoryAuthStore
from shared.connector_sync import PairingMethod, PairingRequest

PersistCritical = Callable[[str, list[CredsChanged]], Awaitable[None]]
"""Awaited with the account id before bytes that depend on a critical credentials change are sent."""


class EngineLinkFactory:
    """``LinkFactory`` backed by the real engine."""

    def __init__(
        self,
        url: str = WHATSAPP_WEB_URL,
        root_key: bytes | None = None,
        *,
        client_config: ClientConfig | None = None,
        connect_timeout_s: float = 20.0,
        persist_critical: PersistCritical | None = None,
    ) -> None:
        base = client_config or ClientConfig()
        self._client_config = dataclasses.replace(base, root_public_key=root_key or certs.WHATSAPP_ROOT_PUBLIC_KEY)
        self._url = url
        self._connect_timeout_s = connect_timeout_s
        self._persist_critical = persist_critical

    def open(self, account_id: str, store: MemoryAuthStore, pairing: PairingRequest | None) -> EngineLink:
        phone = pairing.phone_number if pairing is not None and pairing.method == PairingMethod.CODE else None
        config = EngineConfig(
            url=self._url,
            connect_timeout_s=self._connect_timeout_s,
            client=dataclasses.replace(self._client_config, pairing_phone_number=phone),
        )
        before_send = None
        if self._persist_critical is not None:
            persist = self._persist_critical

            async def before_send(changes: list[CredsChanged]) -> None:
                await persist(account_id, changes)

        return EngineLink(account_id, EngineSession(store, config, before_send=before_send))


class EngineLink:
    """``LinkSession`` over one ``EngineSession``."""

    def __init__(self, account_id: str, session: EngineSession) -> None:
        self._account_id = account_id
        self._session = session

    async def events(self) -> AsyncIterator[link.LinkEvent]:
        async for event in self._session.events():
            translated = self._translate(event)
            if translated is not None:
                yield translated

    async def close(self) -> None:
        await self._session.close()

    async def logout(self, timeout_s: float | None = None) -> link.Closed:
        """Unlink the device from the account, then close (an extra to ``LinkSession``, for removal).

        Returns the same ``Closed`` the event iterator ends with: reason ``logged_out_by_client`` when
        WhatsApp confirmed that the device is unlinked, ``logout_failed`` otherwise (policy
        ``stop_requested`` in both cases). Connects first when the socket is not open yet.
        """
        return self._closed(await self._session.logout(timeout_s))

    def _translate(self, event: object) -> link.LinkEvent | None:
        if isinstance(event, QrCodeShown):
            return link.QrShown(qr=event.qr)
        if isinstance(event, PairingCodeShown):
            return link.PairingCodeShown(code=event.code)
        if isinstance(event, Paired):
            return link.Paired(jid=event.jid)
        if isinstance(event, Opened):
            return link.Opened()
        if isinstance(event, Closed):
            return self._closed(event.info)
        if isinstance(event, MessageReceived):
            return link.Incoming(message=self._message_event(event.message), ack=self._acker(event.message))
        return None

    @staticmethod
    def _closed(info: CloseInfo) -> link.Closed:
        return link.Closed(reason=info.reason.value, policy=info.policy.value, code=info.code)

    def _message_event(self, message: IncomingMessage) -> shared_events.MessageUndecryptable:
        # The engine does not decrypt yet (the Signal layer plugs in here): a message it cannot read
        # is published as undecryptable, never as ciphertext, and acknowledged like any other.
        user, _, server = message.sender.partition("@")
        chat = f"{user.split(':', 1)[0]}@{server}"  # a 1:1 chat is the user, not the sending device
        return shared_events.MessageUndecryptable(
            account_id=self._account_id,
            key=shared_events.MessageKey(chat, False, message.id, message.participant),
            chat=chat,
            sender=message.participant or message.sender,
            timestamp=message.timestamp or 0,
            reason="decryption_unavailable",
        )

    def _acker(self, message: IncomingMessage) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            await self._session.ack(message)

        return ack
