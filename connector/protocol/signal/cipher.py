"""Encrypting and decrypting pairwise messages over a :class:`SessionRecord` (``session_cipher.js``).

* :func:`encrypt` uses the open session's sending chain; while the session still has a
  ``pendingPreKey`` (no reply decrypted yet) the message is wrapped as a ``pkmsg``.
* :func:`decrypt_message` tries every session, most recently used first. Each try runs on a fork
  of the session, so a failed try leaves nothing behind (libsignal-node keeps the half-stepped
  ratchet of a failed try in the record it stores). The session that decrypts is marked used.
* :func:`decrypt_pre_key_message` makes the responder's session (unless the base key is known:
  the initiator has simply not seen our reply yet), closing the open one, and decrypts with it.

Every function changes the record only when it succeeds, and raises only
:class:`~connector.protocol.signal.errors.SignalError` subclasses.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from connector.protocol.crypto import RandomSource
from connector.protocol.signal import kdf
from connector.protocol.signal.errors import (
    BadMacError,
    DuplicateMessageError,
    InvalidMessageError,
    NoMatchingSessionError,
    NoSessionError,
    PreKeyError,
    SignalError,
)
from connector.protocol.signal.keys import SignalKeyPair
from connector.protocol.signal.ratchet import fill_message_keys, respond, step_ratchet
from connector.protocol.signal.session import BASE_KEY_OURS, SENDING, SessionEntry, SessionRecord, b64
from connector.protocol.signal.wire import MAC_LEN, PreKeySignalMessage, SignalMessage

MessageKind = Literal["pkmsg", "msg"]


@dataclass(frozen=True, slots=True)
class LocalIdentity:
    """This device's Signal identity: identity key pair (33-byte public) and registration id."""

    identity: SignalKeyPair
    registration_id: int


def encrypt(record: SessionRecord, me: LocalIdentity, plaintext: bytes) -> tuple[MessageKind, bytes]:
    """Encrypt with the open session; changes the record (the sending chain moves on)."""
    entry = record.open_session()
    if entry is None:
        raise NoSessionError("no open session")
    key = b64(entry.ephemeral.public)
    chain = entry.chains.get(key)
    if chain is None or chain.chain_type != SENDING or chain.key is None:
        raise NoSessionError("the open session has no sending chain")
    seed, next_key = kdf.chain_step(chain.key)
    chain = entry.chains[key] = chain.copy()
    chain.key = next_key
    chain.counter += 1
    cipher_key, mac_key, iv = kdf.message_keys(seed)
    # previousCounter is -1 when our previous sending chain never sent: libsignal-node would write
    # 2^32-1, which no receiver can fill; 0 costs the receiver one spare seed.
    message = SignalMessage.build(entry.ephemeral.public, chain.counter, max(entry.previous_counter, 0),
                                  kdf.aes_cbc_encrypt(cipher_key, iv, plaintext))
    mac = kdf.hmac_sha256(mac_key, me.identity.public + entry.remote_identity_key + message.body)
    body = message.with_mac(mac)
    pending = entry.pending_pre_key
    if pending is None:
        return "msg", body
    wrapped = PreKeySignalMessage(
        registration_id=me.registration_id, pre_key_id=pending.pre_key_id or None,
        signed_pre_key_id=pending.signed_key_id, base_key=pending.base_key,
        identity_key=me.identity.public, message=body)
    return "pkmsg", wrapped.encode()


def _decrypt_with(entry: SessionEntry, message: SignalMessage, me: LocalIdentity,
                  random_bytes: RandomSource) -> tuple[SessionEntry, bytes]:
    """Decrypt with one session; returns the changed fork of it, or raises with ``entry`` untouched."""
    fork = entry.fork()
    key = b64(message.ephemeral_key)
    if key not in fork.chains:
        step_ratchet(fork, message.ephemeral_key, message.previous_counter, random_bytes)
    chain = fork.chains[key]
    if chain.chain_type == SENDING:
        raise InvalidMessageError("the message names our own sending chain")
    chain = fork.chains[key] = chain.copy()
    fill_message_keys(chain, message.counter)
    seed = chain.message_keys.pop(message.counter, None)
    if seed is None:
        raise DuplicateMessageError("key used already or never filled")
    cipher_key, mac_key, iv = kdf.message_keys(seed)
    mac = kdf.hmac_sha256(mac_key, entry.remote_identity_key + me.identity.public + message.body)
    if not hmac.compare_digest(mac[:MAC_LEN], message.mac):
        raise BadMacError("bad MAC")
    plaintext = kdf.aes_cbc_decrypt(cipher_key, iv, message.ciphertext)
    fork.pending_pre_key = None
    return fork, plaintext


def decrypt_message(record: SessionRecord, me: LocalIdentity, data: bytes, now_ms: int,
                    random_bytes: RandomSource) -> bytes:
    """Decrypt a ``msg``; on success the record holds the stepped session, marked used now."""
    message = SignalMessage.parse(data)
    entries = record.by_use()
    if not entries:
        raise NoSessionError("no session record")
    errors: list[SignalError] = []
    for entry in entries:
        try:
            fork, plaintext = _decrypt_with(entry, message, me, random_bytes)
        except SignalError as exc:
            errors.append(exc)
            continue
        fork.used = now_ms
        record.replace(entry, fork)
        return plaintext
    for error in errors:  # the key was ours and used: the connector acks it as a duplicate (487)
        if isinstance(error, DuplicateMessageError):
            raise error
    if len(errors) == 1:
        raise errors[0]
    raise NoMatchingSessionError(
        f"no matching sessions found for message ({len(errors)} tried: "
        + ", ".join(sorted({type(error).__name__ for error in errors})) + ")")


@dataclass(frozen=True, slots=True)
class PreKeys:
    """What a responder needs from this device's keys to answer a ``pkmsg``."""

    signed_pre_key: SignalKeyPair
    load_pre_key: Callable[[int], SignalKeyPair | None]


def decrypt_pre_key_message(record: SessionRecord, message: PreKeySignalMessage, me: LocalIdentity, *,
                            pre_keys: PreKeys, now_ms: int, random_bytes: RandomSource) -> tuple[bytes, int | None]:
    """Decrypt a parsed ``pkmsg``; returns the plaintext and the one-time pre-key id it consumed.

    On success ``record`` holds the new (or existing) session; on failure it is unchanged.
    """
    inner = SignalMessage.parse(message.message)
    existing = record.get(message.base_key)
    if existing is not None and existing.base_key_type == BASE_KEY_OURS:
        raise InvalidMessageError("the pkmsg carries our own base key")
    consumed: int | None = None
    if existing is None:
        one_time = None
        if message.pre_key_id is not None and message.pre_key_id != 0:
            one_time = pre_keys.load_pre_key(message.pre_key_id)
            if one_time is None:
                raise PreKeyError(f"no pre-key {message.pre_key_id} (used already or never ours)")
            consumed = message.pre_key_id
        entry = respond(me.identity, pre_keys.signed_pre_key, one_time, their_identity=message.identity_key,
                        their_base_key=message.base_key, registration_id=message.registration_id, now_ms=now_ms)
    else:
        entry = existing
    fork, plaintext = _decrypt_with(entry, inner, me, random_bytes)
    if existing is None:
        record.close_open_session(now_ms)
        record.put(fork)
    else:
        record.replace(existing, fork)
    return plaintext, consumed
