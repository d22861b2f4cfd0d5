"""Parasitic-aware devices (optiyield/parasitics.py): the regression Cgs/Cgd/Cds added to every MOSFET,
measured back through ngspice; the least-squares fit and its command; errors; a real circuit."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import run_cli, simulate_points
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from optiyield import testbench as testbench_module
from optiyield.cli import app
from optiyield.errors import SpecError
from optiyield.optim.evaluator import Evaluator
from optiyield.parasitics import (
    DEFAULT_COEFFICIENTS,
    ParasiticCoefficients,
    ParasiticError,
    Regression,
    add_parasitics,
    fit,
    fit_table,
    parse_mosfet,
)
from optiyield.sim.engine import OK, Engine
from optiyield.sim.job import Extraction, SimJob
from optiyield.spec import Spec, load_spec
from optiyield.testbench import build_testbench, load_testbench

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "circuits" / "models" / "ptm45lp.lib"

# One NMOS between three voltage sources. AG / AD are the ac magnitudes of the gate / drain sources, so
# one sample drives the gate (Cgs, Cgd show up in the source / drain currents) and another the drain (Cds).
ONE_NMOS = f"""one NMOS with per-sample geometry
.param W1=4u NF1=2 M1=3 AG=1 AD=0
.include "{MODELS}"
VG g 0 dc 0.8 ac {{AG}}
VD d 0 dc 1.0 ac {{AD}}
VS s 0 dc 0
M1 d g s 0 nch W = {{W1}} L=45n
+ nf={{NF1}} m={{M1}}
.op
.ac lin 1 1G 1G
.end
"""


def _testbench(tmp_path: Path, netlist: str, **options: object):
    (tmp_path / "n.cir").write_text(netlist)
    data = {"name": "t", "netlist": "n.cir", "measures": {"p": {"fn": "dc_power", "supply": "VD"}}, **options}
    (tmp_path / "tb.yaml").write_text(yaml.safe_dump(data))
    return load_testbench(tmp_path / "tb.yaml")


def _admittances(waveforms, count):
    """Per sample: Im of the currents into the gate and out of the drain and source nodes, / ω (farads)."""
    omega = 2 * np.pi * waveforms.axis("ac")[0]
    current = {src: waveforms.current("ac", src)[:, 0] for src in ("vg", "vd", "vs")}
    values = {"gate": np.imag(-current["vg"]) / omega, "drain": np.imag(current["vd"]) / omega,
              "source": np.imag(current["vs"]) / omega}
    return Extraction(values, [None] * count)


def test_default_coefficients_are_the_vga_papers():
    c = DEFAULT_COEFFICIENTS
    assert (c.cgs.a, c.cgs.b, c.cgs.c) == (-18.46, 0.676, 14.93)
    assert (c.cgd.a, c.cgd.b, c.cgd.c) == (-17.83, 0.683, 13.87)
    assert (c.cds.a, c.cds.b, c.cds.c) == (-29.02, 0.907, 23.45)
    values = c.femtofarads(n=[2, 1], w_um=[2.0, 1.0], m=[3, 1])
    np.testing.assert_allclose(values["cgs"], [(-18.46 + 0.676 * 2 + 14.93 * 2) * 3, 0.0])  # 2nd clipped
    np.testing.assert_allclose(values["cds"], [(-29.02 + 0.907 * 2 + 23.45 * 2) * 3, 0.0])


def test_parse_mosfet_reads_expressions_numbers_and_defaults():
    device = parse_mosfet("M1 d g s 0 nch W = {WN1*2} L=45n nf={NF} m=5 as={2.5*W*45n} delvto={dvth}")
    assert (device.drain, device.gate, device.source) == ("d", "g", "s")
    assert (device.w, device.nf, device.m) == ("WN1*2", "NF", "5")
    device = parse_mosfet("mx out in 0 0 nch l=45n w=2.5u")
    assert (device.w, device.nf, device.m) == ("2.5e-06", "1", "1")
    with pytest.raises(ParasiticError, match="M3: no `W=`"):
        parse_mosfet("M3 d g s 0 nch L=45n")


def test_injected_capacitors_are_the_regression_measured_in_ngspice(tmp_path):
    """The ac currents of a biased NMOS with and without parasitics differ by exactly jω·C of the formula,
    with W, nf, m varied per sample in one batched deck; the third geometry is clipped to 0 (Cgs, Cgd, Cds
    all negative at N=1, w=1 µm)."""
    plain = _testbench(tmp_path, ONE_NMOS)
    with_par = _testbench(tmp_path, ONE_NMOS, parasitics="regression")
    assert plain.parasitics is None and with_par.parasitics == DEFAULT_COEFFICIENTS
    assert len(with_par.netlist.body) == len(plain.netlist.body) + 3
    geometry = np.array([[4e-6, 2, 3], [12e-6, 4, 1], [1e-6, 1, 2]])  # W (m), nf, m
    samples = np.vstack([np.column_stack([geometry, np.tile(drive, (3, 1))]) for drive in ([1, 0], [0, 1])])
    names = ("W1", "NF1", "M1", "AG", "AD")
    measured = {}
    with Engine(workers=1) as engine:
        for label, tb in (("plain", plain), ("par", with_par)):
            job = SimJob(netlist=tb.netlist, names=names, measures=("gate", "drain", "source"),
                         extract=_admittances, copies=True, expected=("ac",))
            result = engine.run(job, samples)
            assert (result.status == OK).all(), result.reason
            measured[label] = result.values
    delta = {k: (measured["par"][k] - measured["plain"][k]) * 1e15 for k in ("gate", "drain", "source")}  # fF
    expected = DEFAULT_COEFFICIENTS.femtofarads(geometry[:, 1], geometry[:, 0] / geometry[:, 1] * 1e6, geometry[:, 2])
    assert expected["cgs"][0] > 10 and expected["cds"][1] > 10 and all(v[2] == 0 for v in expected.values())
    gate_drive, drain_drive = slice(0, 3), slice(3, 6)
    np.testing.assert_allclose(delta["gate"][gate_drive], expected["cgs"] + expected["cgd"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(delta["source"][gate_drive], expected["cgs"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(delta["drain"][gate_drive], expected["cgd"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(delta["source"][drain_drive], expected["cds"], rtol=1e-6, atol=1e-6)


def test_subcircuit_devices_get_parasitics_and_same_node_caps_are_left_out(tmp_path):
    netlist = f"""sub
.param W=2u
.include "{MODELS}"
.subckt amp in out vdd
M1 out in 0 0 nch W={{W}} L=45n
Rd vdd out 1k
.ends amp
VD vdd 0 dc 1
VIN in 0 dc 0.6 ac 1
X1 in out vdd amp
M2 vdd vdd out 0 nch W=3u L=45n
.op
.end
"""
    tb = _testbench(tmp_path, netlist, parasitics="regression")
    hoisted = [line for line in tb.netlist.hoisted if line.startswith("Cpar")]
    assert [line.split()[:3] for line in hoisted] == [["Cpar_gs_M1", "in", "0"], ["Cpar_gd_M1", "in", "out"],
                                                      ["Cpar_ds_M1", "out", "0"]]
    body = [line.split()[:3] for line in tb.netlist.body if line.startswith("Cpar")]
    assert body == [["Cpar_gs_M2", "vdd", "out"], ["Cpar_ds_M2", "vdd", "out"]]  # gate = drain: no Cgd


def _rows(coefficients: ParasiticCoefficients, n, w, m) -> dict[str, np.ndarray]:
    return {k: (r.a + r.b * n + r.c * w) * m for k in ("cgs", "cgd", "cds") for r in [coefficients.regression(k)]}


@settings(max_examples=40, deadline=None)
@given(coef=st.lists(st.floats(-50, 50), min_size=9, max_size=9),
       seed=st.integers(0, 2**31 - 1), rows=st.integers(4, 40))
def test_fit_recovers_known_coefficients(coef, seed, rows):
    rng = np.random.default_rng(seed)
    n = rng.integers(1, 65, rows).astype(float)
    w = rng.uniform(0.5, 10.0, rows)
    m = rng.integers(1, 9, rows).astype(float)
    if np.linalg.matrix_rank(np.column_stack([np.ones(rows), n, w])) < 3:
        return
    truth = ParasiticCoefficients(**{k: Regression(a=coef[3 * i], b=coef[3 * i + 1], c=coef[3 * i + 2])
                                     for i, k in enumerate(("cgs", "cgd", "cds"))})
    result = fit(n, w, m, _rows(truth, n, w, m))
    for name in ("cgs", "cgd", "cds"):
        got, want = result.coefficients.regression(name), truth.regression(name)
        np.testing.assert_allclose([got.a, got.b, got.c], [want.a, want.b, want.c], atol=1e-8)
        assert result.rms_ff[name] < 1e-8


def test_fit_with_noise_reports_r2_and_rejects_degenerate_tables():
    rng = np.random.default_rng(3)
    n, w, m = rng.integers(1, 33, 200).astype(float), rng.uniform(0.5, 5, 200), rng.integers(1, 5, 200).astype(float)
    clean = _rows(DEFAULT_COEFFICIENTS, n, w, m)
    noisy = {k: v + rng.normal(0, 1.0, v.size) * m for k, v in clean.items()}  # 1 fF per unit
    result = fit(n, w, m, noisy)
    assert 0.9 < result.r2["cgs"] < 1.0
    assert abs(result.coefficients.cgs.c - 14.93) < 0.3 and 0.8 < result.rms_ff["cgs"] / np.sqrt(np.mean(m**2)) < 1.2
    with pytest.raises(ParasiticError, match="vary independently"):
        fit(np.full(5, 4.0), w[:5], m[:5], {k: v[:5] for k, v in clean.items()})
    with pytest.raises(ParasiticError, match="M must be positive"):
        fit(n, w, np.zeros_like(m), clean)


def test_fit_command_writes_coefficients_the_testbench_accepts(tmp_path):
    rng = np.random.default_rng(7)
    n, w, m = rng.integers(1, 17, 30).astype(float), rng.uniform(1, 6, 30), rng.integers(1, 4, 30).astype(float)
    truth = ParasiticCoefficients(cgs=Regression(a=-5, b=0.5, c=10), cgd=Regression(a=-4, b=0.4, c=6),
                                  cds=Regression(a=-8, b=0.9, c=12))
    caps = _rows(truth, n, w, m)
    table = tmp_path / "extracted.csv"
    lines = ["N,w_um,M,cgs_fF,cgd_fF,cds_fF"] + [
        ",".join(repr(float(x)) for x in (n[i], w[i], m[i], caps["cgs"][i], caps["cgd"][i], caps["cds"][i]))
        for i in range(30)]
    table.write_text("\n".join(lines) + "\n")
    out = run_cli("fit-parasitics", table, "--out", tmp_path / "fit.yaml")
    assert "fitted to 30 rows" in out and "1.00000" in out and "coefficients written" in out
    tb = _testbench(tmp_path, ONE_NMOS, parasitics="regression", parasitic_coefficients="fit.yaml")
    assert tb.parasitics is not None
    np.testing.assert_allclose([tb.parasitics.cds.a, tb.parasitics.cds.b, tb.parasitics.cds.c], [-8, 0.9, 12])
    assert tb.parasitics.rows == 30 and tb.parasitics.source == "extracted.csv"
    assert "-8*1e-15" not in " ".join(tb.netlist.body) and "(-8) + 0.9*(NF1)" in " ".join(tb.netlist.body)
    (tmp_path / "bad.csv").write_text("N,w,M\n1,2,3\n")
    with pytest.raises(ParasiticError, match="missing columns w_um, cgs_fF"):
        fit_table(tmp_path / "bad.csv")
    result = CliRunner().invoke(app, ["fit-parasitics", str(tmp_path / "bad.csv")])
    assert result.exit_code == 2 and "bad.csv: missing columns" in result.output
    assert "Example" in run_cli("fit-parasitics", "--help")


@pytest.mark.parametrize(("options", "path", "message"), [
    ({"parasitics": "foo"}, "parasitics", "expected `none`"),
    ({"parasitics": True}, "parasitics", "got True"),
    ({"parasitic_coefficients": "c.yaml"}, "parasitic_coefficients", "used by `parasitics: regression`"),
    ({"parasitics": "regression", "parasitic_coefficients": "missing.yaml"}, "parasitic_coefficients", "not found"),
    ({"parasitics": "regression", "parasitic_coefficients": {"cgs": [1, 2, 3], "cgd": [1, 2, 3]}},
     "parasitic_coefficients.cds", "required key is missing"),
    ({"parasitics": "regression", "parasitic_coefficients": {"cgs": [1, 2], "cgd": [1, 2, 3], "cds": [1, 2, 3]}},
     "parasitic_coefficients.cgs", "three coefficients"),
])
def test_bad_option_names_file_and_field(tmp_path, options, path, message):
    with pytest.raises(SpecError) as info:
        _testbench(tmp_path, ONE_NMOS, **options)
    assert info.value.file.endswith("tb.yaml") and info.value.path == path and message in info.value.message


def test_device_without_width_and_bad_coefficient_file_are_named(tmp_path):
    with pytest.raises(SpecError, match=r"tb.yaml: parasitics: n.cir: M1: no `W=`"):
        _testbench(tmp_path, ONE_NMOS.replace("W = {W1}", ""), parasitics="regression")
    (tmp_path / "c.yaml").write_text("cgs: {a: 1, b: 2, c: 3}\ncgd: [1, 2, 3]\ncds: [1, 2, 3]\nextra: 1\n")
    with pytest.raises(SpecError, match=r"c.yaml: extra: unknown key"):
        _testbench(tmp_path, ONE_NMOS, parasitics="regression", parasitic_coefficients="c.yaml")
    with pytest.raises(ParasiticError, match="no MOSFET"):
        add_parasitics(_testbench(tmp_path, "r\nVD d 0 dc 1\nR1 d 0 1k\n.op\n.end\n").netlist)


def _lna_with_parasitics(tmp_path: Path) -> Spec:
    base = ROOT / "circuits" / "lna"
    data = yaml.safe_load((base / "testbench.yaml").read_text())
    file = testbench_module.TestbenchFile.model_validate({**data, "parasitics": "regression"})
    tb = build_testbench(file, base, base / "x.yaml")
    spec = load_spec(ROOT / "specs" / "lna.yaml")
    return Spec(spec.file, tb, spec.model, spec.path)


@pytest.mark.ngspice
def test_lna_start_point_with_parasitics(tmp_path):
    """The LNA (specs/lna.yaml start point) with the regression on M0, M1, M2: dc power unchanged (the
    capacitors are open at dc), peak gain and bandwidth fall, noise figure rises (docs/testbench.md)."""
    spec = load_spec(ROOT / "specs" / "lna.yaml")
    par = _lna_with_parasitics(tmp_path)
    before = simulate_points(spec, [{}])
    after = simulate_points(par, [{}])
    np.testing.assert_allclose(after["power"], before["power"], rtol=1e-9)
    assert after["gt"][0] < before["gt"][0] - 3
    assert after["bw"][0] < before["bw"][0]
    assert after["nf"][0] > before["nf"][0] + 1


def test_store_fingerprint_sees_the_option(tmp_path):
    """`optiyield run --resume` must not reuse rows simulated without parasitics (or other coefficients)."""
    spec = load_spec(ROOT / "specs" / "lna.yaml")
    par = _lna_with_parasitics(tmp_path)
    other = Spec(spec.file, build_testbench(testbench_module.TestbenchFile.model_validate(
        {**yaml.safe_load((ROOT / "circuits" / "lna" / "testbench.yaml").read_text()), "parasitics": "regression",
         "parasitic_coefficients": {"cgs": [0, 0, 1], "cgd": [0, 0, 1], "cds": [0, 0, 1]}}),
        ROOT / "circuits" / "lna", "x.yaml"), spec.model, spec.path)
    with Engine(workers=1) as engine:
        prints = {Evaluator(s, engine).job.fingerprint for s in (spec, par, other)}
    assert len(prints) == 3


@pytest.mark.ngspice
def test_monte_carlo_with_parasitics_through_cli(tmp_path):
    """A user-written testbench with `parasitics: regression` and a spec pointing at it: `optiyield yield`."""
    lna = ROOT / "circuits" / "lna"
    data = yaml.safe_load((lna / "testbench.yaml").read_text())
    data.update(netlist=str(lna / "netlist.cir"), parasitics="regression",
                parasitic_coefficients={"cgs": [-18.46, 0.676, 14.93], "cgd": [-17.83, 0.683, 13.87],
                                        "cds": [-29.02, 0.907, 23.45]})
    (tmp_path / "tb.yaml").write_text(yaml.safe_dump(data))
    spec = yaml.safe_load((ROOT / "specs" / "lna.yaml").read_text())
    spec["testbench"] = "tb.yaml"
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    out = run_cli("yield", tmp_path / "spec.yaml", "-n", 20, "--out", tmp_path / "out")
    assert "failed simulations: 0" in out
