from __future__ import annotations

import pytest

from keeper.config import StackConfig, StackConfigError


def test_defaults_match_the_documented_ports() -> None:
    config = StackConfig.from_env({})
    assert config.project == "demo-keeper"
    assert config.region == "us-central1"
    assert dict(config.ports) == {
        "firestore": 8080, "pubsub": 8085, "auth": 9099, "hub": 4400, "logging": 4500, "functions": 5001,
        "simulator": 7300, "connector": 8081, "web": 5000,
    }
    # firebase.json's emulators section names the same ports (the web app is its hosting)
    import json
    from pathlib import Path

    emulators = json.loads((Path(__file__).resolve().parents[2] / "firebase.json").read_text())["emulators"]
    for part, key in {"firestore": "firestore", "pubsub": "pubsub", "auth": "auth", "hub": "hub",
                      "logging": "logging", "functions": "functions", "web": "hosting"}.items():
        assert emulators[key]["port"] == config.ports[part], key
    assert config.functions_base == "http://127.0.0.1:5001/demo-keeper/us-central1"


def test_each_port_is_overridable() -> None:
    config = StackConfig.from_env({"KEEPER_PUBSUB_PORT": "9999", "KEEPER_PROJECT": "p1"})
    assert config.ports["pubsub"] == 9999
    assert config.emulator_env()["PUBSUB_EMULATOR_HOST"] == "127.0.0.1:9999"
    assert config.functions_base.endswith("/p1/us-central1")


@pytest.mark.parametrize("raw", ["abc", "0", "70000"])
def test_bad_port_is_a_clear_error(raw: str) -> None:
    with pytest.raises(StackConfigError, match="KEEPER_FIRESTORE_PORT"):
        StackConfig.from_env({"KEEPER_FIRESTORE_PORT": raw})
