"""The simulated WhatsApp Web server's behaviour, without I/O: decrypted nodes in, actions out.

The websocket driver (``simulator.server``) owns sockets, frames and Noise; it tells the core when a
connection opens, when its handshake yields a ClientPayload, each node it receives and when it is
gone. The control API (``simulator.control``) tells it what the phones do. The core answers with
actions (``Send`` a node, ``Close`` a socket, ``SendMalformed``) that may target *other*
connections: a login replaces an older socket of the same device, a phone typing a pairing code
notifies the companion's socket, an unlink kicks the device.

Modules, one job each:

=====================  ==========================================================================
``dispatch``           ``SimulatorCore``: routes each event to the module below whose job it is
``actions``            what the core asks the driver to do
``connections``        connection phases, per-connection pairing state, the live-socket indexes
``context``            what the rule modules share (state, connections, faults, clock, randomness)
``stanzas``            stanzas the server builds (iq result/error, stream errors, failure)
``registration``       a registering socket: QR refs, pair-success, pair-device-sign, 515
``link_code``          pairing by code: companion_hello, the phone typing the code, companion_finish
``login``              login of a linked device (success, replaced, offline backlog) and logout
``prekeys``            a device's own keys: count, upload, digest, signed pre-key rotation
``bundles``            other devices' pre-key bundles, consumed as contacts fetch them
``delivery``           contacts' messages, pending per device until acknowledged
``fault_injection``    faults acting on connections
``phones``             the phone owner's operations (and the phone's own Signal keys), device views
``addressing``         PN and LID forms of an account and its devices
``usync``              device lists (``iq usync``)
``messages``           ``<message>`` fan-out per device and the server ack
``receipts``           ``<receipt>`` routed to the sender's devices
``offline``            the per-device queue: held until confirmed, redelivered after login
``stanza_faults``      drop, delay, duplicate, reorder, corrupt a stanza in transit
``groups``             ``iq w:g2`` and the control API's groups
``privacy``            ``iq privacy`` settings
=====================  ==========================================================================

Server rules implemented (as companions observe them; Baileys socket.ts, whatsmeow):

=========================  ====================================================================
client does                server answers
=========================  ====================================================================
registers (no username)    ``iq set md <pair-device>`` with 6 ``<ref>``; a phone scanning one of
                           them (``ref,noise,identity,adv``) makes the server send
                           ``<pair-success>``; a valid ``<pair-device-sign>`` links the device,
                           then ``<stream:error code=515/>`` and close
companion_hello            ``<link_code_pairing_ref>``; when the phone types the code the
                           companion gets the ``link_code_companion_reg`` notification;
                           companion_finish -> result, then ``<pair-success>`` as above
logs in (username+device)  ``<success t lid creation .../>`` when the device is linked and the
                           Noise key is the one it registered, else ``<failure reason=401/>``;
                           an older socket of the device gets
                           ``<stream:error><conflict type=replaced/></stream:error>`` (440)
iq encrypt count/set/      pre-key count / store uploaded keys / key digest / signed pre-key
digest/rotate/key          rotation / a contact's bundle (consumes one pre-key; a count under
                           ``PRE_KEY_LOW_WATERMARK`` is announced with ``notification encrypt``)
iq passive, iq w:p ping    empty result (pings go unanswered under the ``stop_pings`` fault)
iq w props                 ``<props protocol=2 hash/>`` without flags
phone unlinks a device     ``<stream:error code=401><conflict type=device_removed/>``; later
                           logins of that device fail with 401
a contact sends a message  ``<message><enc/></message>`` (opaque ciphertext) to every linked device;
                           kept until the device confirms it and sent again after each login,
                           before ``<ib><offline count=N/>``
iq usync                   every device of each user (0 and companions with key-index), its LID
message                    fanned out to the devices named in ``<participants>`` (groups: every
                           member device gets the skmsg); ``<ack class=message t [phash]>`` or
                           an error ack (400, 403, 404)
receipt                    confirms the device's queue; routed to the sender's devices (retry: to
                           the sending device); ``<ack class=receipt>``
iq w:g2, iq privacy        groups (create, metadata, participants, subject, leave); settings
=========================  ====================================================================

Any other iq gets ``<error code=501 text=feature-not-implemented/>``; other stanzas are ignored.
"""

from simulator.core.actions import Action, Close, Send, SendLater, SendMalformed
from simulator.core.dispatch import SimulatorCore

__all__ = ["Action", "Close", "Send", "SendLater", "SendMalformed", "SimulatorCore"]
