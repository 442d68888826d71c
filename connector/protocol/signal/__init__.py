"""The Signal protocol as WhatsApp uses it: pairwise sessions, sender keys, Baileys' stored formats.

The API is :class:`connector.protocol.signal.repository.SignalRepository`; modules, one job each:
``types`` (addresses, bundles), ``errors`` (the error tree), ``keys`` (33-byte keys, XEdDSA),
``kdf`` (HKDF, chains, AES-CBC), ``wire`` (the four protobuf messages), ``session`` (libsignal-node's
session record and its JSON), ``ratchet`` (X3DH, ratchet steps), ``cipher`` (pairwise encrypt and
decrypt over a record), ``group`` (sender keys), ``store`` (the records in the AuthStore).
"""
