"""Sender keys for groups, as Baileys carries them (``src/Signal/Group/*``: libsignal-node has none).

A sender's key for a group is a :class:`SenderKeyRecord` of up to 5 :class:`SenderKeyState`\\ s,
oldest first; an SKDM adds one (dropping the oldest), our own sending record has exactly one.
A state is a key id, a chain (iteration, chain key), the 33-byte signing public key (and its
private half for our own) and up to 2000 skipped message seeds, oldest dropped first.

An ``skmsg`` names its key id and iteration and is signed by the signing key over the version
byte and protobuf. Baileys' own encrypt uses iteration ``0`` first and then ``chain + 1``,
leaving every other iteration unused (SIGNAL.md section 2): decryption keeps the seeds it skips,
so those gaps cost nothing but space. Our encrypt uses consecutive iterations.

Stored formats (``sender-key-<group>::<user>::<device>``, SIGNAL.md section 3):

* Baileys >= 6.7.19 / 7.x: the value is bytes, the UTF-8 text of ``JSON.stringify(states)``
  with Node's own Buffer JSON (``{"type":"Buffer","data":[...ints]}``). This is what we write,
  with the binaries as ``{"type":"Buffer","data":"<base64>"}`` (see ``_buffer_text``).
* Baileys <= 6.7.18 / 6.17.16: the list of states itself. Its states are protobufjs objects, so
  their bytes are base64 text and their skipped keys ``{}`` (lost); states read from an older
  file may hold BufferJSON binaries (``bytes`` once read from the store). All are read.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Final

from connector.protocol.crypto import RandomSource
from connector.protocol.signal import kdf
from connector.protocol.signal.errors import (
    BadMacError,
    DuplicateMessageError,
    InvalidRecordError,
    NoSenderKeyError,
    TooFarAheadError,
)
from connector.protocol.signal.keys import SignalKeyPair, sign, verify
from connector.protocol.signal.wire import SenderKeyDistributionMessage, SenderKeyMessage
from shared.bufferjson import JsonValue, decode_base64, revive
from shared.errors import BaileysFormatError

MAX_STATES: Final = 5
MAX_SKIPPED_KEYS: Final = 2000
MAX_GAP: Final = 2000
MAX_KEY_ID: Final = 2**31 - 1  # Baileys: randomInt(2^31 - 1)


@dataclass(slots=True, repr=False)
class SenderKeyState:
    """One sender-key chain (see the module docstring); ``skipped`` maps iteration to seed, oldest first."""

    key_id: int
    iteration: int
    chain_key: bytes
    signing_public: bytes
    signing_private: bytes = b""
    skipped: dict[int, bytes] = field(default_factory=dict)
    # The JSON text of each skipped key, kept so that writing a record of 2000 of them is a join.
    _texts: dict[int, str] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:  # never print keys
        return (f"SenderKeyState(key_id={self.key_id}, iteration={self.iteration}, "
                f"own={bool(self.signing_private)}, skipped={len(self.skipped)})")

    def copy(self) -> SenderKeyState:
        return SenderKeyState(self.key_id, self.iteration, self.chain_key, self.signing_public,
                              self.signing_private, dict(self.skipped), self._texts)

    def json_text(self) -> str:
        """This state as Baileys' ``SenderKeyStateStructure`` JSON (key order as Baileys writes it)."""
        texts = self._texts
        skipped = []
        for index, seed in self.skipped.items():
            text = texts.get(index)
            if text is None:
                text = texts[index] = f'{{"iteration":{index},"seed":{_buffer_text(seed)}}}'
            skipped.append(text)
        if len(texts) > 2 * len(self.skipped) + 64:  # drop the texts of keys used or dropped since
            self._texts = {index: texts[index] for index in self.skipped if index in texts}
        return (f'{{"senderKeyId":{self.key_id},"senderChainKey":{{"iteration":{self.iteration},'
                f'"seed":{_buffer_text(self.chain_key)}}},"senderSigningKey":{{"public":'
                f'{_buffer_text(self.signing_public)},"private":{_buffer_text(self.signing_private)}}},'
                f'"senderMessageKeys":[{",".join(skipped)}]}}')

    @classmethod
    def from_json(cls, value: JsonValue) -> SenderKeyState:
        obj = _obj(value, "state")
        chain = _obj(obj.get("senderChainKey"), "senderChainKey")
        signing = _obj(obj.get("senderSigningKey"), "senderSigningKey")
        public = _bin(signing.get("public"), "senderSigningKey.public")
        if len(public) == 32:
            public = b"\x05" + public
        if len(public) != 33 or public[0] != 0x05:
            raise InvalidRecordError("sender key: signing key is not a 33-byte 0x05 key")
        private_value = signing.get("private")
        private = b"" if private_value is None else _bin(private_value, "senderSigningKey.private")
        if len(private) not in (0, 32):
            raise InvalidRecordError("sender key: signing private key is not 32 bytes")
        skipped: dict[int, bytes] = {}
        raw_skipped = obj.get("senderMessageKeys", [])
        if not isinstance(raw_skipped, list):
            raw_skipped = []  # Baileys' SenderKeyState treats a non-array as empty
        for item in raw_skipped:
            entry = _obj(item, "senderMessageKeys[]")
            if not entry:
                continue  # Baileys 6.x writes its skipped keys as {} (protobufjs toJSON): lost there already
            skipped[_uint(entry.get("iteration"), "senderMessageKeys[].iteration")] = _seed(entry.get("seed"))
        return cls(key_id=_uint(obj.get("senderKeyId"), "senderKeyId"),
                   iteration=_uint(chain.get("iteration"), "senderChainKey.iteration"),
                   chain_key=_seed(chain.get("seed")), signing_public=public, signing_private=private,
                   skipped=skipped)

    def message_seed(self, iteration: int) -> bytes:
        """The seed of ``iteration``, keeping skipped ones and moving the chain past it (``getSenderKey``)."""
        if iteration < self.iteration:
            seed = self.skipped.pop(iteration, None)
            if seed is None:
                raise DuplicateMessageError(
                    f"received message with old counter: {self.iteration}, {iteration}")
            return seed
        if iteration - self.iteration > MAX_GAP:
            raise TooFarAheadError(f"sender-key message {iteration} is over {MAX_GAP} past the chain")
        chain_key = self.chain_key
        for index in range(self.iteration, iteration):
            self.skipped[index], chain_key = kdf.chain_step(chain_key)
        while len(self.skipped) > MAX_SKIPPED_KEYS:
            del self.skipped[next(iter(self.skipped))]
        seed, self.chain_key = kdf.chain_step(chain_key)
        self.iteration = iteration + 1
        return seed


@dataclass(slots=True)
class SenderKeyRecord:
    """A sender's states for one group, oldest first."""

    states: list[SenderKeyState] = field(default_factory=list)

    def state(self, key_id: int | None = None) -> SenderKeyState | None:
        """The newest state, or the first with ``key_id`` (Baileys' ``getSenderKeyState``)."""
        if key_id is None:
            return self.states[-1] if self.states else None
        return next((state for state in self.states if state.key_id == key_id), None)

    def add(self, state: SenderKeyState) -> None:
        """Add a state from an SKDM; one with the same key id and signing key is kept as it is
        (a repeated SKDM must not rewind a chain), one with another signing key is replaced."""
        for index, existing in enumerate(self.states):
            if existing.key_id == state.key_id:
                if existing.signing_public == state.signing_public:
                    return
                del self.states[index]
                break
        self.states.append(state)
        del self.states[:-MAX_STATES]

    def to_store(self) -> bytes:
        """The 7.x stored value: the JSON text of the states, Buffer JSON inside."""
        return ("[" + ",".join(state.json_text() for state in self.states) + "]").encode()

    @classmethod
    def from_store(cls, value: JsonValue) -> SenderKeyRecord:
        """Read the 7.x (bytes of JSON text) or the 6.x (list of states) stored value."""
        if isinstance(value, bytes):
            try:
                value = revive(value)
            except BaileysFormatError as exc:
                raise InvalidRecordError(f"sender key: {exc}") from exc
        if not isinstance(value, list):
            raise InvalidRecordError("sender key: neither a list of states nor its JSON text")
        return cls([SenderKeyState.from_json(item) for item in value])


def create_own_state(random_bytes: RandomSource) -> SenderKeyState:
    """A fresh sending state: random key id, chain key and signing key pair, iteration 0."""
    key_id = int.from_bytes(random_bytes(4), "big") % MAX_KEY_ID
    signing = SignalKeyPair.generate(random_bytes)
    return SenderKeyState(key_id=key_id, iteration=0, chain_key=random_bytes(32), signing_public=signing.public,
                          signing_private=signing.private)


def distribution_message(state: SenderKeyState) -> bytes:
    """The SKDM of ``state`` as it stands (what a receiver needs to read our next message)."""
    return SenderKeyDistributionMessage(state.key_id, state.iteration, state.chain_key, state.signing_public).encode()


def state_from_distribution(data: bytes) -> SenderKeyState:
    message = SenderKeyDistributionMessage.parse(data)
    return SenderKeyState(key_id=message.key_id, iteration=message.iteration, chain_key=message.chain_key,
                          signing_public=message.signing_key)


def encrypt(state: SenderKeyState, plaintext: bytes, random_bytes: RandomSource) -> bytes:
    """An ``skmsg`` at the state's next iteration; moves ``state`` on."""
    if len(state.signing_private) != 32:
        raise NoSenderKeyError("this sender key has no signing private key: it is not ours")
    iteration = state.iteration
    seed = state.message_seed(iteration)
    iv, key = kdf.group_message_keys(seed)
    message = SenderKeyMessage.build(state.key_id, iteration, kdf.aes_cbc_encrypt(key, iv, plaintext))
    return message.with_signature(sign(state.signing_private, message.signed, random_bytes))


def decrypt(record: SenderKeyRecord, data: bytes) -> bytes:
    """Decrypt an ``skmsg``; on success the record holds the moved state, on failure it is unchanged."""
    message = SenderKeyMessage.parse(data)
    state = record.state(message.key_id)
    if state is None:
        raise NoSenderKeyError(f"no sender key with id {message.key_id}")
    if not verify(state.signing_public, message.signed, message.signature):
        raise BadMacError("the sender-key message's signature does not verify")
    moved = state.copy()
    iv, key = kdf.group_message_keys(moved.message_seed(message.iteration))
    plaintext = kdf.aes_cbc_decrypt(key, iv, message.ciphertext)
    record.states = [moved if existing is state else existing for existing in record.states]
    return plaintext


# --- JSON helpers --------------------------------------------------------------------------


def _buffer_text(data: bytes) -> str:
    # Node's JSON.stringify would write "data" as a list of ints; Baileys' reviver turns only the
    # base64 form back into a Buffer, and a skipped key's seed must be one (libsignal's
    # deriveSecrets checks): with ints, Baileys 7 fails "Expected Buffer instead of: Object" on
    # every out-of-order skmsg after its record was stored. Both forms read everywhere.
    return '{"type":"Buffer","data":"' + base64.b64encode(data).decode("ascii") + '"}'


def _obj(value: JsonValue, what: str) -> dict[str, JsonValue]:
    if not isinstance(value, dict):
        raise InvalidRecordError(f"sender key: {what} is not an object")
    return value


def _uint(value: JsonValue, what: str) -> int:
    if type(value) is not int or value < 0:
        raise InvalidRecordError(f"sender key: {what} is not a non-negative integer")
    return value


def _bin(value: JsonValue, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):  # 6.x: protobufjs' toJSON wrote bytes fields as base64 text
        try:
            return decode_base64(value)
        except BaileysFormatError as exc:
            raise InvalidRecordError(f"sender key: {what} is not base64") from exc
    if isinstance(value, list) and all(type(v) is int and 0 <= v <= 255 for v in value):
        return bytes(value)  # type: ignore[arg-type]
    raise InvalidRecordError(f"sender key: {what} is not binary")


def _seed(value: JsonValue) -> bytes:
    seed = _bin(value, "seed")
    if len(seed) != 32:
        raise InvalidRecordError(f"sender key: a seed is {len(seed)} bytes, expected 32")
    return seed
