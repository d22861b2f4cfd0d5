"""Every script in experiments/ and benchmarks/ runs, in a tiny configuration, as its own process.

Each smoke test starts the script with this interpreter (and this checkout's package first on
PYTHONPATH), checks that it exits 0, prints its table and writes the ``--json`` keys its docstring names,
with values that make sense (real ngspice numbers, so a broken testbench or measure fails here).
:data:`SMOKE_TESTS` maps every script to its smoke test, here or next to the behaviour it pins; a new
script without an entry fails :func:`test_every_script_has_a_smoke_test`.
"""

from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs_ml, run_cli

ROOT = Path(__file__).resolve().parents[1]
AICIRCUIT_ROWS = Path(__file__).resolve().parent / "data" / "aicircuit"

#: script → its smoke test ("file::function"); the function's source must name the script.
SMOKE_TESTS = {
    "experiments/aicircuit_agreement.py": "tests/test_scripts.py::test_aicircuit_agreement_smoke",
    "experiments/bandler_doubler.py": "tests/test_doubler.py::test_bandler_experiment_twenty_outcome_smoke",
    "experiments/corner_minimax.py": "tests/test_corners.py::test_corner_minimax_experiment_smoke",
    "experiments/fast_gradients.py": "tests/test_scripts.py::test_fast_gradients_smoke",
    "experiments/gradient_cost.py": "tests/test_scripts.py::test_gradient_cost_smoke",
    "experiments/high_sigma.py": "tests/test_reliability_circuit.py::test_high_sigma_experiment_smoke",
    "experiments/high_sigma_reference.py": "tests/test_reliability_circuit.py::test_high_sigma_reference_smoke",
    "experiments/inverse_models.py": "tests/test_scripts.py::test_inverse_models_smoke",
    "experiments/l1_model_accuracy.py": "tests/test_scripts.py::test_l1_model_accuracy_smoke",
    "experiments/lna_first_cut.py": "tests/test_scripts.py::test_lna_first_cut_smoke",
    "experiments/parasitics_effect.py": "tests/test_scripts.py::test_parasitics_effect_smoke",
    "experiments/region_yields.py": "tests/test_region_specs.py::test_region_yields_experiment_smoke",
    "experiments/sky130_corners.py": "tests/test_sky130.py::test_corners_experiment_smoke",
    "experiments/sky130_mismatch.py": "tests/test_sky130.py::test_mismatch_experiment_smoke",
    "experiments/vga_staged.py": "tests/test_scripts.py::test_vga_staged_smoke",
    "experiments/vga_two_tone.py": "tests/test_vga_cs.py::test_iip3_estimate_against_a_two_tone_simulation",
    "experiments/warmstart_vs_cold.py": "tests/test_scripts.py::test_warmstart_vs_cold_smoke",
    "benchmarks/corners_cost.py": "tests/test_corners.py::test_corners_cost_benchmark_smoke",
    "benchmarks/mc_throughput.py": "tests/test_scripts.py::test_mc_throughput_smoke",
    "benchmarks/op_measure_cost.py": "tests/test_measure_device.py::test_op_measure_cost_benchmark_smoke",
    "benchmarks/model_placement.py": "tests/test_netlist_compat.py::test_model_placement_benchmark_smoke",
    "benchmarks/peer_spicelib.py": "tests/test_scripts.py::test_peer_spicelib_smoke",
    "benchmarks/sky130_load.py": "tests/test_sky130.py::test_load_benchmark_smoke",
    "benchmarks/transient_cost.py": "tests/test_scripts.py::test_transient_cost_smoke",
    "benchmarks/yield_opt.py": "tests/test_scripts.py::test_yield_opt_smoke",
}
#: Modules the scripts import, not scripts: exempt by name (and they must have no ``__main__`` block).
HELPERS = {"experiments/warmstart_common.py"}


def test_every_script_has_a_smoke_test():
    """Each experiments/*.py and benchmarks/*.py (helpers aside) has an entry in SMOKE_TESTS naming an
    existing test function whose source names the script; no entry names a script that is gone."""
    scripts = {p.relative_to(ROOT).as_posix() for folder in ("experiments", "benchmarks")
               for p in (ROOT / folder).glob("*.py")}
    missing = sorted(scripts - HELPERS - set(SMOKE_TESTS))
    assert not missing, f"scripts without a smoke test (add one and an entry in SMOKE_TESTS): {missing}"
    assert not sorted(set(SMOKE_TESTS) - scripts), "SMOKE_TESTS names scripts that do not exist"
    for helper in HELPERS & scripts:
        assert "__main__" not in (ROOT / helper).read_text(), f"{helper} runs as a script: give it a smoke test"
    for script, test in SMOKE_TESTS.items():
        file, function = test.split("::")
        source = (ROOT / file).read_text()
        node = next((n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == function),
                    None)
        assert node is not None, f"{test} (smoke test of {script}) does not exist"
        assert Path(script).stem in ast.get_source_segment(source, node), f"{test} does not run {script}"


def run_script(script: str, *args: object, cwd: Path, timeout: float = 300) -> str:
    """Run ``script`` (relative to the repository) with this interpreter and this checkout's package;
    assert it exits 0 and return its standard output with runs of whitespace collapsed."""
    env = dict(os.environ, COLUMNS="200")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    process = subprocess.run([sys.executable, str(ROOT / script), *(str(a) for a in args)], capture_output=True,
                             text=True, timeout=timeout, cwd=cwd, env=env)
    assert process.returncode == 0, (f"{script} exited {process.returncode}\n{process.stdout[-2000:]}\n"
                                     f"{process.stderr[-4000:]}")
    return " ".join(process.stdout.split())


def read_json(path: Path) -> dict | list:
    """The script's ``--json`` output."""
    assert path.is_file(), f"no --json output at {path}"
    return json.loads(path.read_text())


@pytest.mark.ngspice
def test_aicircuit_agreement_smoke(tmp_path):
    """Two rows of every circuit with an aicircuit.yaml, from the sample of AICircuit's Spectre datasets in
    tests/data/aicircuit (MIT, see the LICENSE there): every metric compared on both rows, and ngspice
    agrees with Spectre (median relative difference under 15 % — measured ≤ 8 %, most under 2 %). The CVA's
    ``bw_sampled`` (their bandwidth procedure on our response) used to crash with KeyError '_grid1'."""
    out = tmp_path / "agreement.json"
    text = run_script("experiments/aicircuit_agreement.py", "--data", AICIRCUIT_ROWS, "--rows", 2, "--json", out,
                      cwd=tmp_path)
    assert "ngspice vs Spectre (AICircuit), 2 random rows per circuit" in text and "bw_sampled" in text
    import yaml

    circuits = {p.parent.name: yaml.safe_load(p.read_text()) for p in (ROOT / "circuits").glob("*/aicircuit.yaml")}
    data = read_json(out)
    assert set(data) == set(circuits) and {"cva", "pa", "vco"} <= set(data)
    for circuit, mapping in circuits.items():
        report = data[circuit]
        assert report["rows"] == 2 and report["failed"] == 0, (circuit, report)
        for label, metric in mapping["metrics"].items():
            stats = report[metric.get("measure", label)]
            assert stats["column"] == metric.get("column", label)
            assert stats["compared"] == 2, (circuit, label, stats)
            assert set(stats) >= {"median", "p90", "median_abs", "p90_abs"}
            assert 0 <= stats["median"] < 0.15, (circuit, label, stats)
    # their coarse-grid procedure lands closer to their number than our exact 3 dB point (docs/circuits.md)
    assert data["cva"]["bw_sampled"]["median"] < data["cva"]["bw"]["median"]


@pytest.mark.ngspice
def test_yield_opt_smoke(tmp_path):
    """The yield-optimization benchmark in its --quick form (CSVA, 40 outcomes, budgets 200/600, one seed):
    every method has both budgets with yields that are fractions of the verification sample, simulations
    within the budget, a yield that never drops with a larger budget on the optimization outcomes, and the
    curves' PNG."""
    pytest.importorskip("cma", reason="the opt extra (pip install -e '.[opt]') runs the library baselines")
    pytest.importorskip("optuna", reason="the opt extra (pip install -e '.[opt]') runs the library baselines")
    out = tmp_path / "bench.json"
    text = run_script("benchmarks/yield_opt.py", "--quick", "--json", out, cwd=tmp_path, timeout=600)
    assert "median verified yield" in text and "default" in text
    data = read_json(out)
    assert set(data) == {"csva"}
    methods = data["csva"]["methods"]
    expected = {"default", "auto-igat", "auto-fast", "l1-igat", "l1-past", "nelder-mead", "random", "cma-es",
                "optuna-tpe", "optuna-gp"}
    assert expected <= set(methods)
    for method, by_budget in methods.items():
        assert set(by_budget) == {"200", "600"}, method
        for budget, cell in by_budget.items():
            assert 0 <= cell["iqr"][0] <= cell["median_verified_yield"] <= cell["iqr"][1] <= 1
            assert cell["median_verified_yield"] * 400 == pytest.approx(round(cell["median_verified_yield"] * 400))
            assert 0 <= cell["median_sims"] <= int(budget)
        small, large = by_budget["200"]["median_opt_yield"], by_budget["600"]["median_opt_yield"]
        if small is not None and large is not None:
            assert large >= small, method
    assert (tmp_path / "bench.png").stat().st_size > 10_000


@pytest.mark.ngspice
def test_yield_opt_best_known_smoke(tmp_path):
    """--best-known with two seeds: every method at 10× the largest budget, and the cache holds the highest median
    verified yield over the methods, with the method, the seeds and the command; a later run reads it."""
    cache = tmp_path / "best.json"
    out = tmp_path / "bench.json"
    run_script("benchmarks/yield_opt.py", "--quick", "--best-known", "--best-known-file", cache, "--methods",
               "default,nelder-mead", "--seeds", "2", "--json", out, cwd=tmp_path, timeout=600)
    known = read_json(cache)["csva"]
    methods = read_json(out)["csva"]["methods"]
    medians = {m: cell["6000"]["median_verified_yield"] for m, cell in methods.items()}
    assert set(medians) == {"default", "nelder-mead"} and all(c["6000"]["seeds"] == 2 for c in methods.values())
    assert known["best_known"] == max(medians.values()) and medians[known["method"]] == known["best_known"]
    assert known["seeds"] == 2 and known["budget"] == 6000 and "--best-known" in known["command"]
    run_script("benchmarks/yield_opt.py", "--quick", "--best-known-file", cache, "--methods", "default",
               "--json", out, cwd=tmp_path, timeout=600)
    assert read_json(out)["csva"]["best_known"] == known["best_known"]


@pytest.mark.ngspice
def test_yield_opt_set_luck_smoke(tmp_path):
    """--set-luck with two seeds: each seed's outcome set is scored at the other seed's default design (a yield on
    its outcomes and a verified yield, both fractions), and with two seeds the gap less the luck is the mean of the
    per-seed differences."""
    out = tmp_path / "bench.json"
    text = run_script("benchmarks/yield_opt.py", "--quick", "--methods", "default", "--seeds", "2", "--set-luck",
                      "--json", out, cwd=tmp_path, timeout=600)
    assert "outcome sets' luck" in text
    result = read_json(out)["csva"]
    luck = result["set_luck"]
    assert luck["budget"] == 600 and len(luck["per_seed_luck"]) == 2
    assert all(-1 < v < 1 for v in luck["per_seed_luck"])
    gap = result["methods"]["default"]["600"]["median_gap"]
    assert luck["median_gap_less_luck"] == pytest.approx(gap - luck["median_luck"], abs=1e-12)


def test_yield_opt_warm_start_smoke(tmp_path):
    """--warm-start with a lookup model trained on a 64-point CSVA sweep: the method default+ml runs beside the
    default and the JSON has the simulations each needs to 95 % of the reference yield on its optimization
    outcomes and the smallest budget of the ladder whose verified yield reaches it (a count or None per seed),
    and their ratios."""
    data, model = tmp_path / "csva.parquet", tmp_path / "csva_lookup.oym"
    run_cli("sweep", ROOT / "specs" / "csva.yaml", "-n", 64, "--out", data)
    run_cli("train", ROOT / "specs" / "csva.yaml", "--data", data, "--model", "lookup", "--out", model)
    out = tmp_path / "warm.json"
    text = run_script("benchmarks/yield_opt.py", "--quick", "--methods", "default", "--warm-start", model,
                      "--json", out, cwd=tmp_path, timeout=600)
    assert "simulations to 95 %" in text
    csva = read_json(out)["csva"]
    assert set(csva["methods"]) == {"default", "default+ml"}
    warm = csva["warm_start"]
    assert 0 < warm["level"] <= 1
    for method in ("default", "default+ml"):
        assert all(r is None or 0 < r <= 600 for r in warm[method]["per_seed"])
        assert all(r is None or r in (200, 600) for r in warm[method]["per_seed_verified"])  # the quick ladder
    assert "ratio_cold_over_ml_verified" in warm and "smallest budget whose design verifies" in text


def test_yield_opt_warm_start_with_a_yield_model_smoke(tmp_path):
    """--warm-start with a yield model (a 512-point variation sweep, 5 epochs): default+ml is its checked
    proposal (4 candidates × 25 outcomes = 100 simulations, no minimax) then the yield step, and the JSON has
    its figures."""
    data, model = tmp_path / "csva_variation.parquet", tmp_path / "csva_yield.oym"
    run_cli("sweep", ROOT / "specs" / "csva.yaml", "-n", 512, "--variation", "--out", data)
    run_cli("train", ROOT / "specs" / "csva.yaml", "--data", data, "--model", "yield", "--epochs", 5, "--out", model)
    out = tmp_path / "warm.json"
    run_script("benchmarks/yield_opt.py", "--quick", "--methods", "default", "--warm-start", model,
               "--budgets", "100,600", "--json", out, cwd=tmp_path, timeout=600)
    csva = read_json(out)["csva"]
    ml = csva["methods"]["default+ml"]
    assert ml["100"]["median_sims"] == 100  # the proposal's check, held as the design at 100 simulations
    assert 0 <= ml["100"]["median_verified_yield"] <= 1 and "ratio_cold_over_ml_verified" in csva["warm_start"]


def test_fast_gradients_smoke(tmp_path):
    """FAST against central differences and PAST on 30 CSVA outcomes: FAST simulates n·m anchor rows (m = 2 × (5
    deviate dimensions + 1) = 12), far fewer than PAST's n·N, and its errors are finite fractions."""
    out = tmp_path / "fast.json"
    text = run_script("experiments/fast_gradients.py", "--problems", "csva", "--outcomes", 30, "--json", out,
                      cwd=tmp_path)
    assert "FAST / PAST ngspice seconds" in text
    row = read_json(out)["csva"]
    assert row["past"]["simulations"] == 4 * 30 and row["fast"]["simulations"] == 4 * 12
    assert row["central"]["simulations"] == 2 * 4 * 30
    for label in ("past", "fast"):
        assert set(row[label]["rel_error"]) == {"gain_db", "bw", "power"}
        assert 0 <= row[label]["max_rel_error"] < 1
    assert 0 < row["fast_over_past_ngspice"] < 1


def test_l1_model_accuracy_smoke(tmp_path):
    """OPAMP2, one seed, 40 outcomes, a 20-outcome first stage, one radius: both designs are scored on the 40
    outcomes, FAST's errors are finite, and at the minimax design the LP's prediction with forward differences holds
    (ρ near 1 at a radius of 0.025)."""
    out = tmp_path / "l1m.json"
    text = run_script("experiments/l1_model_accuracy.py", "--seeds", 0, "--outcomes", 40, "--start-samples", 20,
                      "--radii", 0.025, "--json", out, cwd=tmp_path)
    assert "predicted and actual decrease" in text
    seed = read_json(out)["0"]
    assert set(seed) == {"minimax", "first_stage"}
    for row in seed.values():
        assert row["outcomes"] == 40 and 0 <= row["passed"] <= 40
        assert set(row["fast_jacobian_error"]) == {"gain_db", "ugf", "pm", "power", "offset"}
        assert all(math.isfinite(e) and e >= 0 for e in row["fast_jacobian_error"].values())
        assert set(row["radii"]["0.025"]) == {"fast", "past"}
    past = seed["minimax"]["radii"]["0.025"]["past"]
    assert past["predicted"] > 0 and 0.5 < past["rho"] < 1.5


def test_gradient_cost_smoke(tmp_path):
    """Every method on 5 outcomes, one iteration: yields are counts of the 5 outcomes inside their
    intervals; the baselines get the gradient methods' simulation budgets."""
    out = tmp_path / "cost.json"
    text = run_script("experiments/gradient_cost.py", "--outcomes", 5, "--verify", 5, "--max-iter", 1,
                      "--json", out, cwd=tmp_path)
    assert "minimax start" in text and "one-sided l1, IGAT" in text and "Nelder-Mead (IGAT's budget)" in text
    data = read_json(out)
    assert data["outcomes"] == 5 and 0 <= data["start_yield"] <= 1
    for method in ("past", "igat", "random", "nelder-mead", "nelder-mead-igat-budget"):
        row = data[method]
        assert row["yield_low"] <= row["yield"] <= row["yield_high"]
        for key in ("yield", "verify_yield"):
            assert row[key] * 5 == pytest.approx(round(row[key] * 5))
        assert row["simulations"] > 0 and row["iterations"] >= 1 and row["ngspice_seconds"] > 0
    assert data["random"]["simulations"] <= data["past"]["simulations"]
    assert data["nelder-mead-igat-budget"]["simulations"] <= data["igat"]["simulations"]


@pytest.fixture(scope="module")
def ml_data(tmp_path_factory) -> Path:
    """One folder for the tiny sweep datasets of the two ML experiments (the first one simulates it)."""
    return tmp_path_factory.mktemp("ml_data")


@needs_ml
@pytest.mark.ngspice
def test_inverse_models_smoke(tmp_path, ml_data):
    """Every model kind on a 64-point CSVA sweep, 2 epochs, 3 exact targets and 2 held-out queries."""
    from optiyield.propose.regressors import KINDS

    out = tmp_path / "inverse.json"
    text = run_script("experiments/inverse_models.py", "--circuits", "csva", "--points", 64, "--data-dir", ml_data,
                      "--test", 3, "--targets", 2, "--candidates", 2, "--epochs", 2, "--plots", tmp_path / "plots",
                      "--json", out, cwd=tmp_path)
    assert "csva: median error after re-simulation" in text and "fixed design" in text
    report = read_json(out)["csva"]
    assert report["dataset_rows"] == 64 and report["test_targets"] == 3 and report["heldout_queries"] == 2
    assert set(report["median_rel_error"]) == set(KINDS)
    measures = set(report["fixed_design_median_rel_error"])
    assert measures == {"gain_db", "bw", "power"}
    for kind in KINDS:
        assert set(report["median_rel_error"][kind]) == measures
        assert all(math.isfinite(v) and v >= 0 for v in report["median_rel_error"][kind].values())
        assert 0 <= report["threshold_success"][kind] <= 1 and 0 <= report["threshold_success_top1"][kind] <= 1
    assert (tmp_path / "plots" / "csva.png").stat().st_size > 0


@needs_ml
@pytest.mark.ngspice
def test_warmstart_vs_cold_smoke(tmp_path, ml_data):
    """One random and one held-out target on a 64-point CSVA sweep, three starts each, budget 20."""
    out = tmp_path / "warm.json"
    text = run_script("experiments/warmstart_vs_cold.py", "--circuits", "csva", "--points", 64, "--data-dir",
                      ml_data, "--targets", 1, "--heldout-targets", 1, "--candidates", 2, "--budget", 20,
                      "--epochs", 2, "--yield-samples", 4, "--plot", tmp_path / "warm.png", "--json", out,
                      cwd=tmp_path)
    assert "Simulations to the first design meeting every spec" in text and "csva (held-out)" in text
    report = read_json(out)["csva"]
    assert report["dataset_rows"] == 64 and report["budget"] == 20
    for summary in (report, report["heldout"]):
        assert summary["targets"] <= 1
        for method in ("cold", "lookup", "ml"):
            sims = summary[f"{method}_median_sims"]
            assert sims is None or 1 <= sims <= 20
            if summary["targets"]:
                assert 0 <= summary[f"{method}_success"] <= 1
    assert report["heldout"]["targets"] == 1
    assert (tmp_path / "warm.png").stat().st_size > 0


@pytest.mark.ngspice
def test_lna_first_cut_smoke(tmp_path):
    """The 2.4 GHz first cut: the sizer's 21 dB target is met in ngspice without tuning."""
    out = tmp_path / "cut.json"
    text = run_script("experiments/lna_first_cut.py", "--frequencies", 2.4, "--max-iter", 2, "--polish-iter", 1,
                      "--json", out, cwd=tmp_path)
    assert "cascode LNA first cuts" in text and "2.4 GHz: first cut" in text
    (row,) = read_json(out)
    assert row["f_hz"] == pytest.approx(2.4e9)
    assert abs(row["s21_db"] - 21.0) < 1.0 and 0 < row["nf_db"] < 3 and row["s11_db"] < -10
    assert row["polish_sims"] >= 1 and row["cold_sims"] >= 1 and "polished" in row


@pytest.mark.ngspice
def test_parasitics_effect_smoke(tmp_path):
    """CSVA with and without the parasitic regression: the added capacitances cut the bandwidth, the
    low-frequency gain and dc power stay; 8-sample yields both ways."""
    out = tmp_path / "parasitics.json"
    text = run_script("experiments/parasitics_effect.py", "--specs", "csva", "--samples", 8, "--json", out,
                      cwd=tmp_path)
    assert "csva: start point without / with parasitics" in text and "capacitances added" in text
    entry = read_json(out)["csva"]
    without, with_ = entry["nominal_without"], entry["nominal_with"]
    assert with_["bw"] < 0.95 * without["bw"]
    assert with_["gain_db"] == pytest.approx(without["gain_db"], abs=1e-6)
    assert with_["power"] == pytest.approx(without["power"], rel=1e-9)
    assert all(caps["cgs"] > 0 and caps["cgd"] > 0 for caps in entry["added_fF"].values())
    assert entry["yield_samples"] == 8 and 0 <= entry["yield_without"] <= 1 and 0 <= entry["yield_with"] <= 1


@pytest.mark.ngspice
def test_vga_staged_smoke(tmp_path):
    """Staged and unstaged BFGS at 10 GHz with a 4-simulation budget, with the spec's region constraints (M1 and
    M2 in saturation, 50 mV): both stop within it, the four region specs are judged besides the nine, and the
    start's M1 margin (25 mV) fails the constraint that the unconstrained VGA broke."""
    out = tmp_path / "vga.json"
    text = run_script("experiments/vga_staged.py", "--freqs", 10, "--budget", 4, "--rounds", 1, "--json", out,
                      cwd=tmp_path)
    assert "VGA at 10 GHz: staged vs unstaged BFGS" in text and "specs met" in text
    assert "M1, M2 in saturation, 50 mV" in text
    figures = read_json(out)
    assert figures["regions"] is True
    result = figures["10GHz"]
    assert set(result) == {"start", "staged", "unstaged"}
    assert 8 < result["start"]["s21max"] < 14  # the start point's small-signal gain, dB
    assert 0 < result["start"]["m1_sat"] < 0.05 < result["start"]["m2_sat"]  # M1 saturated, but not by 50 mV
    for method in ("staged", "unstaged"):
        run = result[method]
        assert 1 <= run["simulations"] <= 4 and math.isfinite(run["objective"])
        assert len(run["passing"]) + len(run["failing"]) == 9 + 4  # nine specs and m1/m2 _sat/_vov
        assert 0 <= run["specs_met"] <= 9 and isinstance(run["regions_held"], bool) and "Vc" in run["design"]
        assert set(run["tradeoff"]) == set(run["failing"])


@pytest.mark.ngspice
def test_mc_throughput_smoke(tmp_path):
    """100 CSVA samples four ways: batched and per-sample gains agree; every rate is positive."""
    out = tmp_path / "throughput.json"
    text = run_script("benchmarks/mc_throughput.py", "--samples", 100, "--batch-size", 50, "--repeats", 1,
                      "--json", out, cwd=tmp_path)
    assert "CSVA Monte Carlo, 100 samples" in text and "engine overhead over bare ngspice" in text
    figures = read_json(out)
    assert figures["samples"] == 100
    for key in ("samples_per_s_per_sample_process", "samples_per_s_batched_1", "samples_per_s_batched_all",
                "speedup_vs_per_sample", "bare_ngspice_seconds"):
        assert figures[key] > 0, key
    assert figures["overhead_vs_bare"] > -0.9
    assert figures["max_gain_difference_db"] < 1e-6


@pytest.mark.ngspice
def test_peer_spicelib_smoke(tmp_path):
    """10 samples through spicelib and optiyield (same gains), then the scaling tables on 100 samples.
    Every timed Dask run simulates (its wall time is not far below its ngspice time per slot): a warm-up on
    the timed rows used to be served from the cluster's memory."""
    pytest.importorskip("spicelib", reason="the peer benchmark needs spicelib (the [test] extra: "
                                           "pip install -e '.[test]')")
    out = tmp_path / "peer.json"
    text = run_script("benchmarks/peer_spicelib.py", "--samples", 10, "--scaling-samples", 100, "--repeats", 1,
                      "--json", out, cwd=tmp_path)
    assert "spicelib (SimRunner, one process per sample)" in text and "Dask LocalCluster, 2 workers" in text
    figures = read_json(out)
    for key in ("optiyield_samples_per_s", "spicelib_samples_per_s", "ratio", "speedup_1_to_2_workers"):
        assert figures[key] > 0, key
    assert figures["spicelib_failed"] == 0 and figures["max_gain_difference_db"] < 1e-3
    assert [r["batch_size"] for r in figures["batch_scaling"]] == [50, 100, 250, 500, 1000]
    assert [r["workers"] for r in figures["worker_scaling"]] == [1, 2]
    for row in figures["batch_scaling"] + figures["worker_scaling"]:
        assert row["overhead"] > -0.5, row
        # every configuration ran ngspice, whose CPU is counted (Python's can round to 0 on 100 samples)
        assert row["ngspice_cpu_us_per_sample"] > 0 and row["python_cpu_us_per_sample"] >= 0, row


@pytest.mark.ngspice
def test_transient_cost_smoke(tmp_path):
    """The doubler and the PA, 2 samples, 1 through the reference transient: both testbenches run, before and
    after, with real ngspice seconds; the PA's cold samples start from the linear periodic state (two ngspice
    runs each); every measure within 0.1 dB / 0.3 %-points of the long, fine reference, before and after."""
    out = tmp_path / "cost.json"
    text = run_script("benchmarks/transient_cost.py", "--quick", "--json", out, cwd=tmp_path, timeout=900)
    assert "Transient testbenches" in text
    data = read_json(out)
    assert set(data) == {"doubler", "pa"}
    for key, entry in data.items():
        assert entry["seconds_per_sample_before"] > 0 and entry["seconds_per_sample_after"] > 0
        assert entry["speedup"] == pytest.approx(entry["seconds_per_sample_before"] / entry["seconds_per_sample_after"])
        assert entry["failed_before"] == 0 and entry["failed_after"] == 0
        for label in ("max_difference", "max_difference_before"):
            assert set(entry[label]) == set(entry["units"]), key
            for measure, value in entry[label].items():
                limit = 0.3 if entry["units"][measure] == "%" else 0.1
                assert 0 <= value < limit or entry["units"][measure] not in ("dB", "dBm", "%"), (key, measure, value)
    assert data["pa"]["runs_after"] == 2 * data["pa"]["runs_before"]   # pre-run + transient per deck
    # --quick checks the other designs too: every design, before and after, every measure compared
    for key, designs in (("doubler", 6), ("pa", 3)):
        by_design = data[key]["max_difference_by_design"]
        assert len(by_design) == designs
        for diffs in by_design.values():
            for label in ("after", "before"):
                assert set(diffs[label]) == set(data[key]["units"])
    # --quick times a 1-outcome PAST Jacobian three ways (before, after, after one outcome per deck) against the
    # reference: the grouped deck runs the same rows, so its Jacobian agrees with today's partition's
    for key in ("doubler", "pa"):
        jac = data[key]["jacobian"]
        grouped = jac["after, one outcome per deck"]
        assert grouped["cpu_seconds"] > 0 and jac["grouped_speedup_cpu"] > 0
        for measure, error in jac["after"]["relative_error"].items():
            assert abs(grouped["relative_error"][measure] - error) < 0.05, (key, measure)
    # at the optimized designs the gain and power stay within 0.1 dB of the reference (measured: <= 0.05 on 8)
    for key, design, measures in (("doubler", "fast_optimum", ("conv_gain", "pout2_dbm")),
                                  ("doubler", "minimax", ("conv_gain", "pout2_dbm")),
                                  ("pa", "flagship", ("gain", "psat"))):
        for measure in measures:
            assert 0 <= data[key]["max_difference_by_design"][design]["after"][measure] < 0.1, (key, design, measure)
    assert data["doubler"]["max_difference"]["conv_gain"] < 0.1
