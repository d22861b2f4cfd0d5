"""Operating-point measures (optiyield/measure/device.py, the `Device` binding): numpy functions, validation,
and values through ngspice against ngspice's own `.op` print of the same device, one sample per deck."""

import dataclasses
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optiyield.errors import SpecError
from optiyield.measure import device
from optiyield.sim.engine import OK, Engine
from optiyield.sim.ngspice.deck import render
from optiyield.sim.ngspice.runner import NgspiceRunner
from optiyield.testbench import MeasureDef, load_testbench

CIRCUITS = Path(__file__).parent / "circuits"
NAMES = ("W", "Vg", "Vr")
#: Samples of tests/circuits/op_devices.cir: M1 saturated / in triode / in cutoff; M4 reverse-conducting or off.
ROWS = np.array([[2e-6, 0.7, 0.3], [4e-6, 0.9, 0.6], [1e-6, 0.5, 0.1]])
#: measure → (ngspice instance vector printed by the reference deck, how the measure follows from the quantities)
REFERENCE = {
    "m1_sat": lambda q: q["@m1[vds]"] - q["@m1[vdsat]"],
    "m1_vov": lambda q: q["@m1[vgs]"] - q["@m1[vth]"],
    "m1_gmid": lambda q: q["@m1[gm]"] / q["@m1[id]"],
    "m1_vth": lambda q: q["@m1[vth]"],
    "m1_gds": lambda q: q["@m1[gds]"],
    "m2_sat": lambda q: q["@m2[vds]"] - q["@m2[vdsat]"],
    "m2_vov": lambda q: q["@m2[vgs]"] - q["@m2[vth]"],
    "m2_id": lambda q: q["@m2[id]"],
    "m2_gmid": lambda q: q["@m2[gm]"] / q["@m2[id]"],
    "m3_sat": lambda q: q["@m.x1.m3[vds]"] - q["@m.x1.m3[vdsat]"],
    "m3_cgg": lambda q: q["@m.x1.m3[cgg]"],
    "m4_sat": lambda q: -q["@m4[vds]"] - q["@m4[vdsat]"],
    "m4_vov": lambda q: q["@m4[vgs]"] - q["@m4[vds]"] - q["@m4[vth]"],
    "q1_vcb": lambda q: -q["@q1[vbc]"],
    "q1_gmic": lambda q: q["@q1[gm]"] / q["@q1[ic]"],
    "q2_vcb": lambda q: -q["@q2[vbc]"],
    "q2_ic": lambda q: q["@q2[ic]"],
    "d1_vd": lambda q: q["@d1[vd]"],
}
_PRINTED = re.compile(r"^(@[\w.#]+\[\w+\])\s*=\s*(\S+)", re.M)


def test_functions():
    assert device.sat_margin([0.3, -0.3, 0.1], [0.2, 0.2, 0.2]) == pytest.approx([0.1, 0.1, -0.1])
    # a reverse-conducting device is judged from the terminal acting as its source: Vgd against Vth
    assert device.overdrive([0.7, 0.7], [0.2, -0.2], [0.5, 0.5]) == pytest.approx([0.2, 0.4])
    assert device.gm_over_id([1e-3, 1e-3, 1e-3], [1e-4, -1e-4, 0.0])[:2] == pytest.approx([10.0, 10.0])
    assert np.isnan(device.gm_over_id([1e-3], [0.0])[0])
    assert device.bjt_vcb([-0.4, 0.1]) == pytest.approx([0.4, -0.1])


@given(vds=st.floats(-2, 2), vdsat=st.floats(0, 1), vgs=st.floats(-2, 2), vth=st.floats(-1, 1))
def test_margins_agree_with_the_region_check(vds, vdsat, vgs, vth):
    """sat_margin ≥ 0 and overdrive > 0 exactly when optim/region.py calls the device saturated."""
    from optiyield.optim.region import DeviceRegion

    region = DeviceRegion("M1", vgs=vgs, vds=vds, vth=vth, vdsat=vdsat).region
    saturated = device.overdrive(vgs, vds, vth) > 0 and device.sat_margin(vds, vdsat) >= 0
    assert saturated == (region == "saturation")
    assert (device.overdrive(vgs, vds, vth) <= 0) == (region == "cutoff")


@pytest.mark.parametrize(("fields", "message"), [
    ({"fn": "sat_margin"}, "sat_margin needs `device`"),
    ({"fn": "sat_margin", "device": "M1\n.control"}, "expected a device instance name"),
    ({"fn": "device_op", "device": "M1"}, "device_op needs `quantity`"),
    ({"fn": "device_op", "device": "M1", "quantity": "vds] .endc"}, "expected an instance quantity"),
    ({"fn": "sat_margin", "device": "M1", "quantity": "vds"}, "sat_margin does not take `quantity`"),
    ({"fn": "sat_margin", "device": "Q1"}, "sat_margin needs a MOSFET (M…), got 'Q1'"),
    ({"fn": "bjt_vcb", "device": "X1.M3"}, "bjt_vcb needs a BJT (Q…)"),
    ({"fn": "lf_gain_db", "out": "d", "device": "M1"}, "lf_gain_db does not take `device`"),
])
def test_definition_errors(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        MeasureDef.model_validate(fields)


def test_unknown_device_is_refused_when_the_testbench_loads(tmp_path):
    (tmp_path / "tb.yaml").write_text(f"name: t\nnetlist: {CIRCUITS / 'op_devices.cir'}\n"
                                      "measures:\n  s: {fn: sat_margin, device: M9}\n")
    with pytest.raises(SpecError, match=r"measures\.s\.device: no instance named 'M9' at the top level.*m1, m2"):
        load_testbench(tmp_path / "tb.yaml")


def test_units_and_probes():
    testbench = load_testbench(CIRCUITS / "op_devices.yaml")
    assert testbench.unit("m1_sat") == "V" and testbench.unit("m2_id") == "A" and testbench.unit("m3_cgg") == "F"
    assert testbench.unit("m1_gmid") == "1/V" and testbench.unit("m1_gds") == "S"
    assert ("x1.m3", "vdsat") in testbench.probes and ("q1", "ic") in testbench.probes
    assert len(testbench.probes) == len(set(testbench.probes))


def test_no_save_line_without_an_op_measure():
    """Without an operating-point measure the deck is what it was: nothing extra is saved (AC throughput)."""
    testbench = load_testbench(CIRCUITS / "op_devices.yaml")
    plain = {k: v for k, v in testbench.measures.items() if v.fn == "lf_gain_db"}
    job = testbench.job(NAMES)
    bare = dataclasses.replace(testbench, measures=plain).job(NAMES)
    assert bare.devices == () and job.devices
    # the job's identity (store fingerprint) of a testbench without op measures is what it was before them
    assert '"device"' not in bare.identity and '"quantity"' not in bare.identity and '"device"' in job.identity
    text, _ = render(bare.netlist, NAMES, ROWS, "out.raw", copies=True, devices=bare.devices)
    assert ".save" not in text
    text, _ = render(job.netlist, NAMES, ROWS, "out.raw", copies=True, devices=job.devices)
    assert ".save all" in text and "@m.x2.x1.m3[vdsat]" in text and "@q.x0.q1[ic]" in text


def reference_quantities(row: np.ndarray) -> dict[str, float]:
    """ngspice's own `.op` print of every device quantity the reference needs, one sample in its own deck."""
    netlist = (CIRCUITS / "op_devices.cir").read_text()
    netlist = netlist.replace("../../circuits/models/", str(CIRCUITS.parents[1] / "circuits" / "models") + "/")
    netlist = re.sub(r"^\.param .*$", ".param " + " ".join(f"{n}={float(v)!r}" for n, v in zip(NAMES, row, strict=True))
                     + " Vgp=0.5 Vb=0.7 Ib=1m", netlist, count=1, flags=re.M)
    wanted = sorted(_vectors())
    control = "\n".join([".control", "set numdgt=12", "op", *(f"print {v}" for v in wanted), "quit", ".endc"])
    runner = NgspiceRunner()
    folder = runner.workdir()
    try:
        (folder / "deck.cir").write_text(netlist.replace("\n.end", "\n" + control + "\n.end"))
        out = subprocess.run([runner.executable, "-b", "deck.cir"], cwd=folder, env=runner._env, capture_output=True,
                             text=True, timeout=60, check=True).stdout
    finally:
        runner.remove(folder)
        runner.close()
    found = {m[1].lower(): float(m[2]) for m in _PRINTED.finditer(out)}
    assert set(wanted) <= set(found), out[-2000:]
    return found


def _vectors() -> set[str]:
    """The instance vectors the REFERENCE formulas read (each formula called once on a recording mapping)."""
    class Recorder(dict):
        def __missing__(self, key):
            self[key] = 1.0
            return 1.0

    seen = Recorder()
    for formula in REFERENCE.values():
        formula(seen)
    return set(seen)


@pytest.mark.ngspice
@pytest.mark.parametrize("copies", [True, False])
def test_op_measures_match_a_single_device_op_print(copies):
    """Every operating-point measure of three samples, batched as copies (devices named per copy, one inside a
    subcircuit instance) and one sample per deck, equals what ngspice prints for that device after `.op`."""
    testbench = load_testbench(CIRCUITS / "op_devices.yaml")
    testbench = dataclasses.replace(testbench, copies=copies)
    results = Engine(workers=2).run(testbench.job(NAMES), ROWS)
    assert (results.status == OK).all(), results.reason
    for k, row in enumerate(ROWS):
        quantities = reference_quantities(row)
        for name, formula in REFERENCE.items():
            assert results.values[name][k] == pytest.approx(formula(quantities), rel=1e-6, abs=1e-12), (name, k)
    sat, vov = results.values["m1_sat"], results.values["m1_vov"]
    assert sat[0] > 0 > sat[1] and vov[2] < 0 < vov[0]  # saturated, triode, cutoff
    assert results.values["m4_sat"][0] > 0 and results.values["m2_id"][0] > 0  # reverse NMOS, PMOS current > 0


@pytest.mark.ngspice
def test_op_measure_cost_benchmark_smoke(tmp_path):
    """benchmarks/op_measure_cost.py on 50 CSVA samples and one VGA sample: every variant simulated, the deck
    without op measures saves nothing extra, and the variants save 0/2/4/6 (CSVA) and 0/8 (VGA) vectors per copy."""
    from test_scripts import read_json, run_script

    out = tmp_path / "cost.json"
    text = run_script("benchmarks/op_measure_cost.py", "--samples", 50, "--vga-samples", 1, "--repeats", 1,
                      "--json", out, cwd=tmp_path)
    assert "CSVA, 50 samples" in text and "VGA 10 GHz, 1 samples" in text
    figures = read_json(out)
    assert figures["deck_unchanged"] is True
    assert [row["vectors_per_copy"] for row in figures["csva"].values()] == [0, 2, 4, 6]
    assert [row["vectors_per_copy"] for row in figures["vga"].values()] == [0, 8]
    for circuit in ("csva", "vga"):
        for row in figures[circuit].values():
            assert row["samples_per_s"] > 0 and row["ratio"] > 0
