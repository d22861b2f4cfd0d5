"""The cascode LNA testbench and its analytical sizer (optiyield/propose/lna_cascode.py).

Pure-math tests of the bisection helpers and the width rule, then ngspice: the sizer's bisections on the
real testbench (R_DB on the .op, Ls and R1 on the nodal model) converge, the 2.4 GHz first cut meets the
spec in ngspice (S11 < -10 dB among them), the testbench's S-parameters at f0 agree with ngspice's own
.sp analysis, and NFmin from the fitted noise parameters lies below the 50 ohm noise figure.
"""

import dataclasses
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, simulate_points

from optiyield.propose.lna_cascode import (
    LS_RANGE,
    LnaCascodeSizer,
    Passives,
    Process,
    SizingWarning,
    SmallSignalModel,
    bisect,
    finger_layout,
    first_crossing,
    noise_optimum_width,
    noise_parameters,
    with_netlist_defaults,
)
from optiyield.sim.ngspice.deck import render
from optiyield.sim.ngspice.runner import NgspiceRunner
from optiyield.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "lna_cascode.yaml"


# ---- pure math


def test_bisect_finds_root_linear_and_log():
    result = bisect(lambda x: x ** 3 - 2.0, 0.0, 4.0, xtol=1e-10)
    assert result.converged and result.bracketed
    assert result.x == pytest.approx(2 ** (1 / 3), rel=1e-8)
    result = bisect(lambda r: 1e3 / r - 7.0, 1.0, 1e6, xtol=1e-9, log=True)  # decreasing, scale-free
    assert result.converged and result.x == pytest.approx(1e3 / 7, rel=1e-8)
    assert result.iterations < 60


def test_bisect_without_sign_change_returns_better_end():
    result = bisect(lambda x: x + 1.0, 0.0, 1.0)
    assert not result.bracketed and not result.converged and result.x == 0.0


def test_first_crossing_takes_the_first_rising_root_of_a_non_monotonic_function():
    # Re(Z_gate)(Ls) rises, peaks at the source-node resonance and falls: a hump from 0 through 2 and back
    def hump(x: float) -> float:
        return 2.0 * math.sin(math.pi * x / 10e-9) - 1.0   # = 0 at 1.667 nH and 8.333 nH

    x, result = first_crossing(hump, 0.1e-9, 9.9e-9)
    assert result.bracketed and x == pytest.approx(10e-9 / 6, rel=1e-5)
    _, result = first_crossing(lambda x: -1.0, *LS_RANGE)
    assert not result.bracketed


def test_noise_optimum_width_and_finger_rounding():
    process = Process()
    w = noise_optimum_width(2.4e9, 50.0, process)  # 1/(3 ω L Cox Rs), Cox = 3.9 ε0 / 1.8 nm
    assert w == pytest.approx(1 / (3 * 2 * math.pi * 2.4e9 * 45e-9 * 3.9 * 8.854187817e-12 / 1.8e-9 * 50), rel=1e-9)
    assert 500e-6 < w < 530e-6
    fingers = finger_layout(w, process)
    assert fingers.nf <= process.nf_max and fingers.width == pytest.approx(fingers.nf * fingers.m * 2e-6)
    assert abs(fingers.residue) <= process.finger_width * fingers.m / 2 + 1e-12
    assert finger_layout(1000e-6, process).count == 496  # 500 fingers → 8 groups of 62


# ---- ngspice


@pytest.fixture(scope="module")
def spec():
    return load_spec(SPEC)


@pytest.fixture(scope="module")
def sized(spec):
    sizer = LnaCascodeSizer()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SizingWarning)  # 2.4 GHz, 21 dB: no limit is hit
        rows = sizer.propose(spec, 3, seed=4)
    return sizer.last, rows


@pytest.fixture(scope="module")
def first_cut(spec, sized):
    sizing, rows = sized
    return simulate_points(spec, [dict(zip(spec.file.design, rows[0], strict=True))])


@pytest.mark.ngspice
def test_bisections_converge_on_the_real_testbench(sized):
    sizing, _ = sized
    assert sizing.op.devices["m1"]["id"] == pytest.approx(5e-3, rel=5e-4)      # R_DB bisection on the .op
    assert sizing.iterations["R_DB"] < 30 and sizing.runs < 40
    m1, m2 = sizing.devices["m1"], sizing.devices["m2"]
    assert m1.gm == pytest.approx(sizing.op.devices["m1"]["gm"], rel=0.02)   # .ac admittance vs .op gm
    assert m1.cgs > -sizing.op.devices["m1"]["cgs"]    # total Cgs includes the overlap the .op value lacks
    d = sizing.design
    model = SmallSignalModel(2.4e9, 50.0, 50.0, 10e3, m1, m2)
    p = Passives(ls=d["Ls"], lg=d["Lg"], ci=d["Ci"], l1=d["L1"], r1=d["R1"], co=d["Co"])
    assert model.z_gate(p).real == pytest.approx(50.0, rel=1e-4)               # Ls bisection
    assert model.z_in(p) == pytest.approx(50.0, rel=0.05)                      # Lg, Ci cancel Im(Z_gate)
    assert model.gain_db(p, d["R1"]) == pytest.approx(21.0, abs=1e-4)          # R1 bisection
    assert sizing.predicted["g_min_db"] < 21.0 < sizing.predicted["g_max_db"]
    assert d["W"] == pytest.approx(512e-6) and sizing.fingers.nf * sizing.fingers.m == 256


@pytest.mark.ngspice
def test_first_cut_at_2g4_meets_the_spec_in_ngspice(spec, sized, first_cut):
    sizing, _ = sized
    v = {k: float(a[0]) for k, a in first_cut.items()}
    assert v["s11_db"] < -10
    assert v["s21_db"] == pytest.approx(sizing.predicted["s21_db"], abs=0.05)  # model and ngspice agree
    assert v["s21_db"] == pytest.approx(21.0, abs=0.1)
    for name, bound in spec.file.specs.items():
        assert bound.min is None or v[name] >= bound.min, name
        assert bound.max is None or v[name] <= bound.max, name


@pytest.mark.ngspice
def test_proposer_protocol(spec, sized):
    sizing, rows = sized
    assert rows.shape == (3, len(spec.file.design))
    assert rows[0] == pytest.approx([sizing.design[n] for n in spec.file.design])
    assert not np.allclose(rows[1], rows[0]) and np.all(np.abs(np.log(rows[1:] / rows[0])) < 0.3)


@pytest.mark.ngspice
def test_s_parameters_at_f0_agree_with_ngspice_sp_analysis(spec, sized, first_cut):
    """Independent check: ngspice's own .sp analysis (port sources, 50 ohm) of copy A of the netlist at the
    first cut gives the S21, S11 and S22 that the testbench measures from .ac (S22 from copy B)."""
    sizing, rows = sized
    netlist = spec.testbench.netlist
    body = []
    for line in netlist.body:
        name = line.split()[0].lower()
        if name.endswith("_b") or name in ("vddb", "vo", "rsi"):
            continue
        body.append({"vs": "VS in 0 dc 0 ac 1 portnum 1 z0 50",
                     "rso": "VP2 out 0 dc 0 ac 0 portnum 2 z0 50"}.get(name, line))
    deck = dataclasses.replace(netlist, body=tuple(body), analyses=(".sp lin 1 {f0} {f0}",), measures=())
    names = tuple(spec.file.design)
    runner = NgspiceRunner()
    folder = runner.workdir()
    try:
        text, _ = render(deck, names, rows[:1], str(folder / "out.raw"), copies=False)
        outcome = runner.run(text, folder, 20, expected=())
        assert outcome.ok, outcome.failure
        plot = outcome.plot("sp")
        sp = {k: float(20 * np.log10(abs(plot[f"v({k})"][0]))) for k in ("s_1_1", "s_2_1", "s_2_2")}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        runner.close()
    assert first_cut["s21_db"][0] == pytest.approx(sp["s_2_1"], abs=1e-6)
    assert first_cut["s11_db"][0] == pytest.approx(sp["s_1_1"], abs=1e-6)   # measured: 2e-10 dB
    assert first_cut["s22_db"][0] == pytest.approx(sp["s_2_2"], abs=1e-6)   # 2e-11 dB (at -87 dB)
    mirror = (1.2 - sizing.op.voltage("nb")) / sizing.design["R_DB"]
    assert first_cut["power"][0] == pytest.approx(1.2 * (5e-3 + mirror), rel=2e-3)   # VDD × (I_DD + mirror)


@pytest.mark.ngspice
def test_nfmin_below_nf_and_fit_exact(spec, sized, first_cut):
    sizing, _ = sized
    noise = noise_parameters(spec, sizing.design)
    assert noise.residual < 1e-6                       # a linear noisy two-port fits the 4-parameter form
    assert 0 < noise.nf_min_db <= first_cut["nf_db"][0] + 1e-9
    assert noise.rn > 0 and noise.y_opt.real > 0


@pytest.mark.ngspice
def test_target_above_gmax_warns_and_stops_at_gmax(spec):
    at5g = with_netlist_defaults(spec, {"f0": 5e9})
    assert at5g.testbench.nominal("f0") == 5e9
    with pytest.warns(SizingWarning, match="exceeds G_max"):
        sizing = LnaCascodeSizer(gain_db=30.0).size(at5g)
    assert sizing.design["R1"] == pytest.approx(10e3)
    assert sizing.predicted["s21_db"] == pytest.approx(sizing.predicted["g_max_db"], abs=1e-9)


@pytest.mark.ngspice
def test_spec_validates():
    assert "one process per sample" in run_cli("validate", SPEC)


def test_sizer_as_the_first_run_step(tmp_path):
    """`{propose: {sizer: lna_cascode}}` gives the optimizer its start; the first cut meets every spec, so
    `until: feasible` spends nothing more."""
    import json

    text = SPEC.read_text().replace("testbench: ../circuits", f"testbench: {ROOT}/circuits")
    text = text[: text.index("run:")] + (
        "run:\n  seed: 1\n  samples: 8\n  steps:\n"
        "    - {propose: {sizer: lna_cascode, options: {idd: 5m, gain_db: 21}, candidates: 1}}\n"
        "    - {nominal: minimax, until: feasible}\n")
    spec_file = tmp_path / "lna_cascode_sized.yaml"
    spec_file.write_text(text)
    out = run_cli("run", spec_file, "--out", tmp_path / "run")
    assert "propose (lna_cascode, 1 candidate)" in out
    propose, nominal = json.loads((tmp_path / "run" / "run_summary.json").read_text())["steps"]
    sizer_runs = LnaCascodeSizer(idd=5e-3, gain_db=21.0).size(load_spec(spec_file)).runs
    # the sizer's own .op/.ac probes are counted too (issue 14), then the one re-simulated candidate
    assert propose["result"]["objective"] <= 0 and propose["result"]["simulations"] == sizer_runs + 1
    assert nominal["result"]["simulations"] == 0


def test_propose_step_takes_exactly_one_source(tmp_path):
    from optiyield.errors import SpecError

    text = SPEC.read_text().replace("testbench: ../circuits", f"testbench: {ROOT}/circuits")
    for step, message in (("{propose: {candidates: 1}}", "exactly one of `model`"),
                          ("{propose: {sizer: lna_cascode, model: x.oym}}", "exactly one of `model`"),
                          ("{propose: {sizer: nonesuch}}", "run.steps")):
        spec_file = tmp_path / "bad.yaml"
        spec_file.write_text(text[: text.index("run:")] + f"run:\n  steps:\n    - {step}\n")
        with pytest.raises(SpecError, match=message):
            load_spec(spec_file)
