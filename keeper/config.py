"""Configuration of the local stack, read from environment variables.

Every part of `keeper up` (emulators, functions, simulator, connector) reads the same settings, so a part
restarted alone with `keeper <part>` finds the others. Each value has a default that matches
`firebase.json`'s `emulators` section.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from shared.env_numbers import env_float, env_int

DEFAULT_PROJECT = "demo-keeper"
DEFAULT_REGION = "us-central1"
LOOPBACK = "127.0.0.1"

#: (environment variable, default) for every port of the local stack.
PORT_DEFAULTS: dict[str, tuple[str, int]] = {
    "firestore": ("KEEPER_FIRESTORE_PORT", 8080),
    "pubsub": ("KEEPER_PUBSUB_PORT", 8085),
    "auth": ("KEEPER_AUTH_PORT", 9099),
    # firebase-tools opens these beside the Auth emulator; two stacks need different ones
    "hub": ("KEEPER_EMULATOR_HUB_PORT", 4400),
    "logging": ("KEEPER_EMULATOR_LOGGING_PORT", 4500),
    "functions": ("KEEPER_FUNCTIONS_PORT", 5001),
    "simulator": ("KEEPER_SIMULATOR_PORT", 7300),
    "connector": ("KEEPER_CONNECTOR_PORT", 8081),
    "web": ("KEEPER_WEB_PORT", 5000),
}

#: The shared connector bearer token of the local stack (the functions accept it, the connector sends it).
LOCAL_CONNECTOR_TOKEN = "local-dev-connector-token"
#: The bearer token the local schedules send to healthCheck and cleanup.
LOCAL_SCHEDULER_TOKEN = "local-dev-scheduler-token"


class StackConfigError(ValueError):
    """A ``KEEPER_*`` environment variable holds a value the local stack cannot use.

    The local stack's own; the connector's and the functions' settings fail with
    :class:`connector.errors.ConnectorConfigError` and :class:`functions.errors.FunctionsConfigError`.
    """


@dataclass(frozen=True)
class StackConfig:
    """Where each local service listens and where local state lives."""

    project: str
    region: str
    home: Path
    ports: Mapping[str, int]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StackConfig:
        env = os.environ if env is None else env
        ports = {part: env_int(env, var, default, minimum=1, maximum=65535, error=StackConfigError)
                 for part, (var, default) in PORT_DEFAULTS.items()}
        return cls(
            project=env.get("KEEPER_PROJECT") or env.get("GOOGLE_CLOUD_PROJECT") or DEFAULT_PROJECT,
            region=env.get("KEEPER_REGION") or DEFAULT_REGION,
            home=Path(env.get("KEEPER_HOME") or ".keeper").resolve(),
            ports=ports,
        )

    def address(self, part: str) -> str:
        return f"{LOOPBACK}:{self.ports[part]}"

    @property
    def functions_base(self) -> str:
        """Base URL of the local functions gateway (Firebase emulator URL scheme)."""
        return f"http://{self.address('functions')}/{self.project}/{self.region}"

    def emulator_env(self) -> dict[str, str]:
        """Environment that points Google and Firebase client libraries at the local emulators."""
        return {
            "KEEPER_PROJECT": self.project,
            "GOOGLE_CLOUD_PROJECT": self.project,
            "GCLOUD_PROJECT": self.project,
            "KEEPER_REGION": self.region,
            "KEEPER_HOME": str(self.home),
            "FIRESTORE_EMULATOR_HOST": self.address("firestore"),
            "PUBSUB_EMULATOR_HOST": self.address("pubsub"),
            "FIREBASE_AUTH_EMULATOR_HOST": self.address("auth"),
            "KEEPER_FUNCTIONS_URL": self.functions_base,
            **{var: str(self.ports[part]) for part, (var, _) in PORT_DEFAULTS.items()},
        }

    def local_env(self) -> dict[str, str]:
        """What every part of the local stack needs, started by `keeper up` or alone: the emulators and
        the shared local tokens."""
        return {**self.emulator_env(), "KEEPER_CONNECTOR_TOKEN": LOCAL_CONNECTOR_TOKEN,
                "KEEPER_SCHEDULER_TOKEN": LOCAL_SCHEDULER_TOKEN}


def apply_local_defaults(env: MutableMapping[str, str] | None = None) -> StackConfig:
    """Fill ``env`` (default ``os.environ``) with the local stack's settings where unset, so a part run
    alone (`keeper functions`) finds the emulators exactly as under `keeper up`."""
    target = os.environ if env is None else env
    config = StackConfig.from_env(target)
    for name, value in config.local_env().items():
        if not target.get(name):
            target[name] = value
    return config


def interval_s(env: Mapping[str, str], name: str, default: float) -> float:
    """A non-negative number of seconds from ``env`` (0 turns the thing off)."""
    return env_float(env, name, default, error=StackConfigError)
