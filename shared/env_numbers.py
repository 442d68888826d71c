"""Numbers from environment variables, read the same way for every package's settings.

Each package passes its own configuration error (``error``), so a bad value is reported in that
package's error tree and names the variable. An unset or blank variable means the default.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping


def env_float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0,
              error: Callable[[str], Exception]) -> float:
    """``env[name]`` as a finite number of at least ``minimum``; ``default`` when unset or blank."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise error(f"{name}={raw!r} is not a number") from exc
    if not math.isfinite(value):
        raise error(f"{name}={raw!r} is not a finite number")
    if value < minimum:
        raise error(f"{name}={raw!r} must be at least {minimum:g}")
    return value


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0, maximum: int | None = None,
            error: Callable[[str], Exception]) -> int:
    """``env[name]`` as an integer in ``minimum..maximum``; ``default`` when unset or blank."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise error(f"{name}={raw!r} is not an integer") from exc
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"at least {minimum}" if maximum is None else f"within {minimum}..{maximum}"
        raise error(f"{name}={raw!r} must be {bound}")
    return value
