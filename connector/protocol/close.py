"""Why a connection ended, and what that implies for the caller.

The protocol core never reconnects by itself: every end of a connection becomes one ``CloseInfo`` with a
``CloseReason`` (what happened, with the Baileys-style status code) and a ``ClosePolicy`` (what the
connector should do about it). The table below is the single place where that mapping lives.

=====================  ======  ==================  ===========================================================
reason                 code    policy              source
=====================  ======  ==================  ===========================================================
restart_required       515     restart_now         ``<stream:error code="515">`` (after pairing, server move)
replaced               440     stop_replaced       ``<stream:error><conflict type="replaced">``: another socket
logged_out             401     stop_logged_out     ``<failure reason=401|403|406>``, ``<stream:error code=401>``
device_removed         401     stop_logged_out     ``<stream:error code=401><conflict type="device_removed">``
multidevice_mismatch   411     stop_logged_out     ``<ib><downgrade_webclient>``, failure or stream error 411
client_outdated        405     stop_outdated       ``<failure reason=405>``
bad_session            500     backoff             stream error 500 and any other (403 too), failure 500
service_unavailable    503     backoff             ``<stream:error code=503>``, ``<failure reason=503>``
temporarily_banned     402     backoff             ``<failure reason=402>`` (whatsmeow ``ConnectFailureTempBanned``)
connection_closed      428     backoff             the socket closed, ``<xmlstreamend/>``, stream error 428
connection_lost        408     backoff             keepalive deadline missed (the socket is dead), stream error 408
timed_out              408     backoff             connect or handshake did not finish in time
protocol_error         500     backoff             undecodable or unverifiable data from the server
pairing_expired        408     stop_pairing        every QR ref shown and none scanned; code not entered
pairing_failed         401     stop_pairing        pair-success did not verify (HMAC / signature)
closed_by_client       0       stop_requested      ``Client.close()``
logged_out_by_client   401     stop_requested      ``Client.logout()``: the server confirmed (or reported) the unlink
logout_failed          500     stop_requested      ``Client.logout()``: refused, unanswered in time, or cut short
=====================  ======  ==================  ===========================================================

Codes and reasons follow FACTS.md (Baileys ``DisconnectReason``, whatsmeow ``connectionevents.go``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from connector.protocol.binary import Node


class CloseReason(enum.StrEnum):
    RESTART_REQUIRED = "restart_required"
    REPLACED = "replaced"
    LOGGED_OUT = "logged_out"
    DEVICE_REMOVED = "device_removed"
    MULTIDEVICE_MISMATCH = "multidevice_mismatch"
    CLIENT_OUTDATED = "client_outdated"
    BAD_SESSION = "bad_session"
    SERVICE_UNAVAILABLE = "service_unavailable"
    TEMPORARILY_BANNED = "temporarily_banned"
    CONNECTION_CLOSED = "connection_closed"
    CONNECTION_LOST = "connection_lost"
    TIMED_OUT = "timed_out"
    PROTOCOL_ERROR = "protocol_error"
    PAIRING_EXPIRED = "pairing_expired"
    PAIRING_FAILED = "pairing_failed"
    CLOSED_BY_CLIENT = "closed_by_client"
    LOGGED_OUT_BY_CLIENT = "logged_out_by_client"
    LOGOUT_FAILED = "logout_failed"


class ClosePolicy(enum.StrEnum):
    """What the caller should do next."""

    RESTART_NOW = "restart_now"
    """Reconnect at once with the (now updated) credentials."""
    BACKOFF = "backoff"
    """Reconnect after an exponential backoff with jitter."""
    STOP_LOGGED_OUT = "stop_logged_out"
    """The phone unlinked this device: stop, mark the account for re-pairing, alert."""
    STOP_REPLACED = "stop_replaced"
    """Another socket holds the account: do not fight it."""
    STOP_OUTDATED = "stop_outdated"
    """The server refuses this client version: stop until the software is updated."""
    STOP_PAIRING = "stop_pairing"
    """Pairing did not complete (expired or failed); a new pairing must be requested."""
    STOP_REQUESTED = "stop_requested"
    """The caller asked for the close."""


_TABLE: Final[dict[CloseReason, tuple[int, ClosePolicy]]] = {
    CloseReason.RESTART_REQUIRED: (515, ClosePolicy.RESTART_NOW),
    CloseReason.REPLACED: (440, ClosePolicy.STOP_REPLACED),
    CloseReason.LOGGED_OUT: (401, ClosePolicy.STOP_LOGGED_OUT),
    CloseReason.DEVICE_REMOVED: (401, ClosePolicy.STOP_LOGGED_OUT),
    CloseReason.MULTIDEVICE_MISMATCH: (411, ClosePolicy.STOP_LOGGED_OUT),
    CloseReason.CLIENT_OUTDATED: (405, ClosePolicy.STOP_OUTDATED),
    CloseReason.BAD_SESSION: (500, ClosePolicy.BACKOFF),
    CloseReason.SERVICE_UNAVAILABLE: (503, ClosePolicy.BACKOFF),
    CloseReason.TEMPORARILY_BANNED: (402, ClosePolicy.BACKOFF),
    CloseReason.CONNECTION_CLOSED: (428, ClosePolicy.BACKOFF),
    CloseReason.CONNECTION_LOST: (408, ClosePolicy.BACKOFF),
    CloseReason.TIMED_OUT: (408, ClosePolicy.BACKOFF),
    CloseReason.PROTOCOL_ERROR: (500, ClosePolicy.BACKOFF),
    CloseReason.PAIRING_EXPIRED: (408, ClosePolicy.STOP_PAIRING),
    CloseReason.PAIRING_FAILED: (401, ClosePolicy.STOP_PAIRING),
    CloseReason.CLOSED_BY_CLIENT: (0, ClosePolicy.STOP_REQUESTED),
    # Logging out is asked for by the caller (the account is being removed): both outcomes stop, and the
    # reason tells whether WhatsApp still lists the device (logout_failed) or not.
    CloseReason.LOGGED_OUT_BY_CLIENT: (401, ClosePolicy.STOP_REQUESTED),
    CloseReason.LOGOUT_FAILED: (500, ClosePolicy.STOP_REQUESTED),
}


@dataclass(frozen=True, slots=True)
class CloseInfo:
    """One classified end of a connection. ``code`` is the server's code when it gave one."""

    reason: CloseReason
    code: int
    policy: ClosePolicy
    detail: str = ""


def close_info(reason: CloseReason, *, code: int | None = None, detail: str = "") -> CloseInfo:
    default_code, policy = _TABLE[reason]
    return CloseInfo(reason=reason, code=default_code if code is None else code, policy=policy, detail=detail)


_LOGOUT_OUTCOMES: Final = (CloseReason.LOGGED_OUT_BY_CLIENT, CloseReason.LOGOUT_FAILED)


def logout_outcome(info: CloseInfo) -> CloseInfo:
    """How a connection that ended while a logout was in progress ended, seen as a logout.

    The server dropping the device (401 / device_removed) means the device is unlinked, as asked; any other
    end (network, timeout, a close by the caller, an error) leaves the device possibly still linked.
    """
    if info.reason in _LOGOUT_OUTCOMES:
        return info
    if info.reason in (CloseReason.LOGGED_OUT, CloseReason.DEVICE_REMOVED):
        return close_info(CloseReason.LOGGED_OUT_BY_CLIENT, code=info.code, detail=f"server: {info.detail}")
    detail = f"{info.reason.value}: {info.detail}" if info.detail else info.reason.value
    return close_info(CloseReason.LOGOUT_FAILED, detail=detail)


def _int_attr(node: Node, name: str) -> int | None:
    value = node.attrs.get(name, "")
    return int(value) if value.isdigit() else None


def classify_stream_error(node: Node) -> CloseInfo:
    """Classify ``<stream:error>`` (whatsmeow ``handleStreamError``, Baileys ``getErrorCodeFromStreamError``)."""
    code = _int_attr(node, "code")
    conflict = node.child("conflict")
    conflict_type = conflict.attrs.get("type", "") if conflict is not None else ""
    first_child = next(iter(node.children()), None)
    detail = first_child.tag if first_child is not None else ""
    if code == 515:
        return close_info(CloseReason.RESTART_REQUIRED, detail="restart required")
    if conflict_type == "device_removed":
        return close_info(CloseReason.DEVICE_REMOVED, code=code or 401, detail="device_removed")
    if code == 401:
        return close_info(CloseReason.LOGGED_OUT, detail=detail or "stream error 401")
    if conflict is not None or code == 440:  # "replaced", or a bare <conflict/> (Baileys maps it to 440)
        return close_info(CloseReason.REPLACED, code=code or 440, detail=conflict_type or "conflict")
    if code == 411:
        return close_info(CloseReason.MULTIDEVICE_MISMATCH, detail=detail or "stream error 411")
    if code == 503:
        return close_info(CloseReason.SERVICE_UNAVAILABLE, detail=detail)
    if code in (408, 428):  # Baileys' timed out / connection closed: transient, like a dropped socket
        reason = CloseReason.CONNECTION_LOST if code == 408 else CloseReason.CONNECTION_CLOSED
        return close_info(reason, detail=detail or f"stream error {code}")
    # Anything else, 403 "forbidden" included, is retried with backoff as Baileys and whatsmeow do: a
    # device that really lost its link is told so by <failure reason=403> at its next login.
    return close_info(CloseReason.BAD_SESSION, code=code or 500, detail=detail or "stream error")


def classify_failure(node: Node) -> CloseInfo:
    """Classify ``<failure reason=N>`` sent instead of ``<success>`` (whatsmeow ``handleConnectFailure``)."""
    reason = _int_attr(node, "reason") or 500
    if reason in (401, 403, 406):
        return close_info(CloseReason.LOGGED_OUT, code=reason, detail=f"failure {reason}")
    if reason == 405:
        return close_info(CloseReason.CLIENT_OUTDATED, detail="failure 405")
    if reason == 411:
        return close_info(CloseReason.MULTIDEVICE_MISMATCH, detail="failure 411")
    if reason == 402:
        return close_info(CloseReason.TEMPORARILY_BANNED, detail="failure 402")
    if reason == 503:
        return close_info(CloseReason.SERVICE_UNAVAILABLE, detail="failure 503")
    return close_info(CloseReason.BAD_SESSION, code=reason, detail=f"failure {reason}")
