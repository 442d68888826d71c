"""Functions settings from the environment."""

from __future__ import annotations

import pytest

from functions.config import FunctionsConfig
from functions.errors import FunctionsConfigError


def test_defaults_and_overrides() -> None:
    default = FunctionsConfig.from_env({})
    assert (default.project, default.lease_ttl_s, default.versions_kept) == ("demo-keeper", 30.0, 3)
    assert default.connector_token is None and not default.enforce_app_check
    assert default.topic_snapshots == "session-snapshots" and default.topic_alerts == "alerts"
    custom = FunctionsConfig.from_env({
        "GOOGLE_CLOUD_PROJECT": "p1", "KEEPER_LEASE_TTL_S": "45", "KEEPER_TOPIC_ALERTS": "ops-alerts",
        "KEEPER_CONNECTOR_SERVICE_ACCOUNTS": "a@x.iam.gserviceaccount.com, b@x.iam.gserviceaccount.com",
        "KEEPER_ENFORCE_APP_CHECK": "true", "KEEPER_CONNECTOR_TOKEN": "s3cret"})
    assert (custom.project, custom.lease_ttl_s, custom.topic_alerts) == ("p1", 45.0, "ops-alerts")
    assert custom.connector_service_accounts == {"a@x.iam.gserviceaccount.com", "b@x.iam.gserviceaccount.com"}
    assert custom.enforce_app_check and custom.connector_token == "s3cret"


@pytest.mark.parametrize("value", ["soon", "0", "-3"])
def test_unusable_numbers_are_refused(value: str) -> None:
    with pytest.raises(FunctionsConfigError, match="KEEPER_LEASE_TTL_S"):
        FunctionsConfig.from_env({"KEEPER_LEASE_TTL_S": value})
