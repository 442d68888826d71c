"""Stanzas the server builds, and the codes it puts in them."""

from __future__ import annotations

from connector.protocol.binary import S_WHATSAPP_NET, Node

FAILURE_LOGGED_OUT = 401
FAILURE_BAD_REGISTRATION = 400
STREAM_RESTART_REQUIRED = 515


def iq_result(iq: Node, content: list[Node] | None = None) -> Node:
    return Node("iq", {"from": S_WHATSAPP_NET, "type": "result", "id": iq.attrs["id"]}, content)


def iq_error(iq: Node, code: int, text: str) -> Node:
    attrs = {"from": S_WHATSAPP_NET, "type": "error", "id": iq.attrs["id"]}
    return Node("iq", attrs, [Node("error", {"code": str(code), "text": text})])


def stream_error(code: int | None, conflict: str | None = None) -> Node:
    attrs = {} if code is None else {"code": str(code)}
    content = None if conflict is None else [Node("conflict", {"type": conflict})]
    return Node("stream:error", attrs, content)


def failure(reason: int) -> Node:
    return Node("failure", {"reason": str(reason), "location": "sim"})
