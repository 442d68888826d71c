"""The control API: HTTP JSON on the simulator's port, for tests and the local stack.

Endpoints (documented with examples in ``simulator/README.md``)::

    GET    /healthz                                       liveness + socket counts
    GET    /v1/root-key                                   the root public key clients must trust
    POST   /v1/phones                                     {"phone": "+40700000001"} -> 201
    GET    /v1/phones                                     every phone
    GET    /v1/phones/{phone}                             one phone
    POST   /v1/phones/{phone}/link-code                   {"code": "ABCD-EFGH"}: typed on the phone
    POST   /v1/phones/{phone}/scan                        {"qr": "ref,noise,identity,adv"}
    GET    /v1/phones/{phone}/devices                     linked devices, live sockets, login counts
    DELETE /v1/phones/{phone}/devices/{device}            unlink (the device gets 401)
    POST   /v1/phones/{phone}/devices/{device}/consume-prekeys   {"count": 3}: contacts fetch bundles
    POST   /v1/phones/{phone}/messages                    {"to", "text"}: the phone sends (to a phone or a group)
                                                          {"from": "+4071..."}: a contact sends it ciphertext
    GET    /v1/phones/{phone}/messages                    what the phone received (decrypted) and sent
    POST   /v1/phones/{phone}/messages/read               {"ids"?: [...]}: the phone reads them (read receipts)
    GET    /v1/phones/{phone}/devices/{device}/messages   messages not yet acknowledged by the device
    POST   /v1/groups                                     {"creator", "subject", "participants"} -> 201
    GET    /v1/groups/{group}                             a group and its members
    POST   /v1/groups/{group}/participants                {"add"|"remove"|"promote"|"demote": [phones]}
    POST   /v1/faults                                     inject a fault (see simulator.faults)
    GET    /v1/faults                                     lasting faults in force
    DELETE /v1/faults                                     clear every lasting fault
    DELETE /v1/faults/{id}                                clear one

Errors are ``{"error": {"kind": ..., "message": ...}}``; ``SimulatorError`` subclasses map to HTTP
status in ``_STATUS`` and nowhere else. ``{phone}`` may be written with or without ``+``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from simulator.core import Close
from simulator.errors import (
    ClientProtocolError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PairingError,
    SimulatorError,
)
from simulator.faults import Fault
from simulator.state import LID_SERVER, Phone, QueuedStanza, device_jid

if TYPE_CHECKING:
    from simulator.server import SimulatorServer

log = logging.getLogger(__name__)

_STATUS: dict[type[SimulatorError], int] = {
    NotFoundError: 404,
    ConflictError: 409,
    InvalidRequestError: 400,
    PairingError: 422,
    ClientProtocolError: 400,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors_to_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except SimulatorError as exc:
        status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 500)
        return web.json_response({"error": {"kind": type(exc).__name__, "message": str(exc)}}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequestError("body must be JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("body must be a JSON object")
    return data


def _required_str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidRequestError(f"{key!r} must be a non-empty string")
    return value


def _device_id(request: web.Request) -> int:
    text = request.match_info["device"]
    if not text.isdigit():
        raise InvalidRequestError("device must be a number")
    return int(text)


def _phone_view(phone: Phone) -> dict[str, Any]:
    return {
        "phone": "+" + phone.user,
        "jid": phone.jid,
        "lid": device_jid(phone.lid_user, 0, LID_SERVER),
        "identityKey": base64.b64encode(phone.identity_public).decode("ascii"),
        "pushName": phone.push_name,
        "businessName": phone.business_name,
        "devices": sorted(phone.devices),
        "removedDevices": sorted(phone.removed_device_ids),
    }


def _queued_view(queued: QueuedStanza) -> dict[str, Any]:
    attrs = queued.node.attrs
    encs = [n for n in queued.node.walk() if n.tag == "enc"]
    view: dict[str, Any] = {
        "id": queued.stanza_id,
        "from": attrs.get("from", ""),
        "t": int(attrs.get("t", "0")),
        "type": attrs.get("type", ""),
        "encType": encs[0].attrs.get("type", "") if encs else "",
    }
    if "participant" in attrs:
        view["participant"] = attrs["participant"]
    return view


def add_control_routes(app: web.Application, server: SimulatorServer) -> None:
    core = server.core

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "sockets": server.socket_count(), **core.stats()})

    async def root_key(request: web.Request) -> web.Response:
        return web.json_response(
            {"publicKey": server.root_public_key_b64, "publicKeyHex": server.root_public_key.hex()}
        )

    async def create_phone(request: web.Request) -> web.Response:
        data = await _body(request)
        phone = core.create_phone(
            _required_str(data, "phone"),
            push_name=str(data.get("pushName", "")),
            business_name=str(data.get("businessName", "")),
        )
        log.info("created phone %s", phone.user)
        return web.json_response(_phone_view(phone), status=201)

    async def list_phones(request: web.Request) -> web.Response:
        phones = [_phone_view(p) for _, p in sorted(core.state.phones.items())]
        return web.json_response({"phones": phones})

    async def get_phone(request: web.Request) -> web.Response:
        return web.json_response(_phone_view(core.state.phone(request.match_info["phone"])))

    async def link_code(request: web.Request) -> web.Response:
        data = await _body(request)
        actions = core.enter_link_code(request.match_info["phone"], _required_str(data, "code"))
        await server.run_actions(actions)
        return web.json_response({"status": "primary-hello-sent"})

    async def scan(request: web.Request) -> web.Response:
        data = await _body(request)
        jid, actions = core.scan_qr(request.match_info["phone"], _required_str(data, "qr"))
        await server.run_actions(actions)
        return web.json_response({"status": "pair-success-sent", "device": jid})

    async def devices(request: web.Request) -> web.Response:
        return web.json_response({"devices": core.devices_view(request.match_info["phone"])})

    async def unlink(request: web.Request) -> web.Response:
        phone, device_id = request.match_info["phone"], _device_id(request)
        actions = core.unlink_device(phone, device_id)
        await server.run_actions(actions)
        kicked = sum(1 for a in actions if isinstance(a, Close))
        return web.json_response({"removed": device_id, "kickedSockets": kicked})

    async def consume_pre_keys(request: web.Request) -> web.Response:
        data = await _body(request)
        count = data.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool):
            raise InvalidRequestError("count must be an integer")
        left, actions = core.consume_pre_keys(request.match_info["phone"], _device_id(request), count)
        await server.run_actions(actions)
        return web.json_response({"preKeyCount": left, "notified": bool(actions)})

    async def send_message(request: web.Request) -> web.Response:
        data = await _body(request)
        if "to" in data:  # the phone itself sends
            message_id, actions = core.phone_send(
                request.match_info["phone"], _required_str(data, "to"), _required_str(data, "text")
            )
            await server.run_actions(actions)
            return web.json_response({"id": message_id}, status=201)
        ciphertext = None
        if "ciphertext" in data:
            try:
                ciphertext = base64.b64decode(_required_str(data, "ciphertext"), validate=True)
            except binascii.Error:
                raise InvalidRequestError("ciphertext must be base64") from None
        message_id = data.get("id")
        if message_id is not None and (not isinstance(message_id, str) or not message_id):
            raise InvalidRequestError("id must be a non-empty string")
        message, sent_to, actions = core.deliver_message(
            request.match_info["phone"],
            _required_str(data, "from"),
            message_id=message_id,
            message_type=str(data.get("type", "text")),
            enc_type=str(data.get("encType", "msg")),
            ciphertext=ciphertext,
        )
        await server.run_actions(actions)
        pending_on = sorted(core.state.phone(request.match_info["phone"]).devices)
        return web.json_response(
            {"id": message.stanza_id, "sentTo": sent_to, "pendingOn": pending_on}, status=201
        )

    async def pending_messages(request: web.Request) -> web.Response:
        messages = core.pending_messages(request.match_info["phone"], _device_id(request))
        return web.json_response({"messages": [_queued_view(m) for m in messages]})

    async def phone_messages(request: web.Request) -> web.Response:
        return web.json_response({"messages": core.phone_messages(request.match_info["phone"])})

    async def mark_read(request: web.Request) -> web.Response:
        data = await _body(request)
        ids = data.get("ids")
        if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
            raise InvalidRequestError("ids must be a list of message ids")
        count, actions = core.phone_mark_read(request.match_info["phone"], ids)
        await server.run_actions(actions)
        return web.json_response({"read": count})

    async def create_group(request: web.Request) -> web.Response:
        data = await _body(request)
        members = data.get("participants", [])
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise InvalidRequestError("participants must be a list of phone numbers")
        group, actions = core.create_group(_required_str(data, "creator"), _required_str(data, "subject"), members)
        await server.run_actions(actions)
        return web.json_response(core.group_view(group.group_id), status=201)

    async def get_group(request: web.Request) -> web.Response:
        return web.json_response(core.group_view(request.match_info["group"]))

    async def change_group(request: web.Request) -> web.Response:
        data = await _body(request)
        statuses: dict[str, int] = {}
        for action in ("add", "remove", "promote", "demote"):
            members = data.get(action, [])
            if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
                raise InvalidRequestError(f"{action} must be a list of phone numbers")
            if members:
                changed, actions = core.change_group(request.match_info["group"], action, members)
                await server.run_actions(actions)
                statuses.update({"+" + user: status for user, status in changed.items()})
        return web.json_response({"group": core.group_view(request.match_info["group"]), "statuses": statuses})

    async def add_fault(request: web.Request) -> web.Response:
        fault = Fault.from_json(await _body(request))
        active, actions = core.inject(fault)
        await server.run_actions(actions)
        affected = len({a.conn for a in actions})
        log.info("fault %s injected, %d sockets hit now", fault.kind.value, affected)
        return web.json_response({"fault": active.to_json(), "affectedSockets": affected}, status=201)

    async def list_faults(request: web.Request) -> web.Response:
        return web.json_response({"faults": [f.to_json() for f in core.faults.active(core.now())]})

    async def clear_faults(request: web.Request) -> web.Response:
        return web.json_response({"cleared": core.faults.clear()})

    async def clear_fault(request: web.Request) -> web.Response:
        text = request.match_info["fault_id"]
        if not text.isdigit():
            raise InvalidRequestError("fault id must be a number")
        core.faults.remove(int(text))
        return web.json_response({"cleared": 1})

    app.middlewares.append(_errors_to_json)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/v1/root-key", root_key)
    app.router.add_post("/v1/phones", create_phone)
    app.router.add_get("/v1/phones", list_phones)
    app.router.add_get("/v1/phones/{phone}", get_phone)
    app.router.add_post("/v1/phones/{phone}/link-code", link_code)
    app.router.add_post("/v1/phones/{phone}/scan", scan)
    app.router.add_get("/v1/phones/{phone}/devices", devices)
    app.router.add_delete("/v1/phones/{phone}/devices/{device}", unlink)
    app.router.add_post("/v1/phones/{phone}/devices/{device}/consume-prekeys", consume_pre_keys)
    app.router.add_post("/v1/phones/{phone}/messages", send_message)
    app.router.add_get("/v1/phones/{phone}/devices/{device}/messages", pending_messages)
    app.router.add_get("/v1/phones/{phone}/messages", phone_messages)
    app.router.add_post("/v1/phones/{phone}/messages/read", mark_read)
    app.router.add_post("/v1/groups", create_group)
    app.router.add_get("/v1/groups/{group}", get_group)
    app.router.add_post("/v1/groups/{group}/participants", change_group)
    app.router.add_post("/v1/faults", add_fault)
    app.router.add_get("/v1/faults", list_faults)
    app.router.add_delete("/v1/faults", clear_faults)
    app.router.add_delete("/v1/faults/{fault_id}", clear_fault)
