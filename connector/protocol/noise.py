"""Noise_XX_25519_AESGCM_SHA256 as WhatsApp Web uses it, both roles.

Pattern XX (Noise spec section 7.5)::

    -> e
    <- e, ee, s, es
    -> s, se

WhatsApp's deviations from the spec, all taken from whatsmeow ``socket/noisehandshake.go`` and Baileys
``src/Utils/noise-handler.ts``:

* the protocol name ``Noise_XX_25519_AESGCM_SHA256\\0\\0\\0\\0`` is exactly 32 bytes and used as ``h``
  directly; the prologue is the intro header ``WA 6 3``;
* the AES-GCM nonce is 8 zero bytes followed by a 4-byte big-endian counter;
* each message travels inside the ``HandshakeMessage`` protobuf (clientHello / serverHello /
  clientFinish); the server's payload is its certificate chain, the client's is its ``ClientPayload``;
* ``split()`` gives the initiator the first 32 bytes of HKDF(ck, "") for writing, the last 32 for
  reading, and the transport uses no associated data.
"""

from __future__ import annotations

import enum
from typing import Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError

from connector.protocol import crypto
from connector.protocol.crypto import KeyPair, RandomSource
from connector.protocol.errors import CryptoError, NoiseError
from connector.protocol.proto import wa_pb2

NOISE_PROTOCOL_NAME: Final = b"Noise_XX_25519_AESGCM_SHA256\x00\x00\x00\x00"
MAX_NONCE: Final = 0xFFFFFFFF

Role = Literal["initiator", "responder"]


def _nonce(counter: int) -> bytes:
    return b"\x00" * 8 + counter.to_bytes(4, "big")


class _Step(enum.Enum):
    CLIENT_HELLO = "client_hello"
    SERVER_HELLO = "server_hello"
    CLIENT_FINISH = "client_finish"
    DONE = "done"


class NoiseHandshake:
    """One side of the XX handshake. Call the four message methods of your role in order, then ``split``.

    Initiator: ``write_client_hello`` -> ``read_server_hello`` -> ``write_client_finish``.
    Responder: ``read_client_hello`` -> ``write_server_hello`` -> ``read_client_finish``.
    Calling a method out of order raises ``NoiseError``. ``remote_static`` is the peer's static key once
    received.
    """

    def __init__(
        self,
        role: Role,
        prologue: bytes,
        static_keypair: KeyPair,
        rand: RandomSource,
        *,
        ephemeral_keypair: KeyPair | None = None,
    ) -> None:
        if role not in ("initiator", "responder"):
            raise ValueError(f"unknown role {role!r}")
        self.role: Role = role
        self._static = static_keypair
        self._ephemeral = ephemeral_keypair or KeyPair.generate(rand)
        # Key objects built once: constructing one from bytes costs as much as a DH.
        self._static_key = X25519PrivateKey.from_private_bytes(static_keypair.private)
        self._ephemeral_key = X25519PrivateKey.from_private_bytes(self._ephemeral.private)
        self._hash = NOISE_PROTOCOL_NAME
        self._chaining_key = NOISE_PROTOCOL_NAME
        self._key: bytes | None = None
        self._counter = 0
        self._step = _Step.CLIENT_HELLO
        self.remote_ephemeral: bytes | None = None
        self.remote_static: bytes | None = None
        self._mix_hash(prologue)

    # ---------------------------------------------------------------- symmetric state (spec section 5.2)

    def _mix_hash(self, data: bytes) -> None:
        self._hash = crypto.sha256(self._hash + data)

    def _mix_key(self, input_key_material: bytes) -> None:
        output = crypto.hkdf_sha256(input_key_material, 64, salt=self._chaining_key)
        self._chaining_key, self._key = output[:32], output[32:]
        self._counter = 0

    def _encrypt_and_hash(self, plaintext: bytes) -> bytes:
        if self._key is None:
            raise NoiseError("no key yet")
        ciphertext = crypto.aes_gcm_encrypt(self._key, _nonce(self._counter), plaintext, self._hash)
        self._counter += 1
        self._mix_hash(ciphertext)
        return ciphertext

    def _decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        if self._key is None:
            raise NoiseError("no key yet")
        try:
            plaintext = crypto.aes_gcm_decrypt(self._key, _nonce(self._counter), ciphertext, self._hash)
        except CryptoError as exc:
            raise NoiseError("handshake message failed to authenticate") from exc
        self._counter += 1
        self._mix_hash(ciphertext)
        return plaintext

    def _dh(self, private: X25519PrivateKey, public: bytes) -> bytes:
        try:
            return private.exchange(X25519PublicKey.from_public_bytes(public))
        except ValueError as exc:  # wrong size, or a low-order point (all-zero shared secret)
            raise NoiseError(f"bad peer key: {exc}") from exc

    def _expect(self, role: Role, step: _Step) -> None:
        if self.role != role or self._step is not step:
            raise NoiseError(f"{self.role} cannot do {step.value} now (at {self._step.value})")

    # ---------------------------------------------------------------- initiator

    def write_client_hello(self) -> bytes:
        """``-> e``: the serialized HandshakeMessage carrying our ephemeral key."""
        self._expect("initiator", _Step.CLIENT_HELLO)
        self._mix_hash(self._ephemeral.public)
        message = wa_pb2.HandshakeMessage(
            clientHello=wa_pb2.HandshakeMessage.ClientHello(ephemeral=self._ephemeral.public)
        )
        self._step = _Step.SERVER_HELLO
        return message.SerializeToString()

    def read_server_hello(self, data: bytes) -> bytes:
        """``<- e, ee, s, es``: returns the decrypted server payload (the certificate chain)."""
        self._expect("initiator", _Step.SERVER_HELLO)
        hello = _parse(data).serverHello
        if len(hello.ephemeral) != 32 or not hello.static or not hello.payload:
            raise NoiseError("server hello is missing parts")
        self.remote_ephemeral = hello.ephemeral
        self._mix_hash(hello.ephemeral)
        self._mix_key(self._dh(self._ephemeral_key, hello.ephemeral))
        remote_static = self._decrypt_and_hash(hello.static)
        if len(remote_static) != 32:
            raise NoiseError(f"server static key has {len(remote_static)} bytes")
        self.remote_static = remote_static
        self._mix_key(self._dh(self._ephemeral_key, remote_static))
        payload = self._decrypt_and_hash(hello.payload)
        self._step = _Step.CLIENT_FINISH
        return payload

    def write_client_finish(self, payload: bytes) -> bytes:
        """``-> s, se``: our encrypted static key and ``payload`` (a serialized ClientPayload)."""
        self._expect("initiator", _Step.CLIENT_FINISH)
        assert self.remote_ephemeral is not None
        encrypted_static = self._encrypt_and_hash(self._static.public)
        self._mix_key(self._dh(self._static_key, self.remote_ephemeral))
        encrypted_payload = self._encrypt_and_hash(payload)
        message = wa_pb2.HandshakeMessage(
            clientFinish=wa_pb2.HandshakeMessage.ClientFinish(static=encrypted_static, payload=encrypted_payload)
        )
        self._step = _Step.DONE
        return message.SerializeToString()

    # ---------------------------------------------------------------- responder

    def read_client_hello(self, data: bytes) -> None:
        """``-> e`` as seen by the server."""
        self._expect("responder", _Step.CLIENT_HELLO)
        hello = _parse(data).clientHello
        if len(hello.ephemeral) != 32:
            raise NoiseError("client hello has no 32-byte ephemeral key")
        self.remote_ephemeral = hello.ephemeral
        self._mix_hash(hello.ephemeral)
        self._step = _Step.SERVER_HELLO

    def write_server_hello(self, payload: bytes) -> bytes:
        """``<- e, ee, s, es`` with ``payload`` (the serialized certificate chain)."""
        self._expect("responder", _Step.SERVER_HELLO)
        assert self.remote_ephemeral is not None
        self._mix_hash(self._ephemeral.public)
        self._mix_key(self._dh(self._ephemeral_key, self.remote_ephemeral))
        encrypted_static = self._encrypt_and_hash(self._static.public)
        self._mix_key(self._dh(self._static_key, self.remote_ephemeral))
        encrypted_payload = self._encrypt_and_hash(payload)
        message = wa_pb2.HandshakeMessage(
            serverHello=wa_pb2.HandshakeMessage.ServerHello(
                ephemeral=self._ephemeral.public, static=encrypted_static, payload=encrypted_payload
            )
        )
        self._step = _Step.CLIENT_FINISH
        return message.SerializeToString()

    def read_client_finish(self, data: bytes) -> bytes:
        """``-> s, se`` as seen by the server: returns the client's payload; sets ``remote_static``."""
        self._expect("responder", _Step.CLIENT_FINISH)
        finish = _parse(data).clientFinish
        if not finish.static or not finish.payload:
            raise NoiseError("client finish is missing parts")
        remote_static = self._decrypt_and_hash(finish.static)
        if len(remote_static) != 32:
            raise NoiseError(f"client static key has {len(remote_static)} bytes")
        self.remote_static = remote_static
        self._mix_key(self._dh(self._ephemeral_key, remote_static))
        payload = self._decrypt_and_hash(finish.payload)
        self._step = _Step.DONE
        return payload

    # ---------------------------------------------------------------- split

    def split(self) -> NoiseTransport:
        """Derive the transport keys once the three messages are done."""
        if self._step is not _Step.DONE:
            raise NoiseError(f"handshake not finished (at {self._step.value})")
        keys = crypto.hkdf_sha256(b"", 64, salt=self._chaining_key)
        first, second = keys[:32], keys[32:]
        if self.role == "initiator":
            return NoiseTransport(write_key=first, read_key=second)
        return NoiseTransport(write_key=second, read_key=first)


class NoiseTransport:
    """Encrypts outgoing and decrypts incoming frame payloads after the handshake.

    Each direction has its own key and 32-bit counter; a frame that fails to authenticate raises
    ``NoiseError`` (the stream is then unusable: the counters are out of step).
    """

    __slots__ = ("_read", "_read_counter", "_write", "_write_counter")

    def __init__(self, *, write_key: bytes, read_key: bytes) -> None:
        self._write = AESGCM(write_key)
        self._read = AESGCM(read_key)
        self._write_counter = 0
        self._read_counter = 0

    def encrypt(self, plaintext: bytes) -> bytes:
        if self._write_counter > MAX_NONCE:
            raise NoiseError("write counter exhausted")
        ciphertext = self._write.encrypt(_nonce(self._write_counter), plaintext, None)
        self._write_counter += 1
        return ciphertext

    def decrypt(self, ciphertext: bytes) -> bytes:
        if self._read_counter > MAX_NONCE:
            raise NoiseError("read counter exhausted")
        try:
            plaintext = self._read.decrypt(_nonce(self._read_counter), ciphertext, None)
        except InvalidTag as exc:
            raise NoiseError("transport frame failed to authenticate") from exc
        self._read_counter += 1
        return plaintext


def _parse(data: bytes) -> wa_pb2.HandshakeMessage:
    message = wa_pb2.HandshakeMessage()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise NoiseError("handshake message is not a HandshakeMessage protobuf") from exc
    return message
