"""Helpers to run code against a staged functions bundle in a clean interpreter."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

IMPORT_TIMEOUT_S = 120.0

# Runs inside the bundle folder: imports the entry module the way the Cloud Functions runtime does and
# describes what it found. -S keeps site hooks (the editable install of this repo) out; site-packages
# comes back through PYTHONPATH so the third-party libraries resolve.
_PROBE = """
import json, sys
import main
names = list(getattr(main, "__all__", []))
report = {
    "names": names,
    "callable": {n: callable(getattr(main, n, None)) for n in names},
    "files": {m: getattr(sys.modules.get(m), "__file__", None) for m in ("main", "functions", "shared")},
    "path": sys.path,
}
print(json.dumps(report))
"""


def import_bundle(bundle_dir: Path, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    site_packages = sysconfig.get_paths()["purelib"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update({"PYTHONPATH": site_packages, "PYTHONDONTWRITEBYTECODE": "1", **(extra_env or {})})
    completed = subprocess.run(
        [sys.executable, "-S", "-c", _PROBE],
        cwd=bundle_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, f"import main failed in {bundle_dir}:\n{completed.stderr[-4000:]}"
    report: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return report


REPO_ROOT = Path(__file__).resolve().parents[2]


def load_deploy_script(name: str) -> ModuleType:
    """Import ``deploy/<name>.py`` (a script folder, not a package) as a module."""
    path = REPO_ROOT / "deploy" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"keeper_deploy_{name}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class FunctionTables:
    """The trigger tables functions/main.py declares."""

    callables: tuple[str, ...]
    http: tuple[str, ...]
    pubsub: dict[str, str]  # function -> FunctionsConfig field naming its topic

    @property
    def all(self) -> set[str]:
        return {*self.callables, *self.http, *self.pubsub}


def load_functions_main_tables() -> FunctionTables:
    """CALLABLES, HTTP_FUNCTIONS and PUBSUB_FUNCTIONS of functions/main.py, read from its source so the
    module's import-time side effects do not run in the test process."""
    tree = ast.parse((REPO_ROOT / "functions" / "main.py").read_text())
    tables: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in MAIN_TABLES and node.value is not None:
                    tables[target.id] = ast.literal_eval(node.value)
    missing = set(MAIN_TABLES) - set(tables)
    assert not missing, f"functions/main.py no longer declares {sorted(missing)}"
    return FunctionTables(
        callables=tuple(tables["CALLABLES"]),
        http=tuple(tables["HTTP_FUNCTIONS"]),
        pubsub=dict(tables["PUBSUB_FUNCTIONS"]),
    )


MAIN_TABLES = ("CALLABLES", "HTTP_FUNCTIONS", "PUBSUB_FUNCTIONS")
