"""`python -m keeper.testrun [pytest args]`: pytest with an empty run treated as a failure.

pytest exits 5 when it collected no tests; for CI that means the suite went missing, not that it passed.
"""

from __future__ import annotations

import sys

import pytest

NO_TESTS_COLLECTED = 5


def main(argv: list[str] | None = None) -> int:
    code = int(pytest.main(list(sys.argv[1:] if argv is None else argv)))
    if code == NO_TESTS_COLLECTED:
        print("keeper: pytest collected no tests; an empty run is a failure", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
