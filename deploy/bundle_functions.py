"""Stage the Cloud Functions source folder: ``build/functions/``.

Cloud Functions uploads only the folder it is pointed at, so the repo's ``shared/`` package has to be
copied next to ``functions/`` before a deploy. The staged folder holds:

    build/functions/
        main.py            entry module: re-exports every deployed function of functions/main.py
        requirements.txt   the pyproject.toml dependencies the bundled code imports (with their ranges)
        functions/         copy of the package (sources and data files, no caches)
        shared/            copy of the package

Usage: ``python deploy/bundle_functions.py [--out build/functions]``. The script needs the project's
virtualenv (it reads installed distribution metadata to map imports to requirement lines).
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import re
import shutil
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("functions", "shared")
ENTRY_SOURCE = Path("functions") / "main.py"
#: Where the bundle goes, relative to the repo (firebase.json and cloudbuild.yaml point here).
DEFAULT_OUT = Path("build") / "functions"
COPIED_SUFFIXES = frozenset({".py", ".pyi", ".typed", ".proto", ".json"})
#: Always installed: the runtime that serves the entry points, whatever the code imports.
RUNTIME_REQUIREMENTS = ("functions-framework", "firebase-functions", "firebase-admin")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


class BundleError(Exception):
    """The bundle cannot be staged: a package or entry module is missing or malformed."""


@dataclass(frozen=True)
class Bundle:
    out_dir: Path
    functions: tuple[str, ...]
    requirements: tuple[str, ...]


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = _NAME_RE.match(requirement.strip())
    if match is None:
        raise BundleError(f"cannot read a distribution name from requirement {requirement!r}")
    return canonical(match.group(0))


def deployed_functions(main_source: str) -> tuple[str, ...]:
    """Names of the functions ``functions/main.py`` deploys.

    ``__all__`` when the module declares it; otherwise every top-level decorated function (the
    firebase-functions and functions-framework decorators are what make a function deployable).
    """
    tree = ast.parse(main_source)
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                if node.value is None:
                    raise BundleError("__all__ in functions/main.py has no value")
                try:
                    value = ast.literal_eval(node.value)
                except ValueError as exc:
                    raise BundleError("__all__ in functions/main.py must be a literal list of names") from exc
                if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                    raise BundleError("__all__ in functions/main.py must be a literal list of names")
                return tuple(value)
    return tuple(
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.decorator_list
    )


def imported_modules(sources: Iterable[Path]) -> set[str]:
    """Dotted names each ``import`` of the sources could refer to (``from a.b import c`` gives a.b and a.b.c)."""
    names: set[str] = set()
    for path in sources:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def _module_index() -> dict[str, set[str]]:
    """dotted module or package name -> installed distributions that ship it."""
    index: dict[str, set[str]] = {}
    for dist in importlib.metadata.distributions():
        name = canonical(dist.metadata["Name"] or "")
        for file in dist.files or ():
            parts = file.parts
            if not parts or not parts[-1].endswith((".py", ".so", ".pyd")) or ".." in parts:
                continue
            stem = parts[-1].split(".")[0]
            dotted = [*parts[:-1], stem] if stem != "__init__" else list(parts[:-1])
            for depth in range(1, len(dotted) + 1):
                index.setdefault(".".join(dotted[:depth]), set()).add(name)
    return index


def distributions_imported(modules: Iterable[str], index: Mapping[str, set[str]]) -> set[str]:
    """Distributions that provide the given modules (most specific known name wins, so a namespace
    package such as ``google.cloud`` does not pull in every distribution that shares it)."""
    names = set(modules)
    # `from google.cloud import firestore` names both google.cloud and google.cloud.firestore: a name
    # that a more specific known name extends says nothing of its own.
    specific = {m for m in names if not any(o.startswith(m + ".") and o in index for o in names)}
    found: set[str] = set()
    for module in specific:
        parts = module.split(".")
        for depth in range(len(parts), 0, -1):
            owners = index.get(".".join(parts[:depth]))
            if owners:
                found |= owners
                break
    return found


def select_requirements(declared: Iterable[str], imported: set[str]) -> tuple[str, ...]:
    """The declared requirement lines whose distribution the code imports, plus the runtime ones."""
    wanted = imported | {canonical(n) for n in RUNTIME_REQUIREMENTS}
    chosen = [line for line in declared if requirement_name(line) in wanted]
    missing = {canonical(n) for n in RUNTIME_REQUIREMENTS} - {requirement_name(line) for line in chosen}
    if missing:
        raise BundleError(f"pyproject.toml does not declare the runtime requirement(s): {', '.join(sorted(missing))}")
    return tuple(sorted(chosen, key=requirement_name))


def installed_closure(roots: Iterable[str]) -> set[str]:
    """The roots and every distribution they require when installed (extras left out), by canonical name."""
    seen: set[str] = set()
    todo = [canonical(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo.extend(requirement_name(line) for line in requires if "extra" not in line.partition(";")[2])
    return seen


def unprovided(imported: set[str], requirements: Iterable[str]) -> set[str]:
    """Imported distributions that installing ``requirements`` would not bring in."""
    return imported - installed_closure(requirement_name(line) for line in requirements)


def _package_files(package_dir: Path) -> Iterator[Path]:
    for path in sorted(package_dir.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in COPIED_SUFFIXES:
            yield path


def entry_module(names: Iterable[str]) -> str:
    lines = [
        '"""Cloud Functions entry module, generated by deploy/bundle_functions.py: do not edit.',
        "",
        "Each deployed function is defined in functions/main.py; the runtime looks its entry point up here.",
        '"""',
        "",
        "from functions.main import (",
        *(f"    {name}," for name in names),
        ")",
        "",
        "__all__ = [",
        *(f'    "{name}",' for name in names),
        "]",
        "",
    ]
    return "\n".join(lines)


def stage(repo_root: Path = REPO_ROOT, out_dir: Path | None = None) -> Bundle:
    """Write a fresh bundle to ``out_dir`` (default ``<repo>/build/functions``) and describe it."""
    out_dir = (out_dir or repo_root / DEFAULT_OUT).resolve()
    entry = repo_root / ENTRY_SOURCE
    if not entry.is_file():
        raise BundleError(f"{entry} does not exist: nothing to deploy")
    names = deployed_functions(entry.read_text())
    if not names:
        raise BundleError(f"{entry} defines no deployable function")
    for package in PACKAGES:
        if not (repo_root / package / "__init__.py").is_file():
            raise BundleError(f"{repo_root / package} is not a package")

    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    sources: list[Path] = []
    for package in PACKAGES:
        for path in _package_files(repo_root / package):
            target = out_dir / path.relative_to(repo_root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            if path.suffix == ".py":
                sources.append(path)

    declared = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]["dependencies"]
    third_party = {m for m in imported_modules(sources) if m.split(".")[0] not in PACKAGES}
    imported = distributions_imported(third_party, _module_index())
    requirements = select_requirements(declared, imported)
    missing = unprovided(imported, requirements)
    if missing:
        raise BundleError(
            f"the bundled code imports {', '.join(sorted(missing))}, which no pyproject.toml dependency provides"
        )
    (out_dir / "requirements.txt").write_text(
        "# Generated by deploy/bundle_functions.py from pyproject.toml: do not edit.\n"
        + "".join(f"{line}\n" for line in requirements)
    )
    (out_dir / "main.py").write_text(entry_module(names))
    return Bundle(out_dir=out_dir, functions=names, requirements=requirements)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: build/functions)")
    args = parser.parse_args(argv)
    try:
        bundle = stage(REPO_ROOT, args.out)
    except BundleError as exc:
        print(f"bundle_functions: {exc}", file=sys.stderr)
        return 1
    print(f"staged {bundle.out_dir}")
    print(f"functions ({len(bundle.functions)}): {', '.join(bundle.functions)}")
    print(f"requirements ({len(bundle.requirements)}): {', '.join(bundle.requirements)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
