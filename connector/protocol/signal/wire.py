"""The four Signal messages WhatsApp sends, encoded and parsed by hand.

Field numbers (libsignal-node ``protos/WhisperTextProtocol.proto``, WAProto ``SenderKey*``)::

    SignalMessage       0x33 | {ephemeralKey=1, counter=2, previousCounter=3, ciphertext=4} | mac[8]
    PreKeySignalMessage 0x33 | {preKeyId=1, baseKey=2, identityKey=3, message=4,
                                registrationId=5, signedPreKeyId=6}
    SenderKeyDistributionMessage  0x33 | {id=1, iteration=2, chainKey=3, signingKey=4}
    SenderKeyMessage    0x33 | {id=1, iteration=2, ciphertext=3} | signature[64]

Fields are written in field-number order, as protobufjs does; unknown fields are skipped when
parsing. Every parser raises :class:`InvalidMessageError` (or its :class:`InvalidKeyError`) and
nothing else, whatever the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from connector.protocol.signal.errors import InvalidKeyError, InvalidMessageError
from connector.protocol.signal.keys import RAW_KEY_LEN, SIGNATURE_LEN, check_public

VERSION: Final = 3
VERSION_BYTE: Final = (VERSION << 4) | VERSION
MAC_LEN: Final = 8
_MAX_UINT32: Final = 0xFFFFFFFF
_VARINT: Final = 0
_I64: Final = 1
_LEN: Final = 2
_I32: Final = 5

Fields = dict[int, int | bytes]


# --- protobuf primitives -------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _uint_field(number: int, value: int) -> bytes:
    # uint32, as protobufjs writes it (value >>> 0): a negative or oversized value cannot crash a send
    return _varint(number << 3 | _VARINT) + _varint(value & _MAX_UINT32)


def _bytes_field(number: int, value: bytes) -> bytes:
    return _varint(number << 3 | _LEN) + _varint(len(value)) + value


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise InvalidMessageError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise InvalidMessageError("varint longer than 10 bytes")


def parse_fields(data: bytes, what: str) -> Fields:
    """The last value of each varint or length-delimited field (protobuf's rule for scalars)."""
    fields: Fields = {}
    pos = 0
    end = len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise InvalidMessageError(f"{what}: field number 0")
        if wire_type == _VARINT:
            fields[number], pos = _read_varint(data, pos)
        elif wire_type == _LEN:
            length, pos = _read_varint(data, pos)
            if pos + length > end:
                raise InvalidMessageError(f"{what}: field {number} runs past the end")
            fields[number] = data[pos:pos + length]
            pos += length
        elif wire_type == _I64:
            pos += 8
        elif wire_type == _I32:
            pos += 4
        else:
            raise InvalidMessageError(f"{what}: unsupported wire type {wire_type}")
        if pos > end:
            raise InvalidMessageError(f"{what}: truncated field {number}")
    return fields


def _uint(fields: Fields, number: int, what: str, default: int | None = None) -> int:
    value = fields.get(number, default)
    if value is None:
        raise InvalidMessageError(f"{what}: field {number} is missing")
    if not isinstance(value, int):
        raise InvalidMessageError(f"{what}: field {number} is not a varint")
    if value > _MAX_UINT32:
        raise InvalidMessageError(f"{what}: field {number} is over 32 bits")
    return value


def _opt_uint(fields: Fields, number: int, what: str) -> int | None:
    return None if number not in fields else _uint(fields, number, what)


def _bytes(fields: Fields, number: int, what: str) -> bytes:
    value = fields.get(number)
    if value is None:
        raise InvalidMessageError(f"{what}: field {number} is missing")
    if not isinstance(value, bytes):
        raise InvalidMessageError(f"{what}: field {number} is not bytes")
    return value


def _key(fields: Fields, number: int, what: str) -> bytes:
    try:
        return check_public(_bytes(fields, number, what))
    except InvalidKeyError as exc:
        raise InvalidKeyError(f"{what}: field {number}: {exc}") from exc


def _check_version(data: bytes, what: str) -> None:
    # libsignal-node: the high nibble is the sender's version, the low one the lowest it accepts.
    if not data:
        raise InvalidMessageError(f"{what}: empty")
    if data[0] >> 4 < VERSION or data[0] & 0xF > VERSION:
        raise InvalidMessageError(f"{what}: incompatible version byte 0x{data[0]:02x}")


# --- pairwise ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignalMessage:
    """A ``msg``: ``body`` is the version byte and protobuf (what the MAC covers), ``mac`` 8 bytes."""

    ephemeral_key: bytes
    counter: int
    previous_counter: int
    ciphertext: bytes
    body: bytes
    mac: bytes

    @classmethod
    def build(cls, ephemeral_key: bytes, counter: int, previous_counter: int, ciphertext: bytes) -> SignalMessage:
        """Message without its MAC yet; see :meth:`with_mac`."""
        body = (bytes([VERSION_BYTE]) + _bytes_field(1, ephemeral_key) + _uint_field(2, counter)
                + _uint_field(3, previous_counter) + _bytes_field(4, ciphertext))
        return cls(ephemeral_key, counter, previous_counter, ciphertext, body, b"")

    def with_mac(self, mac: bytes) -> bytes:
        return self.body + mac[:MAC_LEN]

    @classmethod
    def parse(cls, data: bytes) -> SignalMessage:
        what = "SignalMessage"
        _check_version(data, what)
        if len(data) < 1 + MAC_LEN:
            raise InvalidMessageError(f"{what}: {len(data)} bytes is too short")
        body, mac = data[:-MAC_LEN], data[-MAC_LEN:]
        fields = parse_fields(body[1:], what)
        return cls(
            ephemeral_key=_key(fields, 1, what),
            counter=_uint(fields, 2, what, 0),
            previous_counter=_uint(fields, 3, what, 0),
            ciphertext=_bytes(fields, 4, what),
            body=body,
            mac=mac,
        )


@dataclass(frozen=True, slots=True)
class PreKeySignalMessage:
    """A ``pkmsg``: a :class:`SignalMessage` plus what the responder's X3DH needs."""

    registration_id: int
    pre_key_id: int | None
    signed_pre_key_id: int
    base_key: bytes
    identity_key: bytes
    message: bytes

    def encode(self) -> bytes:
        out = bytearray([VERSION_BYTE])
        if self.pre_key_id is not None:
            out += _uint_field(1, self.pre_key_id)
        out += _bytes_field(2, self.base_key)
        out += _bytes_field(3, self.identity_key)
        out += _bytes_field(4, self.message)
        out += _uint_field(5, self.registration_id)
        out += _uint_field(6, self.signed_pre_key_id)
        return bytes(out)

    @classmethod
    def parse(cls, data: bytes) -> PreKeySignalMessage:
        what = "PreKeySignalMessage"
        _check_version(data, what)
        fields = parse_fields(data[1:], what)
        return cls(
            registration_id=_uint(fields, 5, what, 0),
            pre_key_id=_opt_uint(fields, 1, what),
            signed_pre_key_id=_uint(fields, 6, what, 0),
            base_key=_key(fields, 2, what),
            identity_key=_key(fields, 3, what),
            message=_bytes(fields, 4, what),
        )


# --- sender keys ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SenderKeyDistributionMessage:
    """An SKDM: a sender's chain (key id, iteration, chain key) and 33-byte signing key."""

    key_id: int
    iteration: int
    chain_key: bytes
    signing_key: bytes

    def encode(self) -> bytes:
        return (bytes([VERSION_BYTE]) + _uint_field(1, self.key_id) + _uint_field(2, self.iteration)
                + _bytes_field(3, self.chain_key) + _bytes_field(4, self.signing_key))

    @classmethod
    def parse(cls, data: bytes) -> SenderKeyDistributionMessage:
        what = "SenderKeyDistributionMessage"
        _check_version(data, what)
        fields = parse_fields(data[1:], what)
        chain_key = _bytes(fields, 3, what)
        if len(chain_key) != RAW_KEY_LEN:
            raise InvalidMessageError(f"{what}: chain key is {len(chain_key)} bytes, expected 32")
        signing = _bytes(fields, 4, what)
        if len(signing) == RAW_KEY_LEN:  # Baileys' getSigningKeyPublic accepts a raw key too
            signing = bytes([0x05]) + signing
        try:
            check_public(signing)
        except InvalidKeyError as exc:
            raise InvalidKeyError(f"{what}: signing key: {exc}") from exc
        return cls(key_id=_uint(fields, 1, what, 0), iteration=_uint(fields, 2, what, 0),
                   chain_key=chain_key, signing_key=signing)


@dataclass(frozen=True, slots=True)
class SenderKeyMessage:
    """An ``skmsg``: ``signed`` is the version byte and protobuf, which ``signature`` covers."""

    key_id: int
    iteration: int
    ciphertext: bytes
    signed: bytes
    signature: bytes

    @classmethod
    def build(cls, key_id: int, iteration: int, ciphertext: bytes) -> SenderKeyMessage:
        signed = (bytes([VERSION_BYTE]) + _uint_field(1, key_id) + _uint_field(2, iteration)
                  + _bytes_field(3, ciphertext))
        return cls(key_id, iteration, ciphertext, signed, b"")

    def with_signature(self, signature: bytes) -> bytes:
        return self.signed + signature

    @classmethod
    def parse(cls, data: bytes) -> SenderKeyMessage:
        what = "SenderKeyMessage"
        _check_version(data, what)
        if len(data) < 1 + SIGNATURE_LEN:
            raise InvalidMessageError(f"{what}: {len(data)} bytes is too short")
        signed, signature = data[:-SIGNATURE_LEN], data[-SIGNATURE_LEN:]
        fields = parse_fields(signed[1:], what)
        return cls(key_id=_uint(fields, 1, what, 0), iteration=_uint(fields, 2, what, 0),
                   ciphertext=_bytes(fields, 3, what), signed=signed, signature=signature)

