"""The ``ClientPayload`` sent inside the Noise ``clientFinish``: login or registration.

Login (a device already linked) names the account: ``username`` (the phone number) and ``device``.
Registration (a new companion) instead carries ``devicePairingData``: registration id, identity key,
signed pre-key and a ``DeviceProps`` description of the companion. Field choices follow Baileys
``generateLoginNode`` / ``generateRegistrationNode``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from connector.protocol.binary import Jid
from connector.protocol.crypto import SIGNAL_KEY_TYPE
from connector.protocol.errors import MessageFormatError
from connector.protocol.proto import wa_pb2

DEFAULT_WA_VERSION: Final = (2, 3000, 1035194821)
"""WhatsApp Web version announced by default (Baileys ``baileys-version.json``)."""

_PLATFORM_TYPES: Final = {
    "chrome": wa_pb2.DeviceProps.CHROME,
    "firefox": wa_pb2.DeviceProps.FIREFOX,
    "safari": wa_pb2.DeviceProps.SAFARI,
    "edge": wa_pb2.DeviceProps.EDGE,
    "opera": wa_pb2.DeviceProps.OPERA,
    "desktop": wa_pb2.DeviceProps.DESKTOP,
}
_COMPANION_PLATFORM_IDS: Final = {"chrome": "1", "edge": "2", "firefox": "3", "ie": "4", "opera": "5", "safari": "6"}


@dataclass(frozen=True, slots=True)
class DeviceDescription:
    """How the companion presents itself (shown in the phone's linked-devices list)."""

    os_name: str = "Mac OS"
    browser: str = "Chrome"
    version: tuple[int, int, int] = DEFAULT_WA_VERSION
    country_code: str = "US"
    push_name: str | None = None

    @property
    def platform_id(self) -> str:
        """``companion_platform_id`` / the QR's last field (Baileys ``getCompanionPlatformId``)."""
        return _COMPANION_PLATFORM_IDS.get(self.browser.lower(), "9")

    @property
    def display_name(self) -> str:
        return f"{self.browser} ({self.os_name})"


def _base_payload(device: DeviceDescription) -> wa_pb2.ClientPayload:
    major, minor, patch = device.version
    payload = wa_pb2.ClientPayload(
        connectType=wa_pb2.ClientPayload.WIFI_UNKNOWN,
        connectReason=wa_pb2.ClientPayload.USER_ACTIVATED,
        userAgent=wa_pb2.ClientPayload.UserAgent(
            platform=wa_pb2.ClientPayload.UserAgent.WEB,
            appVersion=wa_pb2.ClientPayload.UserAgent.AppVersion(primary=major, secondary=minor, tertiary=patch),
            releaseChannel=wa_pb2.ClientPayload.UserAgent.RELEASE,
            mcc="000",
            mnc="000",
            osVersion="0.1",
            device="Desktop",
            osBuildNumber="0.1",
            localeLanguageIso6391="en",
            localeCountryIso31661Alpha2=device.country_code,
        ),
        webInfo=wa_pb2.ClientPayload.WebInfo(webSubPlatform=wa_pb2.ClientPayload.WebInfo.WEB_BROWSER),
    )
    if device.push_name:
        payload.pushName = device.push_name
    return payload


def login_payload(me: str, device: DeviceDescription) -> bytes:
    """ClientPayload for a linked device logging in as ``me`` (``user:device@s.whatsapp.net``)."""
    jid = Jid.parse(me)
    if not jid.user.isdigit():
        raise MessageFormatError("login needs a phone-number JID")
    payload = _base_payload(device)
    payload.username = int(jid.user)
    payload.device = jid.device or 0
    payload.passive = True
    payload.pull = True
    payload.lidDbMigrated = False
    return payload.SerializeToString()


def registration_payload(
    *,
    registration_id: int,
    identity_public: bytes,
    signed_pre_key_id: int,
    signed_pre_key_public: bytes,
    signed_pre_key_signature: bytes,
    device: DeviceDescription,
) -> bytes:
    """ClientPayload for a new companion, carrying its Signal identity for the phone to link."""
    props = wa_pb2.DeviceProps(
        os=device.os_name,
        platformType=_PLATFORM_TYPES.get(device.browser.lower(), wa_pb2.DeviceProps.CHROME),
        requireFullSync=False,
        version=wa_pb2.DeviceProps.AppVersion(primary=10, secondary=15, tertiary=7),
        historySyncConfig=wa_pb2.DeviceProps.HistorySyncConfig(
            storageQuotaMb=10240, inlineInitialPayloadInE2EeMsg=True, supportCallLogHistory=False
        ),
    )
    payload = _base_payload(device)
    payload.passive = False
    payload.pull = False
    payload.devicePairingData.CopyFrom(
        wa_pb2.ClientPayload.DevicePairingRegistrationData(
            buildHash=hashlib.md5(".".join(map(str, device.version)).encode(), usedforsecurity=False).digest(),
            deviceProps=props.SerializeToString(),
            eRegid=registration_id.to_bytes(4, "big"),
            eKeytype=bytes([SIGNAL_KEY_TYPE]),
            eIdent=identity_public,
            eSkeyId=signed_pre_key_id.to_bytes(3, "big"),
            eSkeyVal=signed_pre_key_public,
            eSkeySig=signed_pre_key_signature,
        )
    )
    return payload.SerializeToString()
