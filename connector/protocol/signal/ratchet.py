"""X3DH and the double ratchet with libsignal-node's semantics (``session_builder.js``, ``session_cipher.js``).

X3DH: the shared secret is ``0xFF*32 | DH1 | DH2 | DH3 [| DH4]`` through HKDF "WhisperText" (zero
salt); its first block is the root key. The initiator's DHs are DH(their signed pre-key, our
identity), DH(their identity, our base key), DH(their signed pre-key, our base key) and
DH(their one-time pre-key, our base key); the responder computes the same values from the other
side. The initiator then makes its sending chain at once; the responder's ratchet starts from its
signed pre-key pair and the initiator's base key, and steps on the first message.

A ratchet step (a message whose ephemeral key has no chain yet) fills and closes the current
receiving chain up to ``previousCounter``, adds a receiving chain for the new key, drops our
sending chain (its counter becomes our next ``previousCounter``: the last index used, as
libsignal-node sends it; a peer sending the count instead only makes us keep one spare seed) and
adds a sending chain for a fresh key pair. Closed chains are kept with their skipped seeds; only
spent ones (no seeds left) beyond the newest five are dropped (see ``_drop_spent_chains``).

Functions here change the :class:`SessionEntry` they are given; callers hand them a fork
(:meth:`SessionEntry.fork`), and chains are replaced by copies before they change.
"""

from __future__ import annotations

from typing import Final

from connector.protocol.crypto import RandomSource
from connector.protocol.signal import kdf
from connector.protocol.signal.errors import ChainClosedError, TooFarAheadError, UntrustedIdentityError
from connector.protocol.signal.keys import SignalKeyPair, dh, public33, verify
from connector.protocol.signal.session import (
    BASE_KEY_OURS,
    BASE_KEY_THEIRS,
    OPEN,
    RECEIVING,
    SENDING,
    Chain,
    PendingPreKey,
    SessionEntry,
    b64,
)
from connector.protocol.signal.types import PreKeyBundle

MAX_GAP: Final = 2000
"""libsignal-node refuses a message more than 2000 keys past its chain ("Over 2000 messages into the future!")."""

MAX_SPENT_CHAINS: Final = 5
"""Closed receiving chains with no seeds left that a session keeps (the newest ones)."""

_X3DH_PREFIX: Final = b"\xff" * 32


def fill_message_keys(chain: Chain, counter: int) -> None:
    """Derive and keep the seeds of ``chain`` up to ``counter`` (``fillMessageKeys``)."""
    if chain.counter >= counter:
        return
    if counter - chain.counter > MAX_GAP:
        raise TooFarAheadError(f"message {counter} is over {MAX_GAP} messages past the chain ({chain.counter})")
    if chain.key is None:
        raise ChainClosedError("the message needs keys of a closed chain")
    key = chain.key
    keys = chain.message_keys
    for index in range(chain.counter + 1, counter + 1):
        keys[index], key = kdf.chain_step(key)
    chain.key = key
    chain.counter = counter


def _ratchet_chain(entry: SessionEntry, remote_key: bytes, chain_type: int) -> None:
    """A new chain from DH(our ephemeral, ``remote_key``) and the root key (``calculateRatchet``)."""
    shared = dh(entry.ephemeral.private, remote_key)
    root_key, chain_key = kdf.derive_secrets(shared, entry.root_key, kdf.INFO_RATCHET, 2)
    owner = entry.ephemeral.public if chain_type == SENDING else remote_key
    entry.chains[b64(owner)] = Chain(chain_type, -1, chain_key, {})
    entry.root_key = root_key


def step_ratchet(entry: SessionEntry, remote_key: bytes, previous_counter: int, random_bytes: RandomSource) -> None:
    """libsignal-node's ``maybeStepRatchet`` for a key with no chain yet (see the module docstring)."""
    last = b64(entry.last_remote_ephemeral)
    previous = entry.chains.get(last)
    if previous is not None:
        previous = entry.chains[last] = previous.copy()
        fill_message_keys(previous, previous_counter)
        previous.key = None
    _ratchet_chain(entry, remote_key, RECEIVING)
    ours = b64(entry.ephemeral.public)
    sending = entry.chains.pop(ours, None)
    if sending is not None:
        entry.previous_counter = sending.counter
    entry.ephemeral = SignalKeyPair.generate(random_bytes)
    _ratchet_chain(entry, remote_key, SENDING)
    entry.last_remote_ephemeral = remote_key
    _drop_spent_chains(entry)


def _drop_spent_chains(entry: SessionEntry) -> None:
    """Forget all but the newest few closed receiving chains that hold no seeds.

    libsignal-node keeps every chain, so a session record grows by a chain on every turn of a
    conversation (about 52 KB per 1,000 alternating messages) and so does the work of each message.
    A spent chain can only recognise a replay of a message already read: without it the replay
    fails the MAC on a trial ratchet step, which decryption runs on a fork and throws away, so no
    state is lost; the newest are kept so that a recent redelivery still reads as a duplicate.
    Chains with seeds left (messages still to come) are always kept.
    """
    spent = [key for key, chain in entry.chains.items()
             if chain.key is None and chain.chain_type == RECEIVING and not chain.message_keys]
    for key in spent[:-MAX_SPENT_CHAINS]:
        del entry.chains[key]


def _root_key(secrets: list[bytes]) -> bytes:
    return kdf.derive_secrets(_X3DH_PREFIX + b"".join(secrets), kdf.ZERO_SALT, kdf.INFO_TEXT, 1)[0]


def initiate(our_identity: SignalKeyPair, bundle: PreKeyBundle, now_ms: int,
             random_bytes: RandomSource) -> SessionEntry:
    """A new session as X3DH initiator from ``bundle`` (``initOutgoing``), ``pendingPreKey`` set.

    Unlike libsignal-node, the signed pre-key's signature is checked: a bundle whose signed pre-key
    its identity did not sign raises :class:`UntrustedIdentityError`.
    """
    identity = public33(bundle.identity_key)
    signed = public33(bundle.signed_pre_key)
    if not verify(identity, signed, bundle.signed_pre_key_signature):
        raise UntrustedIdentityError("the bundle's signed pre-key is not signed by its identity key")
    one_time = None if bundle.pre_key is None else public33(bundle.pre_key)
    base = SignalKeyPair.generate(random_bytes)
    secrets = [dh(our_identity.private, signed), dh(base.private, identity), dh(base.private, signed)]
    if one_time is not None:
        secrets.append(dh(base.private, one_time))
    entry = SessionEntry(
        registration_id=bundle.registration_id, ephemeral=SignalKeyPair.generate(random_bytes),
        last_remote_ephemeral=signed, previous_counter=0, root_key=_root_key(secrets),
        base_key=base.public, base_key_type=BASE_KEY_OURS, closed=OPEN, used=now_ms, created=now_ms,
        remote_identity_key=identity,
        pending_pre_key=PendingPreKey(signed_key_id=bundle.signed_pre_key_id, base_key=base.public,
                                      pre_key_id=bundle.pre_key_id if one_time is not None else None),
    )
    _ratchet_chain(entry, signed, SENDING)
    return entry


def respond(our_identity: SignalKeyPair, signed_pre_key: SignalKeyPair, one_time_pre_key: SignalKeyPair | None, *,
            their_identity: bytes, their_base_key: bytes, registration_id: int, now_ms: int) -> SessionEntry:
    """A new session as X3DH responder to a ``pkmsg`` (``initIncoming``)."""
    secrets = [dh(signed_pre_key.private, their_identity), dh(our_identity.private, their_base_key),
               dh(signed_pre_key.private, their_base_key)]
    if one_time_pre_key is not None:
        secrets.append(dh(one_time_pre_key.private, their_base_key))
    return SessionEntry(
        registration_id=registration_id, ephemeral=signed_pre_key, last_remote_ephemeral=their_base_key,
        previous_counter=0, root_key=_root_key(secrets), base_key=their_base_key,
        base_key_type=BASE_KEY_THEIRS, closed=OPEN, used=now_ms, created=now_ms,
        remote_identity_key=their_identity,
    )
