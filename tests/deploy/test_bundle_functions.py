"""deploy/bundle_functions.py: the staged Cloud Functions folder is self-contained and complete."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.bundle_support import REPO_ROOT, import_bundle, load_deploy_script, load_functions_main_tables

bundle = load_deploy_script("bundle_functions")

FAKE_MAIN = '''
import functions_framework
from shared.util import double


@functions_framework.http
def ping(request):
    return str(double(21))


@functions_framework.cloud_event
def onEvent(event):
    return None


def helper():
    return None
'''


def _fake_repo(root: Path, main_source: str = FAKE_MAIN) -> Path:
    (root / "functions").mkdir(parents=True)
    (root / "shared").mkdir()
    (root / "functions" / "__init__.py").write_text("")
    (root / "functions" / "main.py").write_text(main_source)
    (root / "functions" / "__pycache__").mkdir()
    (root / "functions" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"stale")
    (root / "shared" / "__init__.py").write_text("")
    (root / "shared" / "py.typed").write_text("")
    (root / "shared" / "util.py").write_text(
        "import zstandard\n\n\ndef double(n: int) -> int:\n    return 2 * n\n"
    )
    shutil.copy(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_deployed_functions_prefers_all() -> None:
    source = '__all__ = ["b", "a"]\n\n@x\ndef c(): pass\n'
    assert bundle.deployed_functions(source) == ("b", "a")


def test_deployed_functions_are_the_decorated_top_level_functions() -> None:
    assert bundle.deployed_functions(FAKE_MAIN) == ("ping", "onEvent")


def test_deployed_functions_refuses_a_computed_all() -> None:
    with pytest.raises(bundle.BundleError):
        bundle.deployed_functions("__all__ = [name for name in dir()]\n")


def test_requirement_name_normalises() -> None:
    assert bundle.requirement_name("Google_Cloud.Firestore>=2.19,<3") == "google-cloud-firestore"
    assert bundle.requirement_name("xeddsa>=1.0.2,<2 ; python_version >= '3.11'") == "xeddsa"


def test_select_requirements_keeps_imported_and_runtime_lines() -> None:
    declared = ["websockets>=13,<18", "functions-framework>=3.8,<4", "firebase-functions>=0.4,<0.7",
                "firebase-admin>=6.5,<8", "zstandard>=0.23,<0.26"]
    chosen = bundle.select_requirements(declared, {"zstandard"})
    assert chosen == ("firebase-admin>=6.5,<8", "firebase-functions>=0.4,<0.7", "functions-framework>=3.8,<4",
                      "zstandard>=0.23,<0.26")


def test_select_requirements_fails_without_the_runtime() -> None:
    with pytest.raises(bundle.BundleError, match="functions-framework"):
        bundle.select_requirements(["firebase-functions>=0.4", "firebase-admin>=6"], set())


def test_namespace_packages_resolve_to_the_specific_distribution() -> None:
    index = bundle._module_index()
    found = bundle.distributions_imported({"google.cloud", "google.cloud.firestore"}, index)
    assert "google-cloud-firestore" in found
    assert "google-cloud-pubsub" not in found


def test_unprovided_reports_imports_no_requirement_brings() -> None:
    assert bundle.unprovided({"google-crc32c", "websockets"}, ["firebase-admin>=6.5,<8"]) == {"websockets"}


def test_stage_writes_a_self_contained_folder(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path / "repo")
    out = tmp_path / "out"
    staged = bundle.stage(repo, out)

    assert staged.functions == ("ping", "onEvent")
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == {
        "main.py", "requirements.txt", "functions/__init__.py", "functions/main.py",
        "shared/__init__.py", "shared/py.typed", "shared/util.py",
    }
    requirements = (out / "requirements.txt").read_text().splitlines()
    names = [bundle.requirement_name(line) for line in requirements if not line.startswith("#")]
    assert names == ["firebase-admin", "firebase-functions", "functions-framework", "zstandard"]

    report = import_bundle(out)
    assert report["names"] == ["ping", "onEvent"]
    assert all(report["callable"].values())
    for module, file in report["files"].items():
        assert file is not None and Path(file).resolve().is_relative_to(out.resolve()), (module, file)
    assert str(repo) not in report["path"]


def test_stage_replaces_an_old_bundle(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path / "repo")
    out = tmp_path / "out"
    (out / "functions").mkdir(parents=True)
    (out / "functions" / "removed_module.py").write_text("")
    bundle.stage(repo, out)
    assert not (out / "functions" / "removed_module.py").exists()


def test_stage_refuses_a_repo_without_entry_module(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path / "repo")
    (repo / "functions" / "main.py").unlink()
    with pytest.raises(bundle.BundleError, match=r"main\.py"):
        bundle.stage(repo, tmp_path / "out")


def test_stage_refuses_imports_no_dependency_provides(tmp_path: Path) -> None:
    repo = _fake_repo(tmp_path / "repo")
    (repo / "shared" / "extra.py").write_text("import pytest\n")
    with pytest.raises(bundle.BundleError, match="pytest"):
        bundle.stage(repo, tmp_path / "out")


def test_script_runs_from_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "functions-bundle"
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "deploy" / "bundle_functions.py"), "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert (out / "main.py").is_file()
    assert "connectorSync" in completed.stdout



def test_real_bundle_imports_cleanly_and_exposes_every_function(tmp_path: Path) -> None:
    out = tmp_path / "functions-bundle"
    staged = bundle.stage(REPO_ROOT, out)

    expected = sorted(load_functions_main_tables().all)
    assert sorted(staged.functions) == sorted(expected)

    report = import_bundle(out, {"GOOGLE_CLOUD_PROJECT": "demo-keeper-bundle"})
    assert sorted(report["names"]) == sorted(expected)
    assert report["callable"] == dict.fromkeys(expected, True)
    for module, file in report["files"].items():
        assert file is not None and Path(file).resolve().is_relative_to(out.resolve()), (module, file)
    assert str(REPO_ROOT) not in report["path"]
    assert not (out / "tests").exists() and not (out / "connector").exists()
