"""The transient measure layer: Fourier over whole periods, powers, oscillation frequency, swing, sweeps
and measure expressions — analytic waveforms first, then the same figures through ngspice."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from optiyield.errors import SpecError
from optiyield.measure import expr, sweep, tran
from optiyield.sim.engine import Engine
from optiyield.testbench import load_testbench

CIRCUITS = Path(__file__).parent / "circuits"


def _nonuniform_time(stop: float, points: int, seed: int = 0) -> np.ndarray:
    """A strictly increasing, irregular time axis like ngspice's (steps vary by 4x)."""
    steps = np.random.default_rng(seed).uniform(0.5, 2.0, points)
    return np.concatenate([[0.0], np.cumsum(steps)]) * stop / steps.sum()


@settings(max_examples=40, deadline=None)
@given(st.floats(0.01, 2.0), st.floats(-np.pi, np.pi), st.floats(-1, 1), st.integers(1, 4), st.integers(1, 5))
def test_harmonic_phasor_recovers_a_sine(amplitude, phase, offset, harmonic, periods):
    f0 = 1e9
    t = _nonuniform_time(8 / f0, 6000)
    wave = offset + amplitude * np.cos(2 * np.pi * harmonic * f0 * t + phase) + 0.3 * np.cos(2 * np.pi * 7 * f0 * t)
    t1 = t[-1] - periods / f0
    expected = amplitude * np.exp(1j * (2 * np.pi * harmonic * f0 * t1 + phase))
    got = tran.harmonic_phasor(t, wave[None, :], f0, periods=periods, harmonic=harmonic)[0]
    assert abs(got - expected) < 2e-3 * amplitude + 1e-6
    assert tran.harmonic_phasor(t, wave[None, :], f0, periods, harmonic=0)[0].real == pytest.approx(offset, abs=2e-3)


def test_powers_of_a_resistive_port():
    f0, t = 2e9, np.linspace(0, 5e-9, 20001)
    v = 0.3 * np.sin(2 * np.pi * f0 * t)
    i = v / 50.0
    assert tran.harmonic_power(t, v[None], 50.0, f0, periods=4)[0] == pytest.approx(0.09 / 100, rel=1e-5)
    assert tran.delivered_power(t, v[None], i[None], f0, periods=4)[0] == pytest.approx(0.09 / 100, rel=1e-5)
    # a reactive current (90 degrees) delivers no power
    i_reactive = 0.3 / 50 * np.cos(2 * np.pi * f0 * t)
    assert abs(tran.delivered_power(t, v[None], i_reactive[None], f0, periods=4)[0]) < 1e-9
    assert tran.to_dbm([1e-3, 0.0])[0] == pytest.approx(0.0) and np.isnan(tran.to_dbm([0.0])[0])
    assert tran.from_dbm(10.0) == pytest.approx(1e-2)


def test_average_frequency_and_swing():
    t = _nonuniform_time(20e-9, 20000, seed=3)
    v = 0.6 + 0.25 * np.sin(2 * np.pi * 3.3e9 * t)
    assert tran.average(t, v[None], start=2e-9)[0] == pytest.approx(0.6, abs=2e-3)
    assert tran.average(t, v[None], f0=3.3e9, periods=10)[0] == pytest.approx(0.6, abs=1e-4)
    assert tran.oscillation_frequency(t, v[None], start=2e-9)[0] == pytest.approx(3.3e9, rel=1e-4)
    assert tran.swing(t, v[None], start=2e-9)[0] == pytest.approx(0.25, rel=1e-3)
    flat = np.full((1, t.size), 0.6)
    assert np.isnan(tran.oscillation_frequency(t, flat, start=2e-9)[0])       # no oscillation: NaN
    assert np.isnan(tran.harmonic_amplitude(t, v[None], 1e6, periods=1)[0])   # window longer than the run


def test_compression_point_of_a_known_curve():
    pin = np.arange(-30.0, 11.0, 1.0)[None, :]
    gain = 20.0 - np.clip(pin + 5.0, 0, None) * 0.5          # linear until -5 dBm, then 0.5 dB/dB
    out = sweep.compression_point(pin, pin + gain, db=1.0)
    assert out[0, 0] == pytest.approx(-3.0 + 19.0)             # 1 dB down at pin = -3 dBm
    assert sweep.compression_point(pin, pin + gain, 1.0, output=False)[0, 0] == pytest.approx(-3.0)
    assert np.isnan(sweep.compression_point(pin, pin + 20.0, 1.0)[0, 0])   # never compresses


def test_expression_grammar():
    tree = expr.parse("100 * dbm_to_w(a) / -b + db20(2)")
    assert expr.names(tree) == {"a", "b"}
    got = expr.evaluate(tree, {"a": np.array([[0.0]]), "b": np.array([[2e-3]])})
    assert got[0, 0] == pytest.approx(-50 + 20 * np.log10(2))
    for bad, message in [("__import__('os')", "unknown function"), ("a.real", "Attribute"),
                         ("a[0]", "Subscript"), ("a if b else c", "IfExp"), ("'x'", "numbers"), ("a +", "parse")]:
        with pytest.raises(expr.ExprError, match=message):
            expr.parse(bad)
    assert expr.sweep_valued(expr.parse("sweep_max(x) + y"), lambda n: n == "x") is False
    assert expr.sweep_valued(expr.parse("db10(x) + y"), lambda n: n == "x") is True


@pytest.mark.ngspice
def test_transient_measures_and_sweep_through_ngspice():
    """tests/circuits/tran_probe.cir: amplitude `amp` behind 50 ohm into 50 ohm (so v(in) = amp/2), a
    tanh limiter with small-signal voltage gain 4, and a dc load of vdd^2/100 ohm; 2 ps step at 1 GHz."""
    bench = load_testbench(CIRCUITS / "tran_probe.yaml")
    assert bench.copies and bench.sweep_points == 7
    vdd = np.array([[1.0], [1.2]])
    result = Engine(workers=2).run(bench.job(["vdd"]), vdd)
    assert (result.status == "ok").all()
    v = result.values
    np.testing.assert_allclose(v["pload"], 0.1**2 / 100, rtol=1e-4)          # 0.2 V source amplitude
    np.testing.assert_allclose(v["pin_dbm"], -10.0, atol=1e-3)
    np.testing.assert_allclose(v["pdc"], vdd[:, 0] ** 2 / 100, rtol=1e-6)
    np.testing.assert_allclose(v["fosc"], 1e9, rtol=1e-6)
    np.testing.assert_allclose(v["swing"], 0.4, rtol=1e-4)                    # largest amp 0.8 -> 0.4 V
    np.testing.assert_allclose(v["span_w"], (0.4**2 - 0.005**2) / 100, rtol=1e-4)
    # the limiter's true describing function on the same sweep points, by numpy
    amps = np.array(bench.sweep.values) / 2
    phase = np.linspace(0, 2 * np.pi, 4096, endpoint=False)
    lim = 0.5 * np.tanh(4 * amps[:, None] * np.sin(phase) / 0.5)
    first = 2 * np.abs((lim * np.exp(-1j * phase)).mean(axis=1))
    third = 2 * np.abs((lim * np.exp(-3j * phase)).mean(axis=1))
    pin, pout = 10 * np.log10(amps**2 / 100 / 1e-3), 10 * np.log10(first**2 / 100 / 1e-3)
    np.testing.assert_allclose(v["p1db"], sweep.compression_point(pin[None], pout[None])[0, 0], atol=0.01)
    np.testing.assert_allclose(v["gain_db"], 20 * np.log10(first[0] / amps[0]), atol=1e-3)   # ~4x: 12.04 dB
    np.testing.assert_allclose(v["h3"], third[-1], rtol=1e-3)
    efficiency = 100 * first**2 / 100 / (vdd**2 / 100)
    np.testing.assert_allclose(v["eff_max"], efficiency.max(axis=1), rtol=1e-3)


def _write(tmp_path, measures, sweep=None):
    doc = {"name": "t", "netlist": str(CIRCUITS / "tran_probe.cir"), "measures": measures}
    if sweep:
        doc["sweep"] = sweep
    path = tmp_path / "tb.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("measures, sweep, field, message", [
    ({"p": {"fn": "harmonic_power", "out": "in", "f0": "1G"}}, None, "measures.p", "needs `r`"),
    ({"p": {"fn": "average_power", "supply": "VDD"}}, None, "measures.p", "needs a window"),
    ({"p": {"fn": "swing", "out": "in", "periods": 2, "start": "1n"}}, None, "measures.p", "give `f0` too"),
    ({"p": {"expr": "q + 1"}}, None, "measures.p.expr", "unknown name 'q'"),
    ({"p": {"expr": "open(1)"}}, None, "measures.p", "unknown function"),
    ({"a": {"expr": "b"}, "b": {"expr": "a"}}, None, "measures", "cycle"),
    ({"p": {"fn": "swing", "out": "in", "start": "1n", "reduce": "max"}}, None, "measures.p", "no `sweep`"),
    ({"p": {"fn": "swing", "out": "in", "start": "1n"}}, {"param": "amp", "values": [0.1, 0.2]}, "measures.p",
     "one value per sample"),
    ({"p": {"expr": "amp * 2"}}, {"param": "amp", "values": [0.1]}, "measures.p", "one value per sample"),
    ({"p": {"fn": "swing", "out": "in", "start": "1n", "at": 0.1}}, {"param": "nope", "values": [0.1]},
     "sweep.param", "no `.param nope"),
])
def test_bad_transient_testbenches_name_the_field(tmp_path, measures, sweep, field, message):
    with pytest.raises(SpecError) as info:
        load_testbench(_write(tmp_path, measures, sweep))
    assert f": {field}" in str(info.value) and message in str(info.value)


def test_sweep_parameter_cannot_also_vary(tmp_path):
    bench = load_testbench(_write(tmp_path, {"p": {"fn": "swing", "out": "in", "start": "1n", "at": 0.1}},
                                  {"param": "amp", "values": [0.1, 0.2]}))
    with pytest.raises(SpecError, match="sweep.param"):
        bench.job(["amp"])
