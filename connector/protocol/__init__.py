"""The WhatsApp Web protocol core: pure state machines and codecs, no I/O, no asyncio.

Layers, bottom up (each module's docstring cites the public sources of its facts)::

    frames      3-byte length framing, intro / edge-routing header
    noise       Noise_XX_25519_AESGCM_SHA256 (initiator and responder), transport cipher
    certs       server certificate chain: build (simulator) and verify (client)
    tokens      binary XML token dictionaries (v2, v3) and type tags
    binary      Node / Jid and the binary XML codec (zlib-flagged stanzas included)
    proto       keeper's WAProto subset (wa.proto -> wa_pb2)
    crypto      X25519, XEdDSA, HKDF, AES-GCM/CTR, HMAC, PBKDF2
    pairing     pairing cryptography, the companion side (code, QR, ADV)
    payload     ClientPayload for login and registration
    prekeys     pre-key generation through the AuthStore, upload stanza
    stanzas     stanza builders and readers
    linking     the companion's pairing steps as stanzas
    close       close reasons, codes and policies
    events      what the client reports
    client      the client state machine tying it together

Errors: ``errors`` (one tree). The asyncio driver is ``connector.engine``.
"""
