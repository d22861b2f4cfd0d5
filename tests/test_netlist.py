"""Reading user netlists and rendering K-copy decks."""


import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optiyield.netlist import NetlistError, parse_netlist, spice_number
from optiyield.netlist.placement import _refs
from optiyield.netlist.source import Directive, decode, directive, logical_lines
from optiyield.sim.ngspice.deck import Layout, meas_replicable, render

NETLIST = """My amplifier title line
* a comment
.param W=5u Rd={2*1k}
.param dvth=0 ; threshold shift
.include models/m.lib
.model dd d is=1e-14
.subckt buf a b
R1 a b 1k
.ends
VDD vdd 0 dc 1.2
Vin in 0 dc 0.6
+ ac 1
RD vdd out {Rd} $ load
M1 out in 0 0 nch W={W} delvto={dvth}
X1 out o2 buf
.options reltol=1e-4
.op
.ac dec 10 1k 1g
.meas ac gmax max vdb(out)
.print ac v(out)
.end
ignored after .end
"""


@pytest.fixture
def netlist(tmp_path):
    path = tmp_path / "n.cir"
    path.write_text(NETLIST)
    (tmp_path / "models").mkdir()
    (tmp_path / "models/m.lib").write_text(".model nch nmos level=1\n")
    return parse_netlist(path)


def test_sections(netlist, tmp_path):
    assert netlist.title == "My amplifier title line"
    assert netlist.params == {"w": "5u", "rd": "{2*1k}", "dvth": "0"}
    assert netlist.param_value("W") == pytest.approx(5e-6)
    assert netlist.param_value("Rd") is None  # an expression
    assert netlist.analysis_kinds == ("op", "ac")
    assert netlist.measure_names == ("gmax",)
    assert f'.include "{(tmp_path / "models/m.lib").resolve()}"' in netlist.hoisted
    assert ".model dd d is=1e-14" in netlist.hoisted and ".ends" in netlist.hoisted
    assert ".options reltol=1e-4" in netlist.hoisted
    assert "Vin in 0 dc 0.6 ac 1" in netlist.body  # continuation joined
    assert "RD vdd out {Rd}" in netlist.body  # inline comment dropped
    assert not any(line.startswith(".print") for line in netlist.body + netlist.hoisted)
    assert {s.name: (s.plus, s.minus) for s in netlist.sources.values()} == {"VDD": ("vdd", "0"), "Vin": ("in", "0")}


def test_control_block_is_refused(tmp_path):
    path = tmp_path / "c.cir"
    path.write_text("t\nR1 a 0 1\n.control\nrun\n.endc\n.op\n.end\n")
    with pytest.raises(NetlistError, match=r"c.cir:3: .control blocks are not allowed"):
        parse_netlist(path)


def test_unterminated_subckt(tmp_path):
    path = tmp_path / "s.cir"
    path.write_text("t\n.subckt a x\nR1 x 0 1\n.op\n")
    with pytest.raises(NetlistError, match="without .ends"):
        parse_netlist(path)


def test_missing_file(tmp_path):
    with pytest.raises(NetlistError, match="cannot read netlist"):
        parse_netlist(tmp_path / "none.cir")


def test_copies_deck(netlist):
    values = np.array([[4e-6, 0.01], [6e-6, -0.02]])
    deck, layout = render(netlist, ("W", "dvth"), values, "/x/out.raw", copies=True)
    lines = deck.splitlines()
    assert ".subckt oy_tb params: W=5u dvth=0" in lines
    assert ".param Rd={2*1k}" in lines  # derived parameter stays, per copy
    assert "X0 oy_tb W=4e-06 dvth=0.01" in lines and "X1 oy_tb W=6e-06 dvth=-0.02" in lines
    assert lines.index(".subckt buf a b") < lines.index(".subckt oy_tb params: W=5u dvth=0")
    assert "meas ac gmax_oy1 max vdb(x1.out)" in lines
    assert layout.node(1, "OUT") == "v(x1.out)" and layout.node(0, "0") is None
    assert layout.source_current(3, "VDD") == "i(v.x3.vdd)"


def test_single_deck_with_gentle_options(netlist):
    deck, layout = render(netlist, ("W",), np.array([[7e-6]]), "/x/out.raw", copies=False, gentle=True)
    assert ".param W=7e-06" in deck.splitlines()
    assert "method=gear" in deck and "oy_tb" not in deck
    assert layout == Layout(copies=False) and layout.node(0, "out") == "v(out)"
    with pytest.raises(ValueError, match="exactly one sample"):
        render(netlist, ("W",), np.array([[1e-6], [2e-6]]), "/x/out.raw", copies=False)


def test_meas_replicable():
    assert meas_replicable(".meas ac g max vdb(out)")
    assert not meas_replicable(".meas ac r param='g*2'")
    assert not meas_replicable(".meas dc x find @m1[gm] at=1")


@given(st.floats(min_value=1e-3, max_value=999), st.sampled_from(["", "k", "K", "meg", "MEG", "m", "M", "u", "n", "p"]),
       st.sampled_from(["", "F", "ohm", "V"]))
def test_spice_number_suffixes(mantissa, suffix, unit):
    """SPICE rules: case-insensitive, m and M are milli, meg is mega, trailing unit letters ignored."""
    scale = {"": 1, "k": 1e3, "meg": 1e6, "m": 1e-3, "u": 1e-6, "n": 1e-9, "p": 1e-12}[suffix.lower()]
    if suffix == "" and unit == "F":
        scale = 1e-15  # 'f' is femto in SPICE
    assert spice_number(f"{mantissa!r}{suffix}{unit}") == pytest.approx(mantissa * scale, rel=1e-12)


def test_spice_number_expressions():
    assert spice_number("{W*2}") is None and spice_number("'a+b'") is None
    assert spice_number("{1k}") == 1e3


# --- reading files as ngspice does (issue 15) ------------------------------------------------------

_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_{}=*().", min_size=1, max_size=8).filter(
    lambda w: w[0] not in "*+.$#")
_NAME = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)


@given(st.text(alphabet=st.characters(blacklist_characters="\x00\ufeff", blacklist_categories=("Cs",))))
def test_decode_reads_utf8_text_unchanged(text):
    assert decode(text.encode("utf-8"), "x") == text


@given(st.binary().filter(lambda b: b"\x00" not in b))
def test_decode_falls_back_to_latin1_bytes(data):
    """Every byte string without NUL decodes; when it is not UTF-8, each byte is one Latin-1 character."""
    text = decode(data, "x")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        assert text.encode("latin-1") == data


@given(st.lists(st.lists(st.lists(_WORD, min_size=1, max_size=3), min_size=1, max_size=3), min_size=1, max_size=6),
       st.booleans())
def test_logical_lines_join_continuations_and_drop_comments(cards, comments):
    """A card split over ``+`` lines (with comment lines in between) reads back as one line."""
    raw, expected, number = [], [], 1
    for pieces in cards:
        expected.append((number, " ".join(" ".join(words) for words in pieces)))
        for index, words in enumerate(pieces):
            raw.append(("+ " if index else "") + " ".join(words))
            if comments:
                raw.append("* a comment")
        number = len(raw) + 1
    assert logical_lines("\n".join(raw)) == expected


@given(st.from_regex(r"[A-Za-z0-9_./~-]{1,20}", fullmatch=True), st.sampled_from(["", '"', "'"]),
       st.sampled_from([".include", ".INC", ".inc"]), st.from_regex(r"[a-z_]{1,6}", fullmatch=True))
def test_include_directives(target, quote, keyword, section):
    assert directive(f"{keyword} {quote}{target}{quote}") == Directive("include", target)
    assert directive(f".lib {quote}{target}{quote} {section}") == Directive("lib", target, section)
    assert directive(f".lib {target}") == Directive("lib1", target)
    assert directive(f"R1 a b {target}") is None


@given(st.lists(st.tuples(_NAME, _NAME), min_size=1, max_size=5))
def test_references_skip_assigned_keys(pairs):
    """``key={value}`` refers to ``value``, never to the key being assigned."""
    text = " ".join(f"{key}={{{value}*2}}" for key, value in pairs)
    assert _refs(text) == {value for _, value in pairs}
