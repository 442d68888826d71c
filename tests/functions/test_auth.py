"""Who may call connectorSync and the scheduled endpoints; who a callable's caller is."""

from __future__ import annotations

import pytest

from functions.auth import BearerVerifier, caller_from_token
from functions.errors import UnauthenticatedError


def test_shared_token_is_accepted_and_anything_else_refused() -> None:
    verifier = BearerVerifier(shared_token="s3cret", audience=None, allowed_emails=frozenset())
    assert verifier.verify("Bearer s3cret") == "token"
    for header in (None, "", "s3cret", "Basic s3cret", "Bearer ", "Bearer s3cre", "Bearer s3cretX",
                   "Bearer " + "x" * 9000):
        with pytest.raises(UnauthenticatedError):
            verifier.verify(header)


def test_nothing_configured_refuses_everyone() -> None:
    verifier = BearerVerifier(shared_token=None, audience=None, allowed_emails=frozenset())
    with pytest.raises(UnauthenticatedError):
        verifier.verify("Bearer anything")


def test_a_google_token_that_does_not_verify_is_refused() -> None:
    verifier = BearerVerifier(shared_token=None, audience="https://example.invalid/connectorSync",
                              allowed_emails=frozenset({"connector@p.iam.gserviceaccount.com"}))
    with pytest.raises(UnauthenticatedError):
        verifier.verify("Bearer eyJhbGciOiJub25lIn0.eyJlbWFpbCI6ImEifQ.")


def test_caller_from_token() -> None:
    assert caller_from_token({"uid": "alice"}).admin is False
    assert caller_from_token({"uid": "root", "admin": True}).admin is True
    assert caller_from_token({"uid": "eve", "admin": "true"}).admin is False, "only a boolean claim counts"
    for token in (None, {}, {"uid": ""}, {"uid": 7}):
        with pytest.raises(UnauthenticatedError):
            caller_from_token(token)
