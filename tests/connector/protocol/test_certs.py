from __future__ import annotations

import pytest

from connector.protocol import certs
from connector.protocol.certs import build_cert_chain, verify_cert_chain
from connector.protocol.crypto import KeyPair
from connector.protocol.errors import CertificateError
from connector.protocol.proto import wa_pb2
from testkit.protocol.seeded import SeededRandom

NOW = 1_780_000_000


@pytest.fixture
def keys() -> dict[str, KeyPair]:
    rand = SeededRandom("certs")
    return {name: KeyPair.generate(rand) for name in ("root", "intermediate", "server", "other")}


def chain_for(keys: dict[str, KeyPair], **overrides: object) -> bytes:
    args: dict[str, object] = {
        "root": keys["root"],
        "intermediate": keys["intermediate"],
        "server_static_public": keys["server"].public,
        "rand": SeededRandom("sign"),
        "not_before": NOW - 3600,
        "not_after": NOW + 3600,
    }
    args.update(overrides)
    return build_cert_chain(**args)  # type: ignore[arg-type]


def test_real_root_key_matches_published_value() -> None:
    assert certs.WHATSAPP_ROOT_PUBLIC_KEY[:4] == bytes((0x14, 0x23, 0x75, 0x57))
    assert len(certs.WHATSAPP_ROOT_PUBLIC_KEY) == 32


def test_built_chain_verifies(keys: dict[str, KeyPair]) -> None:
    verified = verify_cert_chain(chain_for(keys), keys["server"].public, root_public_key=keys["root"].public, now=NOW)
    assert verified.leaf.key == keys["server"].public
    assert verified.leaf.issuer_serial == verified.intermediate.serial


def test_chain_from_another_root_is_rejected(keys: dict[str, KeyPair]) -> None:
    with pytest.raises(CertificateError, match="root"):
        verify_cert_chain(chain_for(keys), keys["server"].public, root_public_key=keys["other"].public, now=NOW)
    with pytest.raises(CertificateError):  # the default root is WhatsApp's own
        verify_cert_chain(chain_for(keys), keys["server"].public, now=NOW)


def test_leaf_must_name_the_handshake_static_key(keys: dict[str, KeyPair]) -> None:
    with pytest.raises(CertificateError, match="static"):
        verify_cert_chain(chain_for(keys), keys["other"].public, root_public_key=keys["root"].public, now=NOW)


@pytest.mark.parametrize("now", [NOW - 7200, NOW + 7200])
def test_validity_window_is_enforced(keys: dict[str, KeyPair], now: int) -> None:
    with pytest.raises(CertificateError):
        verify_cert_chain(chain_for(keys), keys["server"].public, root_public_key=keys["root"].public, now=now)


def test_serials_must_link(keys: dict[str, KeyPair]) -> None:
    with pytest.raises(CertificateError, match="intermediate issuer serial"):
        verify_cert_chain(chain_for(keys, root_serial=5), keys["server"].public,
                          root_public_key=keys["root"].public, now=NOW)
    resigned = build_cert_chain(root=keys["root"], intermediate=keys["intermediate"],
                                server_static_public=keys["server"].public, rand=SeededRandom("x"),
                                not_before=0, not_after=0, leaf_serial=3, intermediate_serial=7)
    assert verify_cert_chain(resigned, keys["server"].public, root_public_key=keys["root"].public, now=NOW)


def test_tampered_leaf_signature_and_garbage_are_rejected(keys: dict[str, KeyPair]) -> None:
    chain = wa_pb2.CertChain.FromString(chain_for(keys))
    chain.leaf.signature = bytes(64)
    with pytest.raises(CertificateError, match="leaf"):
        verify_cert_chain(chain.SerializeToString(), keys["server"].public,
                          root_public_key=keys["root"].public, now=NOW)
    with pytest.raises(CertificateError):
        verify_cert_chain(b"\xff\x01", keys["server"].public, root_public_key=keys["root"].public, now=NOW)
    with pytest.raises(CertificateError, match="missing"):
        verify_cert_chain(b"", keys["server"].public, root_public_key=keys["root"].public, now=NOW)
