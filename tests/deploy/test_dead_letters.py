"""Dead letters for the Pub/Sub-triggered functions: after each deploy, the subscription Eventarc made for
the trigger gets a dead-letter policy, and the Pub/Sub service agent the rights to move messages.

Checked twice: on the DRY_RUN plan of cloudbuild.yaml, and by running deploy/deploy_function.sh for real
against a stand-in `gcloud` on PATH that answers the describe calls and records every call.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from tests.deploy.bundle_support import load_functions_main_tables
from tests.deploy.plan import BUILTINS, REPO_ROOT, Command, Plan, build_plan

OVERRIDES = {"_TOPIC_DEAD_LETTER": "dead-x", "_REGION": "europe-west1", "_TOPIC_SNAPSHOTS": "snap-x",
             "_TOPIC_CONNECTION_EVENTS": "conn-x"}
AGENT = f"serviceAccount:service-{BUILTINS['PROJECT_NUMBER']}@gcp-sa-pubsub.iam.gserviceaccount.com"
MAX_DELIVERY_ATTEMPTS = "20"


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(OVERRIDES)


def _trigger_steps(plan: Plan) -> dict[str, list[Command]]:
    """Pub/Sub-triggered function name -> the commands of the step that deploys it."""
    steps: dict[str, list[Command]] = {}
    for step in plan.steps.values():
        for command in step.commands:
            if command.startswith("gcloud", "functions", "deploy") and "--trigger-topic" in command.flags:
                steps[command.words[3]] = step.commands
    return steps


def test_every_trigger_subscription_gets_the_dead_letter_policy_after_its_deploy(plan: Plan) -> None:
    steps = _trigger_steps(plan)
    assert set(steps) == set(load_functions_main_tables().pubsub) == {
        "persistSnapshot", "recordConnectionEvent", "recordMessageEvent"}
    created_topics = {c.words[4] for c in plan.commands("gcloud", "pubsub", "topics", "create")}
    subscriptions = set()
    for name, commands in steps.items():
        kinds = [c.words[:4] for c in commands]
        deploy_at = kinds.index(("gcloud", "functions", "deploy", name))
        (update,) = [c for c in commands if c.startswith("gcloud", "pubsub", "subscriptions", "update")]
        assert commands.index(update) > deploy_at, f"{name}: the trigger's subscription exists only after the deploy"
        subscription = update.words[4]
        assert name.lower() in subscription and subscription.startswith("eventarc-")
        assert update.flags["--dead-letter-topic"] == OVERRIDES["_TOPIC_DEAD_LETTER"] in created_topics
        assert update.flags["--max-delivery-attempts"] == MAX_DELIVERY_ATTEMPTS
        assert update.flags["--project"] == BUILTINS["PROJECT_ID"]
        (binding,) = [c for c in commands
                      if c.startswith("gcloud", "pubsub", "subscriptions", "add-iam-policy-binding")]
        assert (binding.words[4], binding.flags["--member"], binding.flags["--role"]) == (
            subscription, AGENT, "roles/pubsub.subscriber")
        subscriptions.add(subscription)
    assert len(subscriptions) == len(steps)


def test_the_service_agent_may_publish_dead_letters_before_any_trigger_deploys(plan: Plan) -> None:
    grants = [(c.words[4], c.flags["--member"], c.flags["--role"]) for c in plan.steps["pubsub"].commands
              if c.startswith("gcloud", "pubsub", "topics", "add-iam-policy-binding")]
    assert (OVERRIDES["_TOPIC_DEAD_LETTER"], AGENT, "roles/pubsub.publisher") in grants
    for name in _trigger_steps(plan):
        assert "pubsub" in plan.steps[f"fn-{name}"].wait_for


def _deploy_env(plan: Plan, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **plan.env, **extra}


def test_pubsub_deploys_refuse_to_run_without_the_dead_letter_settings(plan: Plan) -> None:
    env = _deploy_env(plan, DRY_RUN="1")
    del env["TOPIC_DEAD_LETTER"]
    completed = subprocess.run(["bash", "deploy/deploy_function.sh", "persistSnapshot", "pubsub", "snap-x"],
                               cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert completed.returncode == 2 and "TOPIC_DEAD_LETTER" in completed.stderr
    callable_deploy = subprocess.run(["bash", "deploy/deploy_function.sh", "addAccount", "callable"],
                                     cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert callable_deploy.returncode == 0  # only trigger deploys need them


FAKE_GCLOUD = """#!/usr/bin/env bash
# Stand-in for gcloud: records each call, answers the two describe calls the deploy script makes.
printf '%s\\n' "$*" >> "$GCLOUD_LOG"
case "$1 $2 $3" in
  "functions describe "*) printf '%s\\n' "${FAKE_TRIGGER-}" ;;
  "eventarc triggers describe") printf '%s\\n' "${FAKE_SUBSCRIPTION-}" ;;
esac
"""


def _run_for_real(tmp_path: Path, plan: Plan, trigger: str, subscription: str) -> tuple[int, str, list[list[str]]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gcloud = bin_dir / "gcloud"
    gcloud.write_text(FAKE_GCLOUD)
    gcloud.chmod(gcloud.stat().st_mode | stat.S_IXUSR)
    source = tmp_path / "functions"
    source.mkdir()
    (source / "main.py").write_text("")
    log = tmp_path / "gcloud.log"
    log.touch()
    env = _deploy_env(plan, GCLOUD_LOG=str(log), FAKE_TRIGGER=trigger, FAKE_SUBSCRIPTION=subscription,
                      FUNCTIONS_SOURCE=str(source))
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    completed = subprocess.run(["bash", "deploy/deploy_function.sh", "persistSnapshot", "pubsub", "snap-x"],
                               cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=30, check=False)
    calls = [shlex.split(line) for line in log.read_text().splitlines()]
    return completed.returncode, completed.stderr, calls


def test_the_subscription_is_found_through_the_trigger(tmp_path: Path, plan: Plan) -> None:
    region, project = OVERRIDES["_REGION"], BUILTINS["PROJECT_ID"]
    code, stderr, calls = _run_for_real(
        tmp_path, plan, f"projects/{project}/locations/{region}/triggers/persistsnapshot-417339",
        f"projects/{project}/subscriptions/eventarc-{region}-persistsnapshot-417339-sub-221")
    assert code == 0, stderr
    described = [c for c in calls if c[:3] == ["eventarc", "triggers", "describe"]]
    assert described == [["eventarc", "triggers", "describe", "persistsnapshot-417339", f"--location={region}",
                          f"--project={project}", "--format=value(transport.pubsub.subscription)"]]
    (update,) = [c for c in calls if c[:3] == ["pubsub", "subscriptions", "update"]]
    assert update[3] == f"eventarc-{region}-persistsnapshot-417339-sub-221"
    assert f"--dead-letter-topic={OVERRIDES['_TOPIC_DEAD_LETTER']}" in update
    assert f"--max-delivery-attempts={MAX_DELIVERY_ATTEMPTS}" in update
    (binding,) = [c for c in calls if c[:3] == ["pubsub", "subscriptions", "add-iam-policy-binding"]]
    assert binding[3] == update[3] and f"--member={AGENT}" in binding
    deploy_at = next(i for i, c in enumerate(calls) if c[:2] == ["functions", "deploy"])
    assert deploy_at < calls.index(update)


@pytest.mark.parametrize(("trigger", "subscription", "missing"), [
    ("", "projects/p/subscriptions/s", "has no Eventarc trigger"),
    ("projects/p/locations/r/triggers/t-1", "", "has no Pub/Sub subscription"),
])
def test_a_trigger_without_a_subscription_fails_the_step(tmp_path: Path, plan: Plan, trigger: str,
                                                         subscription: str, missing: str) -> None:
    code, stderr, calls = _run_for_real(tmp_path, plan, trigger, subscription)
    assert code != 0 and missing in stderr
    assert not [c for c in calls if c[:3] == ["pubsub", "subscriptions", "update"]]


@pytest.mark.integration
def test_probe_commands_exist_in_the_installed_gcloud(plan: Plan) -> None:
    from tests.deploy.test_deploy_config import _gcloud_cli_tree

    completed = subprocess.run(["bash", "deploy/deploy_function.sh", "persistSnapshot", "pubsub", "snap-x"],
                               cwd=REPO_ROOT, env=_deploy_env(plan, DRY_RUN="1"), capture_output=True, text=True,
                               timeout=30, check=True)
    probes = [Command(tuple(shlex.split(line.removeprefix("# probe: "))))
              for line in completed.stdout.splitlines() if line.startswith("# probe: gcloud")]
    assert len(probes) == 2
    tree = _gcloud_cli_tree()
    for probe in probes:
        node = tree
        for word in probe.words[1:]:
            if word not in node["commands"]:
                break
            node = node["commands"][word]
        assert not node["commands"], probe.words
        unknown = set(probe.flags) - set(node["flags"]) - set(tree["flags"])
        assert not unknown, f"{probe.words[:4]}: {sorted(unknown)}"
