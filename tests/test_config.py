"""Tests for extractor.config: the one way to build and validate stage configs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from extractor.config import Int, Num, OneOf, Opt, check_fields, from_mapping
from extractor.errors import ExtractorError, ModelError


@dataclass
class Cfg:
    n: int = 1
    rate: float = 0.5
    mode: str = "a"
    cap: int | None = None

    def __post_init__(self) -> None:
        check_fields(self, {"n": Int(1), "rate": Num(0, 1), "mode": OneOf(("a", "b")), "cap": Opt(Int(1, 9))})


@pytest.mark.parametrize("kw, message", [
    ({"n": 0}, "Cfg.n: expected an integer >= 1, found 0"),
    ({"n": True}, "Cfg.n: expected an integer >= 1, found True"),
    ({"rate": 1.5}, "Cfg.rate: expected a number in [0, 1], found 1.5"),
    ({"rate": float("nan")}, "Cfg.rate: expected a number in [0, 1], found nan"),
    ({"mode": "c"}, "Cfg.mode: expected \"a\" or \"b\", found 'c'"),
    ({"mode": "d"}, "Cfg.mode: expected \"a\" or \"b\", found 'd'"),
    ({"cap": 10}, "Cfg.cap: expected None or an integer in 1..9, found 10"),
])
def test_each_rule_names_the_field_and_what_was_expected(kw, message):
    with pytest.raises(ExtractorError) as e:
        Cfg(**kw)
    assert str(e.value) == message


def test_valid_values_and_none_pass():
    assert Cfg(n=3, rate=1, mode="b", cap=None).rate == 1
    assert Cfg(cap=9).cap == 9


def test_open_lower_bound_and_custom_error_class():
    with pytest.raises(ModelError, match=r"Cfg.rate: expected a number > 0, found 0"):
        check_fields(Cfg(rate=0), {"rate": Num(0, lo_open=True)}, error=ModelError)


def test_from_mapping_ignores_unknown_keys_and_optionally_none():
    assert from_mapping(Cfg, {"n": 2, "unknown": 1}).n == 2
    assert from_mapping(Cfg, {"n": None, "rate": 0.1}, skip_none=True) == Cfg(rate=0.1)
    with pytest.raises(ExtractorError, match="Cfg.n: expected an integer >= 1, found None"):
        from_mapping(Cfg, {"n": None})
