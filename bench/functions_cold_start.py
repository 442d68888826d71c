"""How big the staged functions bundle is and how long its entry module takes to import.

The import time of ``main`` in a fresh interpreter is the part of a Cloud Functions cold start that
keeper controls (the platform adds its own). Run: ``.venv/bin/python bench/functions_cold_start.py``.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RUNS = 7


def _load_bundler() -> object:
    spec = importlib.util.spec_from_file_location("bundle_functions", REPO_ROOT / "deploy" / "bundle_functions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    bundler = _load_bundler()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "functions"
        started = time.perf_counter()
        bundle = bundler.stage(REPO_ROOT, out)  # type: ignore[attr-defined]
        stage_s = time.perf_counter() - started
        files = [p for p in out.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)

        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env.update({"PYTHONPATH": sysconfig.get_paths()["purelib"], "PYTHONDONTWRITEBYTECODE": "1",
                    "GOOGLE_CLOUD_PROJECT": "demo-bench"})
        def timed(code: str) -> list[float]:
            runs = []
            for _ in range(RUNS):
                started = time.perf_counter()
                subprocess.run([sys.executable, "-S", "-c", code], cwd=out, env=env, check=True, timeout=120)
                runs.append(time.perf_counter() - started)
            return runs

        baseline = timed("pass")
        timings = timed("import main")

    print(f"bundle: {len(files)} files, {size / 1024:.0f} KiB of source, {len(bundle.requirements)} requirements, "
          f"{len(bundle.functions)} functions; staged in {stage_s * 1000:.0f} ms")
    print(f"interpreter start + import main ({RUNS} runs, no bytecode cache for the bundle): "
          f"median {statistics.median(timings) * 1000:.0f} ms, min {min(timings) * 1000:.0f} ms, "
          f"max {max(timings) * 1000:.0f} ms")
    print(f"bare interpreter start: median {statistics.median(baseline) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
