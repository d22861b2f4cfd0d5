"""Netlists as people write them run through optiyield (issue 15): model cards and definitions whose
fields are ``.param`` expressions, ``.lib`` sections, nested subcircuits, ``.func``, ``.csparam``, ``.temp``,
analyses with parameters, included files; ``.control`` in included files refused; Latin-1 files read.

Every circuit here is simulated twice through ngspice: as K copies in one deck (the fast path) and one
sample per deck (the user's own deck with its ``.param`` values replaced, the reference). They must
agree, and the samples must differ from each other (so agreement is not trivial).
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from optiyield.errors import SpecError
from optiyield.netlist import NetlistError, parse_netlist
from optiyield.sim.engine import OK, Engine
from optiyield.sim.ngspice.deck import SUBCKT, render
from optiyield.testbench import load_testbench

ROOT = Path(__file__).resolve().parents[1]
PTM = ROOT / "circuits" / "models" / "ptm45lp.lib"

BJT = """BJT common emitter, beta from a .param
* a Latin-1 comment: 100 \xb5A of base current at most
.param bf_n=100 rb=100k
.model qn npn bf={bf_n} is=1e-15
V1 vcc 0 5
RB vcc b {rb}
Q1 c b 0 qn
RC vcc c 1k
.op
.end
"""

DIODE = """Diode with a parameterized saturation current
.param is_n=1e-14 idc=1m
.model dd d is={is_n} n=1.05
I1 0 a dc {idc}
D1 a 0 dd
.op
.end
"""

MOS_LEVEL1 = """Level-1 NMOS with a parameterized threshold
.param vto_n=0.5 w=10u
.model nl nmos level=1 vto={vto_n} kp=200u lambda=0.05
VDD vdd 0 1.8
VG g 0 1.0
RD vdd d 2k
M1 d g 0 0 nl W={w} L=1u
.op
.end
"""

MOS_BSIM4 = """BSIM4 card (an included file) whose vth0 is a netlist parameter
.param vth_n=0.62261 w=5u
.include ptm_vth.lib
VDD vdd 0 1.2
VIN vin 0 dc 0.8 ac 1
RD vdd vout 1k
CL vout 0 1p
M1 vout vin 0 0 nch W={w} L=45n
.op
.ac dec 10 1k 10g
.end
"""

LIB_SECTIONS = """Library sections, one parameterized (through a nested .lib) and one not
.param bf_n=100 rb=100k
.lib lib/bjt.lib typ
V1 vcc 0 5
RB vcc b {rb}
Q1 c b 0 qn
RC vcc c 1k
D1 c x dfix
RX x 0 10k
.op
.end
"""

BJT_LIB = """* a library: sections typ and hot use the netlist's bf_n; diodes has no parameter
.lib typ
.model qn npn bf={bf_n} is=1e-15
.lib bjt.lib diodes
.endl typ
.lib hot
.model qn npn bf={bf_n*1.3} is=2e-15
.lib bjt.lib diodes
.endl hot
.lib diodes
.model dfix d is=1e-14
.endl diodes
"""

NESTED = """Nested subcircuits: a subcircuit uses a parameterized model, another one nests it
.param bf_n=100 rl=1k rbias={100*rl}
.model qs npn bf={bf_n}
.subckt stage vcc out
RB vcc b {rbias}
Q1 out b 0 qs
RL vcc out {rl}
.ends stage
.subckt amp vcc out
X1 vcc mid stage
R2 mid out 1k
R3 out 0 10k
.ends amp
V1 vcc 0 5
X1 vcc out amp
.op
.end
"""

FUNC = """A .func that uses a parameter, used by a model card and an element
.param bf_n=100 k=2
.func beta(x) {x*bf_n}
.func rc(x) {x*1k*k}
.model qn npn bf={beta(1)}
V1 vcc 0 5
RB vcc b 100k
Q1 c b 0 qn
RC vcc c {rc(1)}
.op
.end
"""

CSPARAM = """A csparam of a sampled parameter, .temp and an analysis from netlist parameters
.param bf_n=100 t_c=60 fmax=1g
.model qn npn bf={bf_n} is=1e-15 cjc=1p
.csparam beta_vec={bf_n}
.temp {t_c}
V1 vcc 0 5
VIN in 0 dc 0 ac 1
RB vcc b 100k
CB in b 1n
Q1 c b 0 qn
RC vcc c 1k
.op
.ac dec 10 1k {fmax}
.end
"""

ELEMENTS_INCLUDE = """An included file with element lines: they belong to each sample's circuit
.param rb=100k
.include bias.inc
V1 vcc 0 5
RB vcc b {rb}
Q1 c b 0 qfix
RC vcc c 1k
.op
.end
"""

BIAS_INC = """* bias network and a model: the elements must be in every copy
.model qfix npn bf=120
RBB b 0 {rb*0.5}
"""

OVERRIDE = """The netlist overrides a parameter its library defines (the later .param wins in ngspice)
.param bf_lib=50 rb=100k
.include lib/override.lib
V1 vcc 0 5
RB vcc b {rb}
Q1 c b 0 qo
RC vcc c 1k
.op
.end
"""

OVERRIDE_LIB = """* a library with its own default
.param bf_lib=100
.model qo npn bf={bf_lib}
"""


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("latin-1"))


def _testbench(folder: Path, netlist: str, measures: str, extra: dict[str, str] | None = None) -> Path:
    _write(folder, {"netlist.cir": netlist, **(extra or {})})
    path = folder / "testbench.yaml"
    path.write_text(f"name: compat\nnetlist: netlist.cir\nmeasures:\n{measures}")
    return path


def _ptm_vth() -> str:
    text = PTM.read_text()
    card = text.index(".model nch")
    return text[:card] + text[card:].replace("vth0=0.62261", "vth0={vth_n}", 1)


CASES = {
    "bjt": (BJT, "  vc: {fn: dc_voltage, node: c}\n", None, {"bf_n": [60, 100, 160], "rb": [100e3, 80e3, 120e3]}),
    "diode": (DIODE, "  va: {fn: dc_voltage, node: a}\n", None, {"is_n": [5e-15, 1e-14, 3e-14]}),
    "mos_level1": (MOS_LEVEL1, "  vd: {fn: dc_voltage, node: d}\n", None, {"vto_n": [0.45, 0.5, 0.58]}),
    "mos_bsim4": (MOS_BSIM4, "  vout: {fn: dc_voltage, node: vout}\n  gain: {fn: lf_gain_db, out: vout, in: vin}\n",
                  {"ptm_vth.lib": "PTM"}, {"vth_n": [0.58, 0.62261, 0.66], "w": [4e-6, 5e-6, 6e-6]}),
    "lib_sections": (LIB_SECTIONS, "  vc: {fn: dc_voltage, node: c}\n", {"lib/bjt.lib": BJT_LIB},
                     {"bf_n": [60, 100, 160]}),
    "nested_subckt": (NESTED, "  vout: {fn: dc_voltage, node: out}\n", None,
                      {"bf_n": [60, 100, 160], "rl": [800.0, 1e3, 1.3e3]}),
    "func": (FUNC, "  vc: {fn: dc_voltage, node: c}\n", None, {"bf_n": [60, 100, 160], "k": [1.5, 2, 2.5]}),
    "csparam_temp_analysis": (CSPARAM, "  vc: {fn: dc_voltage, node: c}\n  gain: {fn: lf_gain_db, out: c, in: in}\n",
                              None, {"bf_n": [60, 100, 160]}),
    "elements_include": (ELEMENTS_INCLUDE, "  vc: {fn: dc_voltage, node: c}\n", {"bias.inc": BIAS_INC},
                         {"rb": [80e3, 100e3, 130e3]}),
    "library_override": (OVERRIDE, "  vc: {fn: dc_voltage, node: c}\n", {"lib/override.lib": OVERRIDE_LIB},
                         {"rb": [80e3, 100e3, 130e3]}),
}


@pytest.fixture(scope="module")
def engine():
    return Engine(workers=2)


def _copies_and_single(engine: Engine, testbench: Path, rows: dict[str, list[float]]) -> dict[str, np.ndarray]:
    """Simulate ``rows`` as one K-copy deck and one sample per deck; assert both succeed and agree."""
    tb = load_testbench(testbench)
    names = tuple(rows)
    values = np.column_stack([np.asarray(rows[n], dtype=float) for n in names])
    job = tb.job(names)
    assert job.copies
    copies = engine.run(dataclasses.replace(job, batch_size=len(values)), values)
    single = engine.run(dataclasses.replace(job, copies=False), values)
    assert copies.runs <= 2 and single.runs == len(values)  # the engine splits a batch over 2 workers
    assert (copies.status == OK).all(), copies.reason
    assert (single.status == OK).all(), single.reason
    for name in job.measures:  # to the DC solver's tolerance (reltol=1e-3 of the iteration step)
        np.testing.assert_allclose(copies.values[name], single.values[name], rtol=1e-4, atol=1e-9, err_msg=name)
    return copies.values


@pytest.mark.ngspice
@pytest.mark.parametrize("case", list(CASES))
def test_copies_equal_one_sample_per_deck(engine, tmp_path, case):
    """Each netlist runs as copies with the numbers of one-sample decks, and its parameters matter."""
    netlist, measures, extra, rows = CASES[case]
    extra = {name: _ptm_vth() if text == "PTM" else text for name, text in (extra or {}).items()}
    values = _copies_and_single(engine, _testbench(tmp_path, netlist, measures, extra), rows)
    first = next(iter(values.values()))
    assert np.ptp(first) > 1e-3 * np.max(np.abs(first)), f"{case}: the samples do not differ: {first}"


def _deck(testbench: Path, names: tuple[str, ...]) -> list[str]:
    tb = load_testbench(testbench)
    deck, _ = render(tb.netlist, names, np.ones((2, len(names))), "out.raw", copies=True)
    return deck.splitlines()


def test_only_parameterized_definitions_move_into_the_copies(tmp_path):
    """A card, subcircuit or library that refers to a per-sample name goes inside ``oy_tb``; the others
    stay on top, once; a netlist parameter used on top (``.temp``, an analysis) is also written on top."""
    _write(tmp_path, {"lib/bjt.lib": BJT_LIB})
    lines = _deck(_testbench(tmp_path, NESTED.replace(".model qs", ".model qfix npn bf=50\n.model qs"),
                             "  v: {fn: dc_voltage, node: out}\n"), ("bf_n",))
    start, end = lines.index(f".subckt {SUBCKT} params: bf_n=100"), lines.index(f".ends {SUBCKT}")
    inside, outside = lines[start:end], lines[:start]
    assert ".model qs npn bf={bf_n}" in inside and ".subckt stage vcc out" in inside  # stage uses qs
    assert ".subckt amp vcc out" in inside  # amp instantiates stage
    assert ".model qfix npn bf=50" in outside
    lines = _deck(_testbench(tmp_path, CSPARAM, "  v: {fn: dc_voltage, node: c}\n"), ("bf_n",))
    start = lines.index(f".subckt {SUBCKT} params: bf_n=100")
    assert {".param t_c=60", ".param fmax=1g", ".temp {t_c}"} <= set(lines[:start])
    assert ".csparam beta_vec={bf_n}" in lines[start:]
    lines = _deck(_testbench(tmp_path, LIB_SECTIONS.replace("{bf_n}", "100"), "  v: {fn: dc_voltage, node: c}\n"),
                  ("rb",))
    assert lines[1].startswith(".lib ") and lines[1].endswith(" typ")  # bf_n is not sampled: the library stays on top


@pytest.mark.ngspice
def test_a_sampled_temperature_runs_one_sample_per_deck(engine, tmp_path):
    """``.temp {t_c}`` with t_c sampled cannot be copies (one temperature per deck): the testbench runs
    one sample per deck, and each sample gets its own temperature."""
    testbench = _testbench(tmp_path, CSPARAM, "  vc: {fn: dc_voltage, node: c}\n")
    tb = load_testbench(testbench)
    assert tb.job(("bf_n",)).copies and not tb.job(("bf_n", "t_c")).copies
    result = engine.run(tb.job(("bf_n", "t_c")), np.array([[100.0, 0.0], [100.0, 27.0], [100.0, 100.0]]))
    assert (result.status == OK).all(), result.reason
    assert np.all(np.diff(result.values["vc"]) != 0)


@pytest.mark.ngspice
def test_monte_carlo_through_the_cli_equals_one_sample_per_deck(engine, tmp_path):
    """``optiyield yield`` on a BJT whose model card is ``bf={bf_n}`` (it failed in every sample before):
    every sample simulates, and each equals the same sample run alone in its own deck."""
    testbench = _testbench(tmp_path, BJT, "  vc: {fn: dc_voltage, node: c}\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: bjt\ntestbench: {testbench.name}\ndesign:\n  rb: {{start: 100k, min: 10k, max: 1meg}}\n"
                    "variation:\n  - {param: bf_n, dist: normal, sigma: 20}\n"
                    "specs:\n  vc: {min: 1, max: 4}\nrun: {samples: 30, seed: 5}\n")
    output = run_cli("yield", spec, "-n", 30, "--out", tmp_path / "out")
    assert "failed simulations: 0" in output
    with open(tmp_path / "out" / "samples.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 30 and {row["status"] for row in rows} == {"ok"}
    values = np.array([[float(row["rb"]), float(row["bf_n"])] for row in rows])
    job = load_testbench(testbench).job(("rb", "bf_n"))
    single = engine.run(dataclasses.replace(job, copies=False), values)
    assert (single.status == OK).all()
    vc = np.array([float(row["vc"]) for row in rows])
    np.testing.assert_allclose(vc, single.values["vc"], rtol=1e-4)
    assert np.ptp(vc) > 0.5


@pytest.mark.ngspice
def test_latin1_netlist_and_include_run(engine, tmp_path):
    """A Latin-1 µ in a comment of the netlist and of an included file: read (ngspice reads bytes), run."""
    _write(tmp_path, {"m.inc": "* 1 \xb5m devices\n.model qn npn bf=80\n"})
    netlist = BJT.replace(".model qn npn bf={bf_n} is=1e-15", ".include m.inc")
    values = _copies_and_single(engine, _testbench(tmp_path, netlist, "  vc: {fn: dc_voltage, node: c}\n"),
                                {"rb": [80e3, 120e3]})
    assert values["vc"][0] < values["vc"][1]
    assert "\xb5" in (tmp_path / "netlist.cir").read_bytes().decode("latin-1")


CONTROL = "* models\n.model qn npn bf=80\n.control\nshell touch /tmp/oy_pwned\n.endc\n"


@pytest.mark.parametrize("layout", ["include", "nested", "lib_section", "models_field"])
def test_control_in_an_included_file_is_refused(tmp_path, layout):
    """A ``.control`` block in any file the netlist reads is refused, naming that file and line."""
    bad = tmp_path / "lib" / "bad.inc"
    if layout == "include":
        netlist = BJT.replace(".model qn npn bf={bf_n} is=1e-15", ".include lib/bad.inc")
        _write(tmp_path, {"lib/bad.inc": CONTROL})
    elif layout == "nested":
        netlist = BJT.replace(".model qn npn bf={bf_n} is=1e-15", ".include lib/outer.inc")
        _write(tmp_path, {"lib/outer.inc": "* outer\n.include bad.inc\n", "lib/bad.inc": CONTROL})
    elif layout == "lib_section":
        netlist = BJT.replace(".model qn npn bf={bf_n} is=1e-15", ".lib lib/bad.inc typ")
        _write(tmp_path, {"lib/bad.inc": ".lib typ\n" + CONTROL + ".endl typ\n"})
    else:
        netlist = BJT.replace(".model qn npn bf={bf_n} is=1e-15", "")
        _write(tmp_path, {"lib/bad.inc": CONTROL})
    testbench = _testbench(tmp_path, netlist, "  vc: {fn: dc_voltage, node: c}\n")
    if layout == "models_field":
        testbench.write_text(testbench.read_text() + "models: [lib/bad.inc]\n")
    line = 4 if layout == "lib_section" else 3
    with pytest.raises(SpecError, match=rf"{bad}:{line}: \.control block in a file the netlist includes"):
        load_testbench(testbench)


def test_control_inside_a_subcircuit_of_the_netlist_is_refused(tmp_path):
    path = tmp_path / "n.cir"
    path.write_text("t\n.subckt a x\nR1 x 0 1\n.control\nrun\n.endc\n.ends\n.op\n.end\n")
    with pytest.raises(NetlistError, match=r"n.cir:4: .control blocks are not allowed"):
        parse_netlist(path)


@pytest.mark.parametrize(("files", "message"), [
    ({"a.inc": ".include b.inc\n", "b.inc": "* b\n.include a.inc\n"}, r"b.inc:2: include cycle: .*n.cir:2 → .*a.inc:1"),
    ({}, r"n.cir:2: included file .*a.inc not found"),
    ({"a.inc": "bin\x00ary"}, r"a.inc: not a text netlist \(NUL byte at offset 3\)"),
])
def test_unreadable_includes_are_clear_errors(tmp_path, files, message):
    _write(tmp_path, files)
    (tmp_path / "n.cir").write_text("t\n.include a.inc\nR1 a 0 1\n.op\n.end\n")
    with pytest.raises(NetlistError, match=message):
        parse_netlist(tmp_path / "n.cir")


def test_library_errors(tmp_path):
    """A missing section names the library's sections; a relative ``.lib`` inside an included file (which
    ngspice resolves against the top netlist's folder, not the file's) is refused with the fix."""
    _write(tmp_path, {"lib/bjt.lib": BJT_LIB, "corner.inc": ".lib lib/bjt.lib typ\n"})
    (tmp_path / "n.cir").write_text("t\n.lib lib/bjt.lib fast\nR1 a 0 1\n.op\n.end\n")
    with pytest.raises(NetlistError, match=r"n.cir:2: no section fast in library .*bjt.lib \(sections: typ, hot"):
        parse_netlist(tmp_path / "n.cir")
    (tmp_path / "n.cir").write_text("t\n.include corner.inc\nR1 a 0 1\n.op\n.end\n")
    with pytest.raises(NetlistError, match=r"corner.inc:1: `.lib lib/bjt.lib typ` in an included file"):
        parse_netlist(tmp_path / "n.cir")


def test_binary_netlist_is_a_clear_error(tmp_path):
    (tmp_path / "n.cir").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00")
    with pytest.raises(NetlistError, match=r"n.cir: not a text netlist"):
        parse_netlist(tmp_path / "n.cir")


@pytest.mark.ngspice
def test_model_placement_benchmark_smoke(tmp_path):
    """benchmarks/model_placement.py at 3 copies: both decks run, give the same numbers, figures written."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("model_placement", ROOT / "benchmarks" / "model_placement.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures = module.main(["--copies", "3", "--repeat", "1", "--no-scan", "--json", str(tmp_path / "f.json")])
    assert set(figures["card_cpu_seconds"][3]) == {"outside", "inside"}
    assert figures["card_inside_over_outside"][3] > 0
    assert "card_inside_over_outside" in json.loads((tmp_path / "f.json").read_text())


def test_backquote_in_a_meas_line_is_refused(tmp_path):
    """``.meas`` lines are copied into optiyield's control block, where ngspice runs `…` through the shell."""
    path = tmp_path / "n.cir"
    path.write_text("t\nV1 a 0 dc 0 ac 1\nR1 a 0 1k\n.ac dec 2 1k 10k\n"
                    ".meas ac g max vdb(a) `touch oy_pwned`\n.end\n")
    with pytest.raises(NetlistError, match=r"n.cir:5: a backquote in a .meas line is not allowed"):
        parse_netlist(path)


def test_fingerprint_follows_nested_include_files(tmp_path):
    """A job's identity (store rows, --resume) changes when a file included by an included file changes."""
    _write(tmp_path, {"lib/outer.inc": "* outer\n.include inner.inc\n", "lib/inner.inc": ".model qn npn bf=80\n"})
    netlist = BJT.replace(".model qn npn bf={bf_n} is=1e-15", ".include lib/outer.inc")
    testbench = _testbench(tmp_path, netlist, "  vc: {fn: dc_voltage, node: c}\n")
    before = load_testbench(testbench).job(("rb",)).fingerprint
    (tmp_path / "lib" / "inner.inc").write_text(".model qn npn bf=81\n")
    assert load_testbench(testbench).job(("rb",)).fingerprint != before


def test_include_paths_are_absolute_when_the_netlist_path_is_relative(tmp_path, monkeypatch):
    """Decks run in a private folder, so include lines must name absolute paths whatever the current folder."""
    _write(tmp_path, {"sub/n.cir": "t\n.include ../m.inc\n.lib ../m.lib typ\nR1 a 0 1\n.op\n.end\n",
                      "m.inc": ".model dd d\n", "m.lib": ".lib typ\n.model de d\n.endl\n"})
    monkeypatch.chdir(tmp_path)
    netlist = parse_netlist(Path("sub/n.cir"))
    root = tmp_path.resolve()
    assert netlist.hoisted == (f'.include "{root / "m.inc"}"', f'.lib "{root / "m.lib"}" typ')


def test_temperature_from_a_netlist_parameter(tmp_path):
    """``.temp {t_c}`` is the temperature the measures assume (e.g. noise figure), like ``.temp 60``."""
    from optiyield.testbench import simulation_temperature

    tb = load_testbench(_testbench(tmp_path, CSPARAM, "  vc: {fn: dc_voltage, node: c}\n"))
    assert simulation_temperature(tb.netlist) == 60.0
