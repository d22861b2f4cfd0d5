"""Staged BFGS and the transistor region check.

Unit tests run staged_bfgs on an analytic evaluator (no simulator); the others run the real ngspice on
the common-source amplifier (circuits/csva) and on a small PMOS/subcircuit deck.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optiyield.objective import ErrorModel
from optiyield.optim.evaluator import Evaluator, Responses
from optiyield.optim.region import (
    DeviceRegion,
    RegionCheckError,
    device_regions,
    device_vector,
    format_region_report,
    region_check,
)
from optiyield.optim.staged import staged_bfgs
from optiyield.sim.engine import Engine
from optiyield.sim.meter import Meter
from optiyield.spec import SpecBound, Stage, load_spec
from optiyield.testbench import load_testbench

CSVA_NETLIST = Path(__file__).resolve().parents[1] / "circuits" / "csva" / "netlist.cir"
MODELS = Path(__file__).resolve().parents[1] / "circuits" / "models" / "ptm45lp.lib"


# ---------------------------------------------------------------------------------------------- analytic


@dataclass
class FakeResponses:
    """The part of :class:`Responses` that staged_bfgs reads: ``values[measure]`` of shape (M, 1)."""

    values: dict[str, np.ndarray]


class AnalyticEvaluator:
    """Evaluator look-alike over closed-form responses of x = (a, b, c), with very different scales:

    p = a + c/400 (in [2, 3]), g = 2·b·1e6 + c/100 (≥ 6), q = 10 − c/100 (≥ 3). Raising c for g pushes
    p up again, so the two stages need two rounds. Every requested batch of points is logged.
    """

    def __init__(self, x0: tuple[float, float, float] = (9.0, -1e-6, 200.0),
                 specs: dict[str, SpecBound] | None = None) -> None:
        self.names = ("a", "b", "c")
        self.lower = np.array([0.0, -1e-6, 100.0])
        self.upper = np.array([10.0, 1e-6, 1000.0])
        self.x0 = np.array(x0)
        self.errors = ErrorModel.from_specs(specs or {
            "p": SpecBound(min=2.0, max=3.0), "g": SpecBound(min=6.0), "q": SpecBound(min=3.0)})
        self.meter = Meter()
        self.log: list[np.ndarray] = []

    def responses(self, points: np.ndarray, outcomes: Any = None) -> FakeResponses:
        """Closed-form responses, shape (M, 1) each; counts one simulation per point."""
        points = np.atleast_2d(points).copy()
        self.log.append(points)
        self.meter.simulations += len(points)
        a, b, c = points.T
        values = {"p": a + c / 400, "g": 2 * b * 1e6 + c / 100, "q": 10 - c / 100}
        return FakeResponses(values={k: v[:, None] for k, v in values.items()})


STAGE_P = Stage(name="bias", specs=("p",), variables=("a",))
STAGE_GQ = Stage(name="gain", specs=("g", "q"), variables=("b", "c"))


def test_stage_moves_only_its_variables() -> None:
    ev = AnalyticEvaluator()
    result = staged_bfgs(ev, [STAGE_P], rounds=1, budget=500)
    points = np.vstack(ev.log)
    # every simulated point, including finite-difference points, keeps b and c bit-identical
    assert (points[:, 1:].tobytes() == np.tile(ev.x0[1:], (len(points), 1)).tobytes())
    assert result.x[1:].tobytes() == ev.x0[1:].tobytes()
    assert result.x[0] < ev.x0[0]
    stage = [r for r in result.history if r["kind"] == "stage"]
    assert len(stage) == 1 and stage[0]["variables"] == ["a"] and stage[0]["passing"]["p"]
    assert stage[0]["x"] == dict(zip(ev.names, result.x, strict=True))
    assert stage[0]["penalty_after"] < stage[0]["penalty_before"]
    # the gradient's 1 + 1 points go in one request
    assert max(len(p) for p in ev.log) <= 2


def test_bounds_respected_when_the_optimum_is_outside() -> None:
    ev = AnalyticEvaluator(x0=(5.0, 0.0, 500.0), specs={"p": SpecBound(min=20.0)})  # p ≤ 10 + 2.5 < 20
    result = staged_bfgs(ev, [Stage(name="up", specs=("p",), variables=("a", "c"))], rounds=2, budget=300)
    points = np.vstack(ev.log)
    assert np.all(points >= ev.lower) and np.all(points <= ev.upper)
    assert result.x[0] == pytest.approx(10.0) and result.x[2] == pytest.approx(1000.0)
    assert result.x[1] == ev.x0[1]
    assert result.objective > 0 and "failing: p" in result.status
    assert max(len(p) for p in ev.log) <= 3  # (fewer when some of the points were evaluated before)


def test_two_stages_meet_all_specs() -> None:
    ev = AnalyticEvaluator()
    seen: list[dict[str, Any]] = []
    result = staged_bfgs(ev, [STAGE_P, STAGE_GQ], rounds=4, budget=1000, callback=seen.append)
    assert result.method == "staged-bfgs" and result.yield_estimate is None
    assert result.objective == 0.0 and result.status.startswith("all specs met"), result.status
    a, b, c = result.x
    assert 2 <= a + c / 400 <= 3 and 2 * b * 1e6 + c / 100 >= 6 and 10 - c / 100 >= 3
    assert np.all(result.x >= ev.lower) and np.all(result.x <= ev.upper)
    assert seen == result.history and result.simulations == ev.meter.simulations <= 1000
    stages = [r for r in result.history if r["kind"] == "stage"]
    assert max(r["round"] for r in stages) >= 2  # stage 2 raises c, which breaks p again
    previous = dict(zip(ev.names, ev.x0, strict=True))
    for record in stages:
        moved = {name for name, value in record["x"].items() if value != previous[name]}
        assert moved <= set(record["variables"])
        assert record["variables"] == (["a"] if record["stage"] == "bias" else ["b", "c"])
        previous = record["x"]


def test_budget_is_respected() -> None:
    ev = AnalyticEvaluator()
    result = staged_bfgs(ev, [STAGE_P, STAGE_GQ], rounds=5, budget=7)
    assert ev.meter.simulations <= 7 and result.simulations <= 7
    assert "budget of 7 simulations spent" in result.status


def test_stage_weights_override_spec_weights() -> None:
    ev = AnalyticEvaluator()
    stage = Stage(name="bias", specs={"p": 4.0}, variables=("a",))
    result = staged_bfgs(ev, [stage], rounds=1, budget=100)
    record = result.history[0]
    violation = 9.0 + 200 / 400 - 3.0  # p ≤ 3 is violated (scale |3|), p ≥ 2 is met
    assert record["penalty_before"] == pytest.approx(4.0 * (violation / 3.0 + 0.01) ** 2)


def test_protect_keeps_the_other_stages_passing_specs() -> None:
    """Stage "gain" (b, c) must raise g = 2·b·1e6 + c/100 to 6, which needs c >= 400 even at b's bound;
    c also raises p = a + c/400, which passes at the start (a = 1.9: p = 2.15) and breaks above c = 440.
    Without protection the stage overshoots c and breaks p; with protect=1 the passing p is guarded, so
    the stage lands in the narrow window c in [400, 440] with b at its bound, and its record names the guard."""
    x0 = (1.9, -1e-6, 100.0)  # p = 2.15 passes, g = -1 fails, q = 9 passes
    plain = staged_bfgs(AnalyticEvaluator(x0=x0), [STAGE_GQ], rounds=1, budget=400)
    guarded = staged_bfgs(AnalyticEvaluator(x0=x0), [STAGE_GQ], rounds=1, budget=400, protect=1.0)
    p_of = lambda x: x[0] + x[2] / 400  # noqa: E731
    g_of = lambda x: 2 * x[1] * 1e6 + x[2] / 100  # noqa: E731
    assert g_of(plain.x) >= 6 - 1e-6 and g_of(guarded.x) >= 6 - 1e-6
    assert p_of(guarded.x) <= 3 + 1e-9, guarded.design
    assert p_of(plain.x) > 3, plain.design
    record = next(r for r in guarded.history if r["kind"] == "stage")
    assert record["guards"] == ["p"] and record["passing"]["p"]
    assert next(r for r in plain.history if r["kind"] == "stage")["guards"] == []


# ---------------------------------------------------------------------------------------------- ngspice


def _csva_spec(tmp_path: Path, design: str, stages: str = "") -> Path:
    text = f"""
name: csva-staged
testbench:
  name: csva-regions
  netlist: {CSVA_NETLIST}
  measures:
    power:   {{fn: dc_power, supply: VDD}}
    gain_db: {{fn: lf_gain_db, out: vout, in: vin}}
    bw:      {{fn: bandwidth_3db, out: vout, in: vin}}
  transistors: [M1]
design:
{design}
specs:
  gain_db: {{min: 10}}
  bw:      {{min: 200M}}
  power:   {{max: 950u}}
{stages}
"""
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


CSVA_DESIGN = """\
  VDD:   {start: 1.2, min: 1.2, max: 1.8}
  Vgate: {start: 0.8, min: 0.6, max: 0.9}
  W:     {start: 5u,  min: 3u,  max: 10u}
  Rd:    {start: 1k,  min: 500, max: 3k}"""


@pytest.mark.ngspice
def test_region_check_csva(tmp_path: Path) -> None:
    spec = load_spec(_csva_spec(tmp_path, CSVA_DESIGN))
    (m1,) = region_check(spec)  # nominal: VDD 1.2, Vgate 0.8, W 5u, Rd 1k
    assert m1.name == "M1" and m1.saturated and m1.region == "saturation"
    assert m1.vgs == pytest.approx(0.8, abs=1e-6)
    assert m1.vds == pytest.approx(0.476, abs=0.01)  # = v(vout): 1.2 V − 1k · 0.72 mA
    assert 0.5 < m1.vth < 0.7 and 0.1 < m1.vdsat < 0.25
    assert "all 1 device in saturation" in format_region_report([m1])

    (m1,) = region_check(spec, {"Vgate": 0.9, "Rd": 3e3})  # 1k·I would need 3.4 V across Rd: deep triode
    assert m1.region == "triode" and not m1.saturated
    assert m1.vds == pytest.approx(0.053, abs=0.01) and m1.vdsat > 0.15 > m1.vds
    report = format_region_report([m1])
    assert "NOT in saturation: M1" in report and "M1: triode (Vds 0.053 V < Vdsat 0.21" in report


@pytest.mark.ngspice
def test_region_check_pmos_polarity_subcircuit_and_errors(tmp_path: Path) -> None:
    (tmp_path / "pmos.cir").write_text(f"""* PMOS and a subcircuit device
.param Vg=0.4 Rl=1k
.include {MODELS}
VDD vdd 0 dc 1.2
VG g 0 dc {{Vg}}
MP out g vdd vdd pch W=5u L=45n
RL out 0 {{Rl}}
.subckt stage o i s
MN o i s s nch W=1u L=45n
RN s2 o 1k
VS s2 s dc 1.2
.ends
X1 o1 vdd 0 stage
.op
.end
""")
    (tmp_path / "pmos.yaml").write_text("name: pmos\nnetlist: pmos.cir\ntransistors: [MP, X1.MN]\n")
    tb = load_testbench(tmp_path / "pmos.yaml")
    assert device_vector("X1.MN", "vth") == "@m.x1.mn[vth]"
    mp, mn = device_regions(tb, ["Vg", "Rl"], [0.4, 1e3])
    # ngspice reports PMOS quantities NMOS-equivalent: positive when conducting
    assert mp.saturated and mp.vgs == pytest.approx(0.8, abs=1e-6) and mp.vds > 0 and mp.vth > 0 and mp.vdsat > 0
    assert mn.name == "X1.MN" and mn.vgs == pytest.approx(1.2, abs=1e-6)
    (off,) = device_regions(tb, ["Vg", "Rl"], [1.2, 1e3], transistors=["MP"])
    assert off.region == "cutoff" and "MP: cutoff (Vgs" in off.describe()
    (lin,) = device_regions(tb, ["Vg", "Rl"], [0.0, 100e3], transistors=["MP"])
    assert lin.region == "triode"
    with pytest.raises(RegionCheckError, match="does not know M9"):
        device_regions(tb, ["Vg", "Rl"], [0.4, 1e3], transistors=["M9"])
    assert device_regions(tb, ["Vg", "Rl"], [0.4, 1e3], transistors=[]) == []
    assert "skipped" in format_region_report([])


def test_region_logic_without_simulator() -> None:
    assert DeviceRegion("M1", vgs=0.3, vds=1.0, vth=0.45, vdsat=0.1).region == "cutoff"
    assert DeviceRegion("M1", vgs=-0.6, vds=1.0, vth=0.45, vdsat=0.1).region == "cutoff"  # PMOS gate above source
    assert DeviceRegion("M1", vgs=0.8, vds=0.12, vth=0.45, vdsat=0.21).describe() == \
        "M1: triode (Vds 0.12 V < Vdsat 0.21 V)"
    reverse = DeviceRegion("M1", vgs=0.5, vds=-0.5, vth=0.45, vdsat=0.2)  # Vgd = 1.0, Vsd = 0.5
    assert reverse.reverse and reverse.saturated


class _Recording(Evaluator):
    """The real evaluator, logging every requested batch of design points."""

    log: list[Any]

    def responses(self, points: np.ndarray, outcomes: Any = None) -> Responses:
        self.log.append(("points", np.atleast_2d(points).copy()))
        return super().responses(points, outcomes)


STAGES = """\
stages:
  - {name: bias, specs: [power], variables: [Vgate]}
  - {name: gain, specs: [gain_db, bw], variables: [W, Rd]}"""


@pytest.mark.ngspice
def test_staged_bfgs_csva(tmp_path: Path) -> None:
    # start: too much power (975 µW) and too little gain (2.9 dB); bandwidth passes
    design = """\
  Vgate: {start: 0.9, min: 0.6, max: 0.9}
  W:     {start: 3u,  min: 3u,  max: 10u}
  Rd:    {start: 500, min: 500, max: 3k}"""
    spec = load_spec(_csva_spec(tmp_path, design, STAGES))
    ev = _Recording(spec, Engine(workers=2))
    ev.log = []
    start = staged_bfgs(ev, spec.file.stages, rounds=1, budget=1, check_regions=False)  # evaluates x0 only
    result = staged_bfgs(ev, spec.file.stages, rounds=4, budget=600,
                         callback=lambda record: ev.log.append(("record", record)))
    assert result.objective < 0.1 * start.objective
    assert result.objective == 0.0 and result.status.startswith("all specs met"), result.status
    assert result.simulations <= 600
    first, last = result.history[0], result.history[-1]
    assert first["kind"] == last["kind"] == "region-check" and first["saturated"] and last["saturated"]
    # stage "bias" never moves W or Rd: check every point it simulated, finite-difference points included
    x = ev.x0
    batch: list[np.ndarray] = []
    checked = 0
    for kind, item in ev.log[1:]:
        if kind == "points":
            batch.append(item)
            continue
        if item.get("kind") != "stage":
            continue
        if item["stage"] == "bias" and batch:
            points = np.vstack(batch)
            assert np.array_equal(points[:, 1:], np.tile(x[1:], (len(points), 1)))
            checked += len(points)
        x, batch = np.array([item["x"][n] for n in ev.names]), []
    assert checked >= 3 and any(r.get("stage") == "bias" and not r["skipped"] for r in result.history)


@pytest.mark.ngspice
def test_staged_bfgs_reports_triode_start_and_continues(tmp_path: Path) -> None:
    design = """\
  Vgate: {start: 0.9, min: 0.6, max: 0.9}
  W:     {start: 5u,  min: 3u,  max: 10u}
  Rd:    {start: 3k,  min: 500, max: 3k}"""
    spec = load_spec(_csva_spec(tmp_path, design, STAGES))
    ev = Evaluator(spec, Engine(workers=2))
    start = staged_bfgs(ev, spec.file.stages, rounds=1, budget=1, check_regions=False)  # evaluates x0 only
    result = staged_bfgs(ev, spec.file.stages, rounds=2, budget=300)
    first = result.history[0]
    assert first["kind"] == "region-check" and first["saturated"] is False
    assert "M1: triode" in first["report"]
    assert result.status.startswith("WARNING at the start point: 1 of 1 device NOT in saturation: M1")
    assert any(r["kind"] == "stage" and not r["skipped"] for r in result.history)  # it went on
    # gain −17 dB → 8 dB: 10 dB needs a lower Vgate, which only stage "bias" moves, and its spec passes
    assert result.objective < 0.1 * start.objective
    assert result.history[-1]["kind"] == "region-check"


@pytest.mark.ngspice
def test_staged_bfgs_with_region_constraints(tmp_path: Path) -> None:
    """`regions: {M1: saturation}` turns the report into a constraint: the start (M1 in deep triode) breaks
    m1_sat, a stage moves the bias for it, and both region checks read the measures (no .op probe)."""
    design = """\
  Vgate: {start: 0.9, min: 0.6, max: 0.9}
  W:     {start: 5u,  min: 3u,  max: 10u}
  Rd:    {start: 3k,  min: 500, max: 3k}"""
    stages = """\
regions: {M1: saturation}
stages:
  - {name: bias, specs: [power, m1_sat, m1_vov], variables: [Vgate, Rd]}
  - {name: gain, specs: [gain_db, bw], variables: [W, Rd, Vgate]}"""
    spec = load_spec(_csva_spec(tmp_path, design, stages))
    assert {"m1_sat", "m1_vov"} <= set(spec.file.specs) and spec.file.specs["m1_sat"].min == 0.05

    class NoProbe(Evaluator):
        def probe(self, job, row):  # noqa: ANN001, ANN201
            raise AssertionError("the region constraints must be read from the measures")

    ev = NoProbe(spec, Engine(workers=2))
    result = staged_bfgs(ev, spec.file.stages, rounds=3, budget=400, protect=1)
    first, last = result.history[0], result.history[-1]
    assert first["kind"] == last["kind"] == "region-check" and first["regions"] == []
    assert first["saturated"] is False and "M1 saturation (margin 50 mV): m1_sat" in first["report"]
    assert result.status.startswith("WARNING at the start point: 1 of 1 device NOT in their `regions:` region")
    assert last["saturated"] is True and last["constraints"][0]["values"]["m1_sat"] >= 0.05
    assert result.objective == 0.0, result.status
