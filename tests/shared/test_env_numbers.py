from __future__ import annotations

import pytest

from shared.env_numbers import env_float, env_int


class _Bad(ValueError):
    pass


def test_unset_or_blank_is_the_default() -> None:
    assert env_float({}, "X", 2.5, error=_Bad) == 2.5
    assert env_int({"X": "  "}, "X", 7, error=_Bad) == 7


def test_values_are_read_and_bounded() -> None:
    assert env_float({"X": " 1.5 "}, "X", 0.0, error=_Bad) == 1.5
    assert env_int({"X": "80"}, "X", 1, minimum=1, maximum=65535, error=_Bad) == 80
    with pytest.raises(_Bad, match=r"X='0' must be within 1\.\.65535"):
        env_int({"X": "0"}, "X", 1, minimum=1, maximum=65535, error=_Bad)
    with pytest.raises(_Bad, match="at least 60"):
        env_float({"X": "59.9"}, "X", 60.0, minimum=60, error=_Bad)


@pytest.mark.parametrize("raw", ["abc", "nan", "inf", "3.5"])
def test_bad_text_names_the_variable_in_the_callers_error(raw: str) -> None:
    with pytest.raises(_Bad, match="KEEPER_N"):
        env_int({"KEEPER_N": raw}, "KEEPER_N", 1, error=_Bad)
    if raw != "3.5":
        with pytest.raises(_Bad, match="KEEPER_N"):
            env_float({"KEEPER_N": raw}, "KEEPER_N", 1.0, error=_Bad)
