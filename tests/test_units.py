"""Engineering numbers in spec files."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optiyield.units import UnitError, format_eng, parse_eng


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("350p", 350e-12),
        ("22u", 22e-6),
        ("22µ", 22e-6),
        ("1.2k", 1.2e3),
        ("5%", 0.05),
        ("15m", 15e-3),
        ("200M", 200e6),
        ("1meg", 1e6),
        ("28GHz", 28e9),
        ("1.2kOhm", 1.2e3),
        ("10mV", 10e-3),
        ("-1.9", -1.9),
        ("1e-3", 1e-3),
        (" 2.5e3 ", 2.5e3),
        ("3F", 3.0),
        ("100fF", 100e-15),
        (42, 42.0),
        (0.5, 0.5),
    ],
)
def test_parse(text, value):
    assert parse_eng(text) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "5 %%", "12x", "1mm", "True", "k5"])
def test_parse_rejects(text):
    with pytest.raises(UnitError, match="expected a number"):
        parse_eng(text)


def test_bool_is_not_a_number():
    with pytest.raises(UnitError):
        parse_eng(True)


def test_format_examples():
    assert format_eng(22e-6) == "22u"
    assert format_eng(350e-12) == "350p"
    assert format_eng(1200.0) == "1.2k"
    assert format_eng(0.0) == "0"
    assert format_eng(999.96) == "1k"
    assert format_eng(28e9, unit="Hz") == "28GHz"
    assert format_eng(math.nan) == "nan"


finite = st.floats(min_value=-1e15, max_value=1e15, allow_nan=False, allow_infinity=False).filter(
    lambda v: v == 0 or abs(v) > 1e-17
)


@given(finite)
def test_round_trip(value):
    """format_eng → parse_eng gives the value back to the printed precision."""
    text = format_eng(value, digits=12)
    assert parse_eng(text) == pytest.approx(value, rel=1e-11, abs=1e-30)


@given(st.floats(min_value=1e-3, max_value=999.0), st.sampled_from(["f", "p", "n", "u", "m", "", "k", "M", "G"]))
def test_prefix_scaling(mantissa, prefix):
    scale = {"f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9}
    assert parse_eng(f"{mantissa!r}{prefix}") == pytest.approx(mantissa * scale[prefix], rel=1e-12)
