"""cloudbuild.yaml as data: substitutions resolved, and the gcloud commands its deploy scripts would run.

Every deploy step runs a script in deploy/ that prints its commands under DRY_RUN=1; `build_plan`
runs them that way, with the step's environment, and parses each printed command.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

REPO_ROOT = Path(__file__).resolve().parents[2]
CLOUDBUILD = REPO_ROOT / "cloudbuild.yaml"
SCRIPT_TIMEOUT_S = 30.0

#: Cloud Build's built-in substitutions the file may use, with the values the tests give them.
BUILTINS = {"PROJECT_ID": "demo-deploy-test", "PROJECT_NUMBER": "123456789012", "BUILD_ID": "build-1234"}
_VARIABLE_RE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def load_cloudbuild() -> dict[str, Any]:
    data = yaml.safe_load(CLOUDBUILD.read_text())
    assert isinstance(data, dict)
    return data


def variables_used(text: str) -> set[str]:
    return {braced or bare for braced, bare in _VARIABLE_RE.findall(text)}


def substitute(value: str, values: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"cloudbuild.yaml uses ${name}, which is neither a built-in nor a substitution")
        return values[name]

    return _VARIABLE_RE.sub(one, value)


@dataclass(frozen=True)
class Command:
    """One printed gcloud command: its words up to the first flag, and its flags."""

    argv: tuple[str, ...]

    @property
    def words(self) -> tuple[str, ...]:
        out = []
        for token in self.argv:
            if token.startswith("--"):
                break
            out.append(token)
        return tuple(out)

    @property
    def flags(self) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for token in self.argv:
            if token.startswith("--"):
                name, eq, value = token.partition("=")
                found[name] = value if eq else None
        return found

    def startswith(self, *words: str) -> bool:
        return self.words[: len(words)] == words

    def env_vars(self) -> dict[str, str]:
        """The --set-env-vars list, honouring gcloud's ``^DELIM^`` alternative delimiter."""
        raw = self.flags.get("--set-env-vars") or ""
        delimiter = ","
        if raw.startswith("^"):
            delimiter, _, raw = raw[1:].partition("^")
        return dict(item.split("=", 1) for item in raw.split(delimiter) if item)


@dataclass
class Step:
    id: str
    name: str
    args: list[str]
    wait_for: list[str]
    commands: list[Command] = field(default_factory=list)


@dataclass
class Plan:
    values: dict[str, str]
    env: dict[str, str]
    steps: dict[str, Step]

    def commands(self, *words: str) -> list[Command]:
        return [c for step in self.steps.values() for c in step.commands if c.startswith(*words)]


def dry_run(script: str, args: Sequence[str], env: Mapping[str, str]) -> list[Command]:
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env, "DRY_RUN": "1"}
    completed = subprocess.run(
        ["bash", script, *args], cwd=REPO_ROOT, env=full_env, capture_output=True, text=True,
        timeout=SCRIPT_TIMEOUT_S, check=False,
    )
    assert completed.returncode == 0, f"{script} {args} failed:\n{completed.stderr}"
    lines = [line for line in completed.stdout.splitlines() if line and not line.startswith("#")]
    return [Command(tuple(shlex.split(line))) for line in lines]


def build_plan(overrides: Mapping[str, str] | None = None) -> Plan:
    """Resolve cloudbuild.yaml (substitution defaults, then ``overrides``) and dry-run its deploy scripts."""
    data = load_cloudbuild()
    values = {**BUILTINS, **{k: str(v) for k, v in data.get("substitutions", {}).items()}, **(overrides or {})}
    env = dict(substitute(item, values).split("=", 1) for item in data["options"]["env"])
    steps: dict[str, Step] = {}
    for raw in data["steps"]:
        step = Step(
            id=raw["id"],
            name=raw["name"],
            args=[substitute(str(a), values) for a in raw.get("args", [])],
            wait_for=list(raw.get("waitFor", [])),
        )
        if raw.get("entrypoint") == "bash" and step.args and step.args[0].startswith("deploy/") \
                and step.args[0] != "deploy/ci_test.sh":
            step.commands = dry_run(step.args[0], step.args[1:], env)
        steps[step.id] = step
    return Plan(values=values, env=env, steps=steps)
