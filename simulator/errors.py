"""Errors of the WhatsApp Web simulator.

The whole tree::

    SimulatorError                  base of everything the simulator raises on purpose
    ├── NotFoundError               a phone, device, pairing ref or fault does not exist (HTTP 404)
    ├── ConflictError               the thing exists already, or the request races another (HTTP 409)
    ├── InvalidRequestError         a control request is malformed: bad phone, code, QR, fault (HTTP 400)
    ├── PairingError                the phone refused a pairing step: expired ref, key mismatch,
    │                               bad signature, wrong code (HTTP 422 on the control API;
    │                               an iq error on the socket)
    └── ClientProtocolError         a connected client sent bytes or nodes the real server would
                                    reject; the connection is closed

Control handlers translate these to HTTP in one place (``simulator.control``); the websocket driver
translates ``ClientProtocolError`` into closing that socket. Anything else is a bug.
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Base class of the simulator's deliberate errors."""


class NotFoundError(SimulatorError):
    """Raised when a phone, device, pairing ref or fault named by a request does not exist."""


class ConflictError(SimulatorError):
    """Raised when a request would create something that exists already."""


class InvalidRequestError(SimulatorError):
    """Raised when a control request is malformed (phone number, pairing code, QR string, fault)."""


class PairingError(SimulatorError):
    """Raised when the simulated phone refuses a pairing step."""


class ClientProtocolError(SimulatorError):
    """Raised when a client sends something the real server would reject; its socket is closed."""
