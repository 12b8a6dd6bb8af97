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


def test_num_rejects_infinity_and_nan():
    assert not Num(0).ok(float("inf")) and not Num().ok(float("nan")) and Num().ok(-3.5)
    assert Num().expected == "a finite number"


def test_a_setting_parses_its_value_and_refuses_nan_inf_and_out_of_range_in_one_line():
    from extractor.config import Setting, SettingError

    s = Setting("--max-mb", Num(0), 64.0, "cap", wording="a size in MiB >= 0")
    assert s.parse("2.5") == 2.5
    for bad in ("nan", "inf", "-1", "abc"):
        with pytest.raises(SettingError) as e:
            s.parse(bad)
        assert str(e.value) == f"--max-mb: expected a size in MiB >= 0, found {bad}"
    port = Setting("--port", Int(0, 65535), 8765, "port")
    assert port.parse("0") == 0
    with pytest.raises(SettingError, match="expected an integer in 0..65535, found 70000"):
        port.parse("70000")
    with pytest.raises(SettingError, match="found 1.5"):
        port.parse("1.5")


def test_owner_backed_settings_take_the_config_class_default():
    from extractor.cli.settings import SETTINGS
    from extractor.discover import DiscoverConfig

    assert SETTINGS["discover:min_words"].shown_default == DiscoverConfig().min_words
    assert "(default 12; an integer)" in SETTINGS["discover:min_words"].help_text()


def test_the_docs_carry_the_settings_table():
    from pathlib import Path

    from extractor.cli.settings import SETTINGS
    from extractor.config import settings_table

    docs = (Path(__file__).resolve().parents[1] / "docs" / "extraction.md").read_text("utf-8")
    assert settings_table(SETTINGS) in docs, "regenerate it: python -m extractor.cli.settings"
