"""cloudbuild.yaml and firebase.json against the code: every function deployed the way it is triggered,
every topic created, the connector always on, the emulator ports those of `make up`.

The deploy steps are checked through the commands their scripts print under DRY_RUN=1, with
non-default substitutions so a misnamed environment variable cannot hide behind a default.
"""

from __future__ import annotations

import ast
import json
import subprocess
from functools import cache
from typing import Any

import pytest

from connector.config import ConnectorConfig
from functions.config import FunctionsConfig
from keeper.config import PORT_DEFAULTS
from shared import events
from tests.deploy.bundle_support import FunctionTables, load_deploy_script, load_functions_main_tables
from tests.deploy.plan import (
    BUILTINS,
    CLOUDBUILD,
    REPO_ROOT,
    Command,
    Plan,
    build_plan,
    dry_run,
    load_cloudbuild,
    variables_used,
)

bundle = load_deploy_script("bundle_functions")

# Non-default values for every substitution that names something the code reads.
OVERRIDES = {
    "_TOPIC_SNAPSHOTS": "snap-x",
    "_TOPIC_CONNECTION_EVENTS": "conn-x",
    "_TOPIC_MESSAGES": "msg-x",
    "_TOPIC_OUTBOX": "outbox-x",
    "_TOPIC_ALERTS": "alerts-x",
    "_TOPIC_DEAD_LETTER": "dead-x",
    "_VERSIONS_KEPT": "5",
    "_KEK_SECRET": "kek-x",
    "_INTERNAL_AUDIENCE": "aud-x",
    "_REGION": "europe-west1",
    "_CONNECTOR_CAPACITY": "250",
}
PROJECT = BUILTINS["PROJECT_ID"]
CONNECTOR_SA = f"keeper-connector@{PROJECT}.iam.gserviceaccount.com"
FUNCTIONS_SA = f"keeper-functions@{PROJECT}.iam.gserviceaccount.com"
INVOKER_SA = f"keeper-invoker@{PROJECT}.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(OVERRIDES)


@cache
def main_tables() -> FunctionTables:
    return load_functions_main_tables()


def _function_deploys(plan: Plan) -> dict[str, Command]:
    deploys = {c.words[3]: c for c in plan.commands("gcloud", "functions", "deploy")}
    assert len(deploys) == len(plan.commands("gcloud", "functions", "deploy")), "a function is deployed twice"
    return deploys


def test_substitutions_are_all_defined_and_all_used() -> None:
    data = load_cloudbuild()
    defined = set(data["substitutions"])
    text = CLOUDBUILD.read_text()
    used = variables_used(text.split("\nsubstitutions:", 1)[1])
    assert {u for u in used if u.startswith("_")} == defined
    assert {u for u in used if not u.startswith("_")} <= set(BUILTINS)


def test_every_function_in_code_is_deployed_with_an_existing_entry_point(plan: Plan) -> None:
    tables = main_tables()
    in_code = set(bundle.deployed_functions((REPO_ROOT / "functions" / "main.py").read_text()))
    assert in_code == tables.all, "functions/main.py's trigger tables and its decorated functions differ"

    deploys = _function_deploys(plan)
    assert set(deploys) == in_code
    for name, command in deploys.items():
        flags = command.flags
        assert flags["--entry-point"] == name
        assert flags["--source"] == "build/functions"
        assert "--gen2" in flags and flags["--runtime"] == "python312"
        assert flags["--region"] == OVERRIDES["_REGION"] and flags["--project"] == PROJECT
        assert flags["--service-account"] == FUNCTIONS_SA


def test_functions_source_is_where_the_bundle_goes(plan: Plan) -> None:
    firebase = json.loads((REPO_ROOT / "firebase.json").read_text())
    expected = bundle.DEFAULT_OUT.as_posix()
    assert plan.env["FUNCTIONS_SOURCE"] == expected
    assert firebase["functions"][0]["source"] == expected
    assert "deploy/bundle_functions.py" in (REPO_ROOT / "deploy" / "ci_test.sh").read_text()


def test_triggers_match_the_code(plan: Plan) -> None:
    tables = main_tables()
    deploys = _function_deploys(plan)
    for name in tables.callables:
        flags = deploys[name].flags
        assert "--trigger-http" in flags and "--allow-unauthenticated" in flags, name
    for name in tables.http:
        flags = deploys[name].flags
        assert "--trigger-http" in flags and "--no-allow-unauthenticated" in flags, name
        assert "--allow-unauthenticated" not in flags, name
    for name, config_field in tables.pubsub.items():
        command = deploys[name]
        config = FunctionsConfig.from_env(command.env_vars())
        assert command.flags["--trigger-topic"] == getattr(config, config_field), name
        assert "--retry" in command.flags, f"{name} must be retried on failure"
        assert command.flags["--trigger-service-account"] == INVOKER_SA
        assert "--no-allow-unauthenticated" in command.flags


def test_private_functions_admit_only_their_caller(plan: Plan) -> None:
    bindings = {c.words[3]: c.flags["--member"]
                for c in plan.commands("gcloud", "functions", "add-invoker-policy-binding")}
    assert bindings["connectorSync"] == f"serviceAccount:{CONNECTOR_SA}"
    assert bindings["healthCheck"] == f"serviceAccount:{INVOKER_SA}"
    assert bindings["cleanup"] == f"serviceAccount:{INVOKER_SA}"
    for name in main_tables().pubsub:
        assert bindings[name] == f"serviceAccount:{INVOKER_SA}"
    assert not set(bindings) & set(main_tables().callables)
    audiences = {c.words[4]: c.flags["--add-custom-audiences"]
                 for c in plan.commands("gcloud", "run", "services", "update")}
    assert audiences == {name.lower(): OVERRIDES["_INTERNAL_AUDIENCE"] for name in main_tables().http}


def test_functions_environment_is_what_the_code_reads(plan: Plan) -> None:
    for command in _function_deploys(plan).values():
        env = command.env_vars()
        config = FunctionsConfig.from_env(env)
        assert config.project == PROJECT
        assert (config.topic_snapshots, config.topic_connection_events, config.topic_alerts) == (
            OVERRIDES["_TOPIC_SNAPSHOTS"], OVERRIDES["_TOPIC_CONNECTION_EVENTS"], OVERRIDES["_TOPIC_ALERTS"])
        assert config.versions_kept == int(OVERRIDES["_VERSIONS_KEPT"])
        assert config.connector_audience == OVERRIDES["_INTERNAL_AUDIENCE"]
        assert config.connector_service_accounts == {CONNECTOR_SA}, "connectorSync admits the connector only"
        assert config.scheduler_service_accounts == {INVOKER_SA}, "the scheduled jobs admit the scheduler only"
        assert config.connector_token is None and config.scheduler_token is None, "no shared tokens in production"

        from shared.vault.config import VaultConfig

        vault = VaultConfig.from_env(env)
        assert vault.kek_provider == "secretmanager"
        assert vault.kek_secret == f"projects/{PROJECT}/secrets/{OVERRIDES['_KEK_SECRET']}"
        assert vault.secretmanager_host is None
        assert vault.versions_kept == int(OVERRIDES["_VERSIONS_KEPT"])


def _connector_deploy(plan: Plan) -> Command:
    (command,) = plan.commands("gcloud", "run", "deploy")
    return command


def test_connector_runs_always_on_as_its_own_identity(plan: Plan) -> None:
    command = _connector_deploy(plan)
    flags = command.flags
    assert flags["--min-instances"] == "1"
    assert "--no-cpu-throttling" in flags and "--cpu-throttling" not in flags
    assert flags["--service-account"] == CONNECTOR_SA
    assert "--no-allow-unauthenticated" in flags
    registry = f"{OVERRIDES['_REGION']}-docker.pkg.dev/{PROJECT}/{plan.values['_AR_REPO']}"
    image = f"{registry}/connector:{BUILTINS['BUILD_ID']}"
    assert flags["--image"] == image
    assert plan.steps["connector-push"].args == ["push", image]
    assert plan.steps["connector-image"].args[1] == "--file=connector/Dockerfile"
    assert (REPO_ROOT / "connector" / "Dockerfile").is_file()
    config = ConnectorConfig.from_env(command.env_vars())
    assert config.functions_url == f"https://{OVERRIDES['_REGION']}-{PROJECT}.cloudfunctions.net"
    assert config.project_id == PROJECT
    assert config.capacity == int(OVERRIDES["_CONNECTOR_CAPACITY"])
    assert config.token is None, "the connector must not carry a shared token in production"
    assert config.audience == OVERRIDES["_INTERNAL_AUDIENCE"], "connectorSync needs an identity token"


def test_every_topic_in_use_is_created(plan: Plan) -> None:
    created = {c.words[4] for c in plan.commands("gcloud", "pubsub", "topics", "create")}
    used: set[str] = set()
    for command in _function_deploys(plan).values():
        config = FunctionsConfig.from_env(command.env_vars())
        used |= {config.topic_snapshots, config.topic_connection_events, config.topic_alerts,
                 config.topic_messages, config.topic_outbox}
        if "--trigger-topic" in command.flags:
            used.add(str(command.flags["--trigger-topic"]))
    topics = ConnectorConfig.from_env(_connector_deploy(plan).env_vars()).topics
    used |= {topics.snapshots, topics.connection, topics.messages, topics.outbox}
    assert used == {v for k, v in OVERRIDES.items() if k.startswith("_TOPIC_") and k != "_TOPIC_DEAD_LETTER"}
    assert used <= created
    for subscription in plan.commands("gcloud", "pubsub", "subscriptions", "create"):
        assert subscription.flags["--topic"] in created
        dead_letter = subscription.flags.get("--dead-letter-topic")
        assert dead_letter is None or dead_letter in created


def test_default_topics_are_the_documented_ones() -> None:
    plan = build_plan()
    created = {c.words[4] for c in plan.commands("gcloud", "pubsub", "topics", "create")}
    assert {events.TOPIC_SESSION_SNAPSHOTS, events.TOPIC_CONNECTION_EVENTS, events.TOPIC_MESSAGES,
            events.TOPIC_ALERTS} <= created
    architecture = (REPO_ROOT / "docs" / "ARCHITECTURE.md").read_text()
    for topic in (events.TOPIC_SESSION_SNAPSHOTS, events.TOPIC_CONNECTION_EVENTS, events.TOPIC_MESSAGES,
                  events.TOPIC_ALERTS):
        assert f"`{topic}`" in architecture


def test_publish_rights_are_per_topic(plan: Plan) -> None:
    grants = [(c.words[4], c.flags["--member"], c.flags["--role"])
              for c in plan.commands("gcloud", "pubsub", "topics", "add-iam-policy-binding")]
    connector = {t for t, m, r in grants if m == f"serviceAccount:{CONNECTOR_SA}" and r == "roles/pubsub.publisher"}
    assert connector == {OVERRIDES[k] for k in ("_TOPIC_SNAPSHOTS", "_TOPIC_CONNECTION_EVENTS", "_TOPIC_MESSAGES")}
    functions = {t for t, m, r in grants if m == f"serviceAccount:{FUNCTIONS_SA}"}
    assert functions == {OVERRIDES["_TOPIC_ALERTS"], OVERRIDES["_TOPIC_OUTBOX"]}
    # The connector reads the outbox topic (its own subscriptions), nothing else.
    reads = {(t, m) for t, m, r in grants if r == "roles/pubsub.subscriber"}
    assert reads == {(OVERRIDES["_TOPIC_OUTBOX"], f"serviceAccount:{CONNECTOR_SA}")}
    assert {r for _, _, r in grants} == {"roles/pubsub.publisher", "roles/pubsub.subscriber"}


def test_messages_topic_is_readable_only_by_its_trigger_and_consumer(plan: Plan) -> None:
    # Message events carry plaintext: nobody but the connector publishes, and no identity is granted a
    # subscription on it except the dead-letter agent on the consumer's (and Eventarc's own trigger).
    messages = OVERRIDES["_TOPIC_MESSAGES"]
    topic_grants = [c for c in plan.commands("gcloud", "pubsub", "topics", "add-iam-policy-binding")
                    if c.words[4] == messages]
    assert {(c.flags["--member"], c.flags["--role"]) for c in topic_grants} == {
        (f"serviceAccount:{CONNECTOR_SA}", "roles/pubsub.publisher")}
    (trigger,) = [c for c in plan.commands("gcloud", "functions", "deploy") if c.words[3] == "recordMessageEvent"]
    assert trigger.flags["--trigger-topic"] == messages
    # The connector's subscription rights are bound to outbox-* subscriptions only.
    (binding,) = [c for c in plan.commands("gcloud", "projects", "add-iam-policy-binding")
                  if c.flags.get("--member") == f"serviceAccount:{CONNECTOR_SA}"]
    assert binding.flags["--role"].endswith("/roles/keeperOutboxReader")
    assert f'subscriptions/{OVERRIDES["_TOPIC_OUTBOX"]}-' in binding.flags["--condition"]
    (role,) = plan.commands("gcloud", "iam", "roles", "create")
    assert set(role.flags["--permissions"].split(",")) == {
        "pubsub.subscriptions.create", "pubsub.subscriptions.consume", "pubsub.subscriptions.delete",
        "pubsub.subscriptions.get"}


def test_scheduled_functions_use_oidc(plan: Plan) -> None:
    jobs = {str(c.flags["--uri"]): c for c in plan.commands("gcloud", "scheduler", "jobs", "create", "http")}
    base = f"https://{OVERRIDES['_REGION']}-{PROJECT}.cloudfunctions.net"
    scheduled = {uri.rsplit("/", 1)[1] for uri in jobs}
    assert scheduled == set(main_tables().http) - {"connectorSync"}
    for uri, job in jobs.items():
        assert uri.startswith(base)
        assert job.flags["--oidc-service-account-email"] == INVOKER_SA
        assert job.flags["--oidc-token-audience"] == OVERRIDES["_INTERNAL_AUDIENCE"]
        assert job.flags["--http-method"] == "POST"


def test_steps_wait_for_what_they_need(plan: Plan) -> None:
    steps = plan.steps
    for step in steps.values():
        assert set(step.wait_for) <= set(steps) | {"-"}, step.id

    def upstream(step_id: str) -> set[str]:
        seen: set[str] = set()
        todo = list(steps[step_id].wait_for)
        while todo:
            current = todo.pop()
            if current in seen or current == "-":
                continue
            seen.add(current)
            todo.extend(steps[current].wait_for)
        return seen

    for step_id in steps:
        if step_id.startswith(("fn-", "schedule-", "connector-deploy", "connector-push", "pubsub")):
            assert "test" in upstream(step_id), f"{step_id} can run before the tests pass"
        if step_id.startswith("fn-"):
            assert "pubsub" in upstream(step_id), f"{step_id} can deploy before its topic exists"
    assert {"fn-connectorSync", "connector-push"} <= upstream("connector-deploy")
    assert "fn-healthCheck" in upstream("schedule-healthCheck")
    assert "fn-cleanup" in upstream("schedule-cleanup")


def test_deploy_scripts_refuse_missing_environment() -> None:
    completed = subprocess.run(
        ["bash", "deploy/deploy_function.sh", "addAccount", "callable"], cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "DRY_RUN": "1"}, capture_output=True, text=True, timeout=30, check=False,
    )
    assert completed.returncode == 2
    assert "missing environment" in completed.stderr and "PROJECT_ID" in completed.stderr


def test_firebase_json() -> None:
    firebase = json.loads((REPO_ROOT / "firebase.json").read_text())
    (functions,) = firebase["functions"]
    assert functions["runtime"] == "python312"
    assert functions["source"] == "build/functions"
    assert (REPO_ROOT / firebase["firestore"]["rules"]).is_file()
    indexes = json.loads((REPO_ROOT / firebase["firestore"]["indexes"]).read_text())
    assert set(indexes) == {"indexes", "fieldOverrides"}
    public = REPO_ROOT / firebase["hosting"]["public"]
    assert (public / "index.html").is_file()
    emulators = firebase["emulators"]
    for part in ("firestore", "pubsub", "auth", "functions"):
        assert emulators[part]["host"] == "127.0.0.1"
        assert emulators[part]["port"] == PORT_DEFAULTS[part][1], part


@pytest.fixture(scope="module")
def bootstrap() -> list[Command]:
    return dry_run("deploy/bootstrap.sh", [], {"PROJECT_ID": PROJECT, "REGION": OVERRIDES["_REGION"],
                                               "PROJECT_NUMBER": BUILTINS["PROJECT_NUMBER"]})


def _select(commands: list[Command], *words: str) -> list[Command]:
    return [c for c in commands if c.startswith(*words)]


def test_bootstrap_creates_every_identity_the_build_uses(plan: Plan, bootstrap: list[Command]) -> None:
    created = {f"{c.words[4]}@{PROJECT}.iam.gserviceaccount.com"
               for c in _select(bootstrap, "gcloud", "iam", "service-accounts", "create")}
    used = {plan.env[k] for k in ("FUNCTIONS_SA", "CONNECTOR_SA", "INVOKER_SA", "BUILD_SA")}
    assert created == used
    data = load_cloudbuild()
    assert data["serviceAccount"].rsplit("/", 1)[1].replace("$PROJECT_ID", PROJECT) == plan.env["BUILD_SA"]
    assert not [c for c in bootstrap if "keys" in c.words], "no service-account key may be created"


def test_runtime_identities_hold_the_least_roles(bootstrap: list[Command]) -> None:
    project_roles: dict[str, set[str]] = {}
    for c in _select(bootstrap, "gcloud", "projects", "add-iam-policy-binding"):
        project_roles.setdefault(str(c.flags["--member"]), set()).add(str(c.flags["--role"]))
    assert project_roles.pop(f"serviceAccount:{FUNCTIONS_SA}") == {"roles/datastore.user"}
    deployer = project_roles.pop(f"serviceAccount:keeper-deployer@{PROJECT}.iam.gserviceaccount.com")
    # The deployer ships code but reads no data and no secret, and grants no project-wide roles.
    assert not deployer & {
        "roles/owner", "roles/editor", "roles/resourcemanager.projectIamAdmin", "roles/iam.securityAdmin",
        "roles/iam.serviceAccountAdmin", "roles/iam.serviceAccountKeyAdmin", "roles/secretmanager.admin",
        "roles/secretmanager.secretAccessor", "roles/datastore.owner", "roles/datastore.user",
    }
    assert project_roles == {}, f"unexpected project-wide grants: {project_roles}"

    (secret_grant,) = _select(bootstrap, "gcloud", "secrets", "add-iam-policy-binding")
    assert secret_grant.words[3] == load_cloudbuild()["substitutions"]["_KEK_SECRET"]
    assert secret_grant.flags["--member"] == f"serviceAccount:{FUNCTIONS_SA}"
    assert secret_grant.flags["--role"] == "roles/secretmanager.secretAccessor"


def test_bootstrap_enables_every_api_the_deploy_calls(plan: Plan, bootstrap: list[Command]) -> None:
    (enable,) = _select(bootstrap, "gcloud", "services", "enable")
    enabled = set(enable.words[3:])
    api_of = {"functions": "cloudfunctions", "run": "run", "pubsub": "pubsub", "scheduler": "cloudscheduler",
              "secrets": "secretmanager", "firestore": "firestore", "artifacts": "artifactregistry", "iam": "iam"}
    groups = {c.words[1] for step in plan.steps.values() for c in step.commands} | {c.words[1] for c in bootstrap}
    for group in groups - {"services", "projects"}:
        assert f"{api_of[group]}.googleapis.com" in enabled, group
    assert {"eventarc.googleapis.com", "cloudbuild.googleapis.com", "identitytoolkit.googleapis.com"} <= enabled


def _gcloud_cli_tree() -> dict[str, Any]:
    """The installed Google Cloud CLI's static command tree (commands and flags of every command)."""
    from keeper.emulators import find_gcloud

    source = (find_gcloud().sdk_root / "data" / "cli" / "gcloud_completions.py").read_text()
    tree: dict[str, Any] = ast.literal_eval(source[source.index("{"):])
    return tree


def _queried_fields() -> set[str]:
    """Field names the code filters or orders on (FieldFilter("f", ...), .order_by("f"))."""
    fields: set[str] = set()
    for folder in ("functions", "shared"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                first = node.args[0]
                if name in {"FieldFilter", "order_by", "where"} and isinstance(first, ast.Constant) \
                        and isinstance(first.value, str):
                    fields.add(first.value)
    return fields


def test_index_exemptions_spare_every_queried_field() -> None:
    # The queries use single-field filters only (sorting happens in code), so no composite index is
    # needed; the overrides stop indexing ciphertext and maps nobody queries. None may hit a queried field.
    queried = _queried_fields()
    assert {"ownerUid", "claimableAfter", "latestVersion"} <= queried  # the scan still sees the queries
    indexes = json.loads((REPO_ROOT / "firestore.indexes.json").read_text())
    exempted = {o["fieldPath"] for o in indexes["fieldOverrides"] if o["indexes"] == []}
    assert exempted and not exempted & queried


@pytest.mark.integration
def test_every_gcloud_flag_exists(plan: Plan, bootstrap: list[Command]) -> None:
    # Catches a mistyped or retired command or flag before a deploy does, against the tree the installed
    # Google Cloud CLI completes from.
    tree = _gcloud_cli_tree()
    global_flags = set(tree["flags"])
    for command in [c for step in plan.steps.values() for c in step.commands] + bootstrap:
        node = tree
        for word in command.words[1:]:
            if word not in node["commands"]:
                break  # the positional argument
            node = node["commands"][word]
        assert node is not tree and not node["commands"], f"not a gcloud command: {command.words}"
        known = set(node["flags"]) | global_flags
        unknown = {f for f in command.flags if f not in known and f.replace("--no-", "--", 1) not in known}
        assert not unknown, f"{' '.join(command.words[:4])} has no {sorted(unknown)}"


def test_plan_helper_reads_alternative_delimiters() -> None:
    command = Command(("gcloud", "x", "--set-env-vars=^|^A=1|B=x,y"))
    assert command.env_vars() == {"A": "1", "B": "x,y"}
    assert Command(("gcloud", "x", "--set-env-vars=A=1,B=2")).env_vars() == {"A": "1", "B": "2"}
