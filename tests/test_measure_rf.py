"""RF measures (optiyield/measure/rf.py): S-parameters from .ac, noise figure from .noise.

The math is checked on two-ports with closed-form S-parameters, and against ngspice's own `.sp`
(on a passive network and on the LNA, each in one deck that holds both analyses); the noise figure
on a series 50 ohm resistor (F = 2, 3.0103 dB) through ngspice `.noise` and the testbench bindings.
"""

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from optiyield.errors import SpecError
from optiyield.measure import rf
from optiyield.sim.engine import OK, Engine
from optiyield.sim.ngspice.rawfile import read_raw
from optiyield.testbench import MeasureDef, load_testbench

ROOT = Path(__file__).resolve().parents[1]
Z0 = 50.0


def series_resistor(r, z_s, z_l, v_s=1.0):
    """Node voltages of a series resistor r between a source (v_s behind z_s) and a load z_l."""
    i = v_s / (z_s + r + z_l)
    return v_s - z_s * i, z_l * i, i  # v_in, v_out, current into the two-port


def test_series_resistor_between_equal_ports():
    """Series R between Z0 ports: S11 = R/(R + 2 Z0), S21 = 2 Z0/(R + 2 Z0)."""
    r = np.array([0.0, 25.0, 50.0, 150.0])
    v_in, v_out, i_in = series_resistor(r, Z0, Z0)
    np.testing.assert_allclose(rf.s11_from_voltage(v_in, 1.0), r / (r + 2 * Z0), atol=1e-15)
    np.testing.assert_allclose(rf.s11_from_current(v_in, i_in, Z0), r / (r + 2 * Z0), atol=1e-15)
    np.testing.assert_allclose(rf.s21(v_out, 1.0, Z0, Z0), 2 * Z0 / (r + 2 * Z0), atol=1e-15)
    np.testing.assert_allclose(rf.transducer_gain(v_out, 1.0, Z0, Z0), np.abs(2 * Z0 / (r + 2 * Z0)) ** 2)


def test_matched_attenuator_and_matched_load():
    """A 6.02 dB T-pad (R1 = R2 = Z0/3, shunt 4 Z0/3) is matched: S11 = 0, S21 = 1/2."""
    r1, r3 = Z0 / 3, 4 * Z0 / 3
    z_after = r1 + Z0                       # series arm and load
    shunt = r3 * z_after / (r3 + z_after)
    z_in = r1 + shunt
    assert z_in == pytest.approx(Z0)
    v_in = z_in / (Z0 + z_in)
    v_out = v_in * shunt / z_in * Z0 / z_after
    assert abs(rf.s11_from_voltage(v_in, 1.0)) < 1e-15
    assert rf.s21(v_out, 1.0, Z0, Z0) == pytest.approx(0.5)
    assert rf.to_db(rf.s21(v_out, 1.0, Z0, Z0)) == pytest.approx(-6.0206, abs=1e-4)
    assert rf.min_db(np.array([rf.s11_from_voltage(v_in, 1.0)] * 3)) == -np.inf


def test_unequal_real_ports_transducer_gain_is_power_ratio():
    """200 ohm source, 50 ohm load: G_T = P_load / P_available = |S21|^2 for any two-port."""
    r = np.array([10.0, 100.0, 1000.0])
    v_in, v_out, _ = series_resistor(r, 200.0, 50.0, v_s=2.0)
    p_load = np.abs(v_out) ** 2 / 50.0
    p_avs = 2.0**2 / (4 * 200.0)
    np.testing.assert_allclose(rf.transducer_gain(v_out, 2.0, 200.0, 50.0), p_load / p_avs)
    np.testing.assert_allclose(np.abs(rf.s21(v_out, 2.0, 200.0, 50.0)) ** 2, p_load / p_avs)
    # a direct connection of 200 to 50 ohm: mismatch loss 1 - |(50-200)/(50+200)|^2 = 0.64
    v_in, v_out, _ = series_resistor(0.0, 200.0, 50.0)
    assert rf.transducer_gain(v_out, 1.0, 200.0, 50.0) == pytest.approx(0.64)
    assert rf.s11_from_voltage(v_in, 1.0) == pytest.approx(-0.6)


def test_complex_reference_uses_conjugate():
    """Power waves: an input impedance equal to Z0* reflects nothing."""
    z0 = 30 + 40j
    assert abs(rf.reflection_coefficient(np.conj(z0), z0)) < 1e-15
    assert abs(rf.reflection_coefficient(z0, z0)) > 0.5
    v_in, i_in = np.conj(z0) * 0.01, 0.01
    assert abs(rf.s11_from_current(v_in, i_in, z0)) < 1e-15


def test_reducers_and_nan():
    freq = np.linspace(1e9, 10e9, 91)
    peak, f0, width = 15.0, 4e9, 2e9
    gain_db = peak - 3.0 * ((freq - f0) / (width / 2)) ** 2  # -3 dB at f0 +- width/2, exactly
    gain_db = np.vstack([gain_db, gain_db, peak - 3.0 * ((freq - 1e9) / 1e9) ** 2])
    gain_db[1, 10] = np.nan
    bw = rf.gain_bandwidth(freq, gain_db)
    assert bw[0] == pytest.approx(width, rel=2e-3)  # linear interpolation of a parabola between 100 MHz points
    assert np.isnan(bw[1])  # non-finite sample
    assert np.isnan(bw[2])  # peak at the sweep start: only one crossing
    s = 10 ** (gain_db / 20)
    np.testing.assert_allclose(rf.max_db(s)[[0, 2]], [peak, peak])
    assert rf.value_db_at(freq, s[0], 4e9) == pytest.approx(peak)
    assert np.isnan(rf.value_db_at(freq, s[0], 11e9))
    assert np.isnan(rf.min_db(s)[1])


def test_noise_factor_temperatures():
    """F_T from inoise; IEEE F moves only the source to 290 K: F = 1 + (F_T - 1) T / 290."""
    t = 300.15
    rs = 50.0
    source_only = np.sqrt(4 * rf.BOLTZMANN * t * rs)
    assert rf.noise_factor(source_only, rs, t, None) == pytest.approx(1.0)
    assert rf.noise_factor(source_only, rs, t) == pytest.approx(1.0)  # a noiseless two-port stays 0 dB
    doubled = np.sqrt(2) * source_only
    assert 10 * np.log10(rf.noise_factor(doubled, rs, t, None)) == pytest.approx(3.0103, abs=1e-4)
    assert rf.noise_factor(doubled, rs, t) == pytest.approx(1 + t / 290)
    assert rf.noise_figure_min_db(np.array([doubled, source_only]), rs, t, None) == pytest.approx(0.0)


def test_bindings_are_checked():
    assert MeasureDef.model_validate({"fn": "s11_min_db", "in": "in", "source": "VS", "z0": "200"}).z0 == 200
    with pytest.raises(ValueError, match="needs `z0`"):
        MeasureDef.model_validate({"fn": "s11_min_db", "in": "in", "source": "VS"})
    with pytest.raises(ValueError, match="needs `zl`"):
        MeasureDef.model_validate({"fn": "gt_max_db", "out": "out", "source": "VS", "z0": 200})
    with pytest.raises(ValueError, match="does not take `zl`"):
        MeasureDef.model_validate({"fn": "s11_min_db", "in": "in", "source": "VS", "z0": 200, "zl": 50})
    with pytest.raises(ValueError, match="needs `f`"):
        MeasureDef.model_validate({"fn": "nf_db_at", "z0": 200})


# ---------------------------------------------------------------- through ngspice

def _run(deck: str, tmp_path: Path) -> dict:
    (tmp_path / "deck.cir").write_text(deck)
    done = subprocess.run(["ngspice", "-b", "-r", "out.raw", "deck.cir"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    plots = {}
    for plot in read_raw(tmp_path / "out.raw"):
        plots.setdefault(plot.kind, plot)
    return plots


def _check_against_sp(plots: dict, z_s: float, z_l: float, src_vector: str, inp: str, out: str) -> None:
    ac, sp = plots["ac"], plots["sp"]
    np.testing.assert_allclose(np.real(ac["frequency"]), np.real(sp["frequency"]))
    v_s = ac[src_vector]
    s11 = rf.s11_from_voltage(ac[f"v({inp})"], v_s)
    s11_i = rf.s11_from_current(ac[f"v({inp})"], -ac["i(vs)"], z_s)
    s21 = rf.s21(ac[f"v({out})"], v_s, z_s, z_l)
    np.testing.assert_allclose(s11, sp["v(s_1_1)"], atol=1e-9)
    np.testing.assert_allclose(s11_i, sp["v(s_1_1)"], atol=1e-9)
    np.testing.assert_allclose(s21, sp["v(s_2_1)"], atol=1e-9)
    np.testing.assert_allclose(rf.transducer_gain(ac[f"v({out})"], v_s, z_s, z_l), np.abs(sp["v(s_2_1)"]) ** 2,
                               rtol=1e-9)


@pytest.mark.ngspice
def test_passive_network_matches_ngspice_sp(tmp_path):
    """An LCR two-port between a 200 ohm and a 50 ohm port: the .ac formulas equal ngspice's .sp.

    The same deck holds a copy driven by a plain source and resistors (read by .ac) and a copy between
    ngspice port sources (read by .sp)."""
    deck = """* passive two-port, .ac with plain terminations versus .sp with ports
VS src 0 dc 0 ac 1
RS src a 200
L1 a b 5n
C1 b 0 1p
R1 b c 30
RL c 0 50
VP1 pa 0 dc 0 ac 1 portnum 1 z0 200
L1p pa bp 5n
C1p bp 0 1p
R1p bp pc 30
VP2 pc 0 dc 0 ac 0 portnum 2 z0 50
.ac lin 10 1G 10G
.sp lin 10 1G 10G
.end
"""
    _check_against_sp(_run(deck, tmp_path), 200.0, 50.0, "v(src)", "a", "c")


@pytest.mark.ngspice
def test_lna_matches_ngspice_sp(tmp_path):
    """The LNA between ngspice port sources (200 / 50 ohm) in one deck with .ac and .sp at 10 points.

    An ngspice port source is an ideal source (node ``vs#res``) behind its z0, so in .ac it is the
    same termination as VS + RS of circuits/lna/netlist.cir."""
    text = (ROOT / "circuits" / "lna" / "netlist.cir").read_text()
    text = text.replace("../models/", str(ROOT / "circuits" / "models") + "/")
    text = re.sub(r"(?m)^VS .*\n^RS .*$", "VS in 0 dc {Vbmain} ac 1 portnum 1 z0 200", text)
    text = re.sub(r"(?m)^RL .*$", "VL out 0 dc 0 ac 0 portnum 2 z0 50", text)
    text = re.sub(r"(?m)^\.noise .*$", ".sp lin 10 1G 10G", text)
    text = re.sub(r"(?m)^\.ac .*$", ".ac lin 10 1G 10G", text)
    plots = _run(text, tmp_path)
    _check_against_sp(plots, 200.0, 50.0, "v(vs#res)", "in", "out")
    assert rf.max_db(plots["sp"]["v(s_2_1)"]) > 10  # it amplifies


@pytest.mark.ngspice
def test_series_resistor_noise_figure_through_testbench(tmp_path):
    """Series 50 ohm between a 50 ohm source and a noiseless load: F_T = 2 (3.0103 dB), and the
    IEEE figure (source at 290 K, resistor at 27 C) is 1 + 300.15/290 (3.0859 dB)."""
    (tmp_path / "series.cir").write_text("""* series resistor two-port
.param r=50
VS src 0 dc 0 ac 1
RS src in 50
R1 in out {r}
RL out 0 50 noisy=0
.ac dec 5 1meg 1g
.noise v(out) VS dec 5 1meg 1g
.end
""")
    (tmp_path / "series.yaml").write_text("""name: series
netlist: series.cir
measures:
  nf_t: {fn: nf_min_db, z0: 50, t0: 300.15}
  nf: {fn: nf_min_db, z0: 50}
  nf_1g: {fn: nf_db_at, z0: 50, f: 1G}
  s11: {fn: s11_min_db, in: in, source: VS, z0: 50}
  s21: {fn: s21_db_at, out: out, source: VS, z0: 50, zl: 50, f: 10meg}
""")
    testbench = load_testbench(tmp_path / "series.yaml")
    assert not testbench.copies
    results = Engine(workers=1).run(testbench.job(("r",)), np.array([[50.0], [150.0]]))
    assert (results.status == OK).all(), results.reason
    v = results.values
    # 1e-5 dB: ngspice uses k = 1.3806226e-23 (CODATA 1973), 3.5e-7 below the exact SI value
    np.testing.assert_allclose(v["nf_t"], 10 * np.log10([2.0, 4.0]), atol=1e-5)
    np.testing.assert_allclose(v["nf"], 10 * np.log10(1 + np.array([1.0, 3.0]) * 300.15 / 290), atol=1e-5)
    np.testing.assert_allclose(v["nf_1g"], v["nf"], atol=1e-9)
    np.testing.assert_allclose(v["s11"], 20 * np.log10([50 / 150, 150 / 250]), atol=1e-9)
    np.testing.assert_allclose(v["s21"], 20 * np.log10([100 / 150, 100 / 250]), atol=1e-9)


@pytest.mark.ngspice
def test_port_measures_in_batched_copies(tmp_path):
    """Without .noise the deck is replicated as copies; S11, S21, G_T of a series resistor between a
    200 ohm source and a 50 ohm load, per copy."""
    (tmp_path / "pad.cir").write_text("* series resistor, 200 / 50 ohm ports\n.param r=50\nVS src 0 dc 0 ac 1\n"
                                      "RS src in 200\nR1 in out {r}\nRL out 0 50\n.ac lin 3 1meg 3meg\n.end\n")
    (tmp_path / "pad.yaml").write_text("""name: pad
netlist: pad.cir
measures:
  s11: {fn: s11_db_at, in: in, source: VS, z0: 200, f: 2meg}
  s21: {fn: s21_db_at, out: out, source: VS, z0: 200, zl: 50, f: 2meg}
  gt: {fn: gt_max_db, out: out, source: VS, z0: 200, zl: 50}
""")
    testbench = load_testbench(tmp_path / "pad.yaml")
    assert testbench.copies
    r = np.array([10.0, 50.0, 120.0, 350.0])  # not 0 (ngspice makes it 1 mohm) nor 150 (matched: -inf dB)
    results = Engine(workers=1).run(testbench.job(("r",)), r[:, None])
    assert (results.status == OK).all(), results.reason
    s11 = (r + 50 - 200) / (r + 50 + 200)
    gt = 4 * (50 / (250 + r)) ** 2 * 200 / 50
    np.testing.assert_allclose(results.values["s11"], 20 * np.log10(np.abs(s11)), atol=1e-9)
    np.testing.assert_allclose(results.values["gt"], 10 * np.log10(gt), atol=1e-9)
    np.testing.assert_allclose(results.values["s21"], results.values["gt"], atol=1e-9)


def test_port_measure_needs_a_known_source(tmp_path):
    (tmp_path / "t.cir").write_text("* t\nVS src 0 ac 1\nRS src in 50\nRL in 0 50\n.ac lin 3 1g 2g\n.end\n")
    (tmp_path / "t.yaml").write_text("name: t\nnetlist: t.cir\nmeasures:\n"
                                     "  s11: {fn: s11_min_db, in: in, source: VX, z0: 50}\n")
    with pytest.raises(SpecError, match="no voltage source named 'VX'"):
        load_testbench(tmp_path / "t.yaml")
