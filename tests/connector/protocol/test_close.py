from __future__ import annotations

import pytest

from connector.protocol.binary import Node
from connector.protocol.close import (
    ClosePolicy,
    CloseReason,
    classify_failure,
    classify_stream_error,
    close_info,
)

#: The policies after which the connector connects again (the others stop).
RECONNECTING = (ClosePolicy.RESTART_NOW, ClosePolicy.BACKOFF)


@pytest.mark.parametrize("reason", list(CloseReason))
def test_every_reason_has_a_code_and_policy(reason: CloseReason) -> None:
    info = close_info(reason)
    assert info.reason is reason and isinstance(info.policy, ClosePolicy) and info.code >= 0


def test_only_restart_and_transient_reasons_reconnect() -> None:
    reconnecting = {r for r in CloseReason if close_info(r).policy in RECONNECTING}
    assert reconnecting == {
        CloseReason.RESTART_REQUIRED, CloseReason.BAD_SESSION, CloseReason.SERVICE_UNAVAILABLE,
        CloseReason.TEMPORARILY_BANNED, CloseReason.CONNECTION_CLOSED, CloseReason.CONNECTION_LOST,
        CloseReason.TIMED_OUT, CloseReason.PROTOCOL_ERROR,
    }


@pytest.mark.parametrize(
    ("node", "reason", "code"),
    [
        (Node("stream:error", {"code": "515"}), CloseReason.RESTART_REQUIRED, 515),
        (Node("stream:error", {}, [Node("conflict", {"type": "replaced"})]), CloseReason.REPLACED, 440),
        (Node("stream:error", {}, [Node("conflict")]), CloseReason.REPLACED, 440),
        (Node("stream:error", {"code": "401"}, [Node("conflict", {"type": "device_removed"})]),
         CloseReason.DEVICE_REMOVED, 401),
        (Node("stream:error", {"code": "401"}), CloseReason.LOGGED_OUT, 401),
        (Node("stream:error", {"code": "403"}), CloseReason.BAD_SESSION, 403),
        (Node("stream:error", {"code": "440"}), CloseReason.REPLACED, 440),
        (Node("stream:error", {"code": "411"}), CloseReason.MULTIDEVICE_MISMATCH, 411),
        (Node("stream:error", {"code": "408"}), CloseReason.CONNECTION_LOST, 408),
        (Node("stream:error", {"code": "428"}), CloseReason.CONNECTION_CLOSED, 428),
        (Node("stream:error", {"code": "503"}), CloseReason.SERVICE_UNAVAILABLE, 503),
        (Node("stream:error", {"code": "500"}), CloseReason.BAD_SESSION, 500),
        (Node("stream:error", {"code": "516"}), CloseReason.BAD_SESSION, 516),
        (Node("stream:error", {}), CloseReason.BAD_SESSION, 500),
    ],
)
def test_stream_errors(node: Node, reason: CloseReason, code: int) -> None:
    info = classify_stream_error(node)
    assert (info.reason, info.code) == (reason, code)


@pytest.mark.parametrize(
    ("reason_attr", "reason", "policy"),
    [
        ("401", CloseReason.LOGGED_OUT, ClosePolicy.STOP_LOGGED_OUT),
        ("403", CloseReason.LOGGED_OUT, ClosePolicy.STOP_LOGGED_OUT),
        ("406", CloseReason.LOGGED_OUT, ClosePolicy.STOP_LOGGED_OUT),
        ("405", CloseReason.CLIENT_OUTDATED, ClosePolicy.STOP_OUTDATED),
        ("411", CloseReason.MULTIDEVICE_MISMATCH, ClosePolicy.STOP_LOGGED_OUT),
        ("402", CloseReason.TEMPORARILY_BANNED, ClosePolicy.BACKOFF),
        ("500", CloseReason.BAD_SESSION, ClosePolicy.BACKOFF),
        ("503", CloseReason.SERVICE_UNAVAILABLE, ClosePolicy.BACKOFF),
        ("", CloseReason.BAD_SESSION, ClosePolicy.BACKOFF),
    ],
)
def test_failures(reason_attr: str, reason: CloseReason, policy: ClosePolicy) -> None:
    info = classify_failure(Node("failure", {"reason": reason_attr} if reason_attr else {}))
    assert (info.reason, info.policy) == (reason, policy)
    if reason_attr:
        assert info.code == int(reason_attr)


@pytest.mark.parametrize(
    ("code", "policy"),
    [
        (428, ClosePolicy.BACKOFF), (408, ClosePolicy.BACKOFF), (440, ClosePolicy.STOP_REPLACED),
        (401, ClosePolicy.STOP_LOGGED_OUT), (500, ClosePolicy.BACKOFF), (515, ClosePolicy.RESTART_NOW),
        (411, ClosePolicy.STOP_LOGGED_OUT), (403, ClosePolicy.BACKOFF), (503, ClosePolicy.BACKOFF),
    ],
)
def test_every_facts_disconnect_code_as_a_stream_error(code: int, policy: ClosePolicy) -> None:
    """FACTS.md's disconnect codes keep their code and get the policy their name implies."""
    info = classify_stream_error(Node("stream:error", {"code": str(code)}))
    assert (info.code, info.policy) == (code, policy)
