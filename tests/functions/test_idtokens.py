"""Google identity tokens: certificates cached across calls and outages, a few seconds of clock skew.

A local HTTP server plays Google's certificate endpoint (``/oauth2/v1/certs``: PEM certificates by key id,
``Cache-Control: max-age``) and tokens are signed with its key, as the metadata server's are with Google's.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from functions.auth import BearerVerifier
from functions.errors import PermissionDeniedError, UnauthenticatedError
from functions.idtokens import CLOCK_SKEW_S, GoogleCertificates

AUDIENCE = "https://europe-west1-p.cloudfunctions.net/connectorSync"
CONNECTOR = "keeper-connector@p.iam.gserviceaccount.com"


def _key_and_cert(name: str) -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=14)).sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM).decode()


class CertServer:
    """Google's certificate endpoint, with a switch to make it fail."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[rsa.RSAPrivateKey, str]] = {"k1": _key_and_cert("k1")}
        self.fetches = 0
        self.down = False
        self.max_age_s = 3600
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the http.server API
                outer.fetches += 1
                if outer.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                body = json.dumps({kid: pem for kid, (_, pem) in outer.keys.items()}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", f"public, max-age={outer.max_age_s}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/oauth2/v1/certs"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def token(self, kid: str = "k1", *, email: str = CONNECTOR, audience: str = AUDIENCE, iat_offset_s: float = 0,
              lifetime_s: float = 3600, now: float, header_kid: str | None = None) -> str:
        key, _ = self.keys[kid]
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        signer = crypt.RSASigner.from_string(pem, key_id=header_kid or kid)
        iat = int(now + iat_offset_s)
        claims = {"iss": "https://accounts.google.com", "aud": audience, "email": email, "email_verified": True,
                  "sub": "1234", "iat": iat, "exp": int(iat + lifetime_s)}
        return jwt.encode(signer, claims).decode()


@pytest.fixture
def google() -> Iterator[CertServer]:
    server = CertServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).timestamp()

    def __call__(self) -> float:
        return self.now


def _verifier(google: CertServer, clock: Clock) -> BearerVerifier:
    return BearerVerifier(shared_token=None, audience=AUDIENCE, allowed_emails=frozenset({CONNECTOR}),
                          certificates=GoogleCertificates(google.url, clock=clock), clock=clock)


def test_certificates_are_fetched_once_and_outlive_an_outage_of_the_endpoint(google: CertServer) -> None:
    """Issue 16 item 7: they were fetched on every call, so ~27 s of certificate-endpoint outage lapsed every
    lease. Now one fetch serves every call within max-age, and past it an outage keeps the cached ones."""
    clock = Clock()
    verifier = _verifier(google, clock)
    for _ in range(20):
        assert verifier.verify(f"Bearer {google.token(now=clock.now)}") == CONNECTOR
    assert google.fetches == 1
    google.down = True
    clock.now += google.max_age_s + 60  # past max-age: a refresh is due and fails
    assert verifier.verify(f"Bearer {google.token(now=clock.now)}") == CONNECTOR
    assert google.fetches == 2
    assert verifier.verify(f"Bearer {google.token(now=clock.now)}") == CONNECTOR
    assert google.fetches == 2, "a failed refresh is not retried on every call"


def test_a_new_key_id_refreshes_the_certificates_at_once(google: CertServer) -> None:
    clock = Clock()
    verifier = _verifier(google, clock)
    verifier.verify(f"Bearer {google.token(now=clock.now)}")
    google.keys["k2"] = _key_and_cert("k2")  # Google rotated its signing keys
    assert verifier.verify(f"Bearer {google.token('k2', now=clock.now)}") == CONNECTOR
    assert google.fetches == 2
    with pytest.raises(UnauthenticatedError):  # an unknown key id asks again, but not on every call
        verifier.verify(f"Bearer {google.token('k2', now=clock.now, header_kid='k3')}")
    fetches = google.fetches
    with pytest.raises(UnauthenticatedError):
        verifier.verify(f"Bearer {google.token('k2', now=clock.now, header_kid='k3')}")
    assert google.fetches == fetches


def test_a_few_seconds_of_clock_skew_are_allowed_and_no_more(google: CertServer) -> None:
    clock = Clock()
    verifier = _verifier(google, clock)
    assert CLOCK_SKEW_S >= 5
    assert verifier.verify(f"Bearer {google.token(now=clock.now, iat_offset_s=CLOCK_SKEW_S - 2)}") == CONNECTOR
    with pytest.raises(UnauthenticatedError):
        verifier.verify(f"Bearer {google.token(now=clock.now, iat_offset_s=CLOCK_SKEW_S + 30)}")
    expired = google.token(now=clock.now, iat_offset_s=-3600 - CLOCK_SKEW_S + 2, lifetime_s=3600)
    assert verifier.verify(f"Bearer {expired}") == CONNECTOR
    with pytest.raises(UnauthenticatedError):
        verifier.verify(f"Bearer {google.token(now=clock.now, iat_offset_s=-3600 - 60, lifetime_s=3600)}")


def test_wrong_audience_signature_or_identity_is_refused(google: CertServer) -> None:
    clock = Clock()
    verifier = _verifier(google, clock)
    with pytest.raises(UnauthenticatedError):
        verifier.verify(f"Bearer {google.token(now=clock.now, audience='https://elsewhere')}")
    forged = google.token(now=clock.now)
    header, payload, signature = forged.split(".")
    with pytest.raises(UnauthenticatedError):
        verifier.verify(f"Bearer {header}.{payload}.{signature[:-4]}AAAA")
    with pytest.raises(PermissionDeniedError):
        verifier.verify(f"Bearer {google.token(now=clock.now, email='someone@p.iam.gserviceaccount.com')}")


INVOKER = "keeper-invoker@p.iam.gserviceaccount.com"


def test_each_endpoint_has_its_own_allow_list(google: CertServer) -> None:
    """Issue 16 item 10: connectorSync admits the connector's identity only, healthCheck and cleanup the
    scheduler's only (one list for both used to let the scheduler's identity claim accounts)."""
    from functions.config import FunctionsConfig
    from functions.wiring import endpoint_verifiers_for

    clock = Clock()
    config = FunctionsConfig.from_env({"KEEPER_CONNECTOR_AUDIENCE": AUDIENCE,
                                       "KEEPER_CONNECTOR_SERVICE_ACCOUNTS": CONNECTOR,
                                       "KEEPER_SCHEDULER_SERVICE_ACCOUNTS": INVOKER})
    connector, scheduler = endpoint_verifiers_for(config, GoogleCertificates(google.url, clock=clock), clock)
    as_connector = f"Bearer {google.token(now=clock.now, email=CONNECTOR)}"
    as_scheduler = f"Bearer {google.token(now=clock.now, email=INVOKER)}"
    assert connector.verify(as_connector) == CONNECTOR
    assert scheduler.verify(as_scheduler) == INVOKER
    with pytest.raises(PermissionDeniedError):
        connector.verify(as_scheduler)
    with pytest.raises(PermissionDeniedError):
        scheduler.verify(as_connector)
