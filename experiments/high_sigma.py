"""High-sigma failure estimates against known answers (issue 17, part 5).

For every case (the analytic suite of :mod:`optiyield.reliability.analytic` and circuit cases on
specs/csva_4sigma.yaml, 5 statistical parameters, and specs/tsva_mismatch.yaml, 34 with per-device mismatch) and
every method, one record: the failure probability with its 95 % interval, the simulations spent, and the relative
error against the reference (the exact answer, or for a circuit our own brute-force plain Monte Carlo:
experiments/reference/high_sigma_brute_force.json, 1e7 CSVA samples, and tsva_mismatch_brute_force.json, made by
experiments/high_sigma_reference.py).

Methods: ``form_is`` (worst-case points of every bound, then a mixture importance sampling around all of
them, at the budget of the case's sigma: 1,000 / 3,000 / 5,000 simulations at 4 / 5 / 6 sigma), and the
OpenTURNS methods that need no design point, ``ce`` (cross-entropy IS), ``nais`` and ``subset`` (1,000
points per step), and for the circuit ``mc`` (plain Monte Carlo at the form_is budget). ``--budgets``
adds form_is records at further budgets on the circuits (``form_is@1500``). ``--scaling`` measures how the
worst-case search's cost grows with the number of statistical parameters on the TSVA (8 global parameters,
+13 threshold mismatches, +13 mobility mismatches) and prints it (``--scaling-json`` writes it).

    python experiments/high_sigma.py --json results.json            # the whole suite (minutes)
    python experiments/high_sigma.py --quick --json /tmp/q.json      # smoke configuration (seconds)
    python experiments/high_sigma.py --repeats 5 --no-circuit        # spread of the errors over 5 seeds
    python experiments/high_sigma.py --no-analytic --circuits csva --budgets 1500,2000 --repeats 5
    python experiments/high_sigma.py --no-analytic --circuits tsva_mismatch --scaling
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from optiyield.reliability.analytic import AnalyticCase, suite
from optiyield.reliability.importance import form_importance_sampling
from optiyield.reliability.limit_state import LimitState
from optiyield.reliability.montecarlo import plain_monte_carlo
from optiyield.reliability.ot_methods import openturns_estimate
from optiyield.reliability.result import FailureEstimate, sigma_level

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "experiments" / "reference" / "high_sigma_brute_force.json"
SPEC = ROOT / "specs" / "csva_4sigma.yaml"
#: circuit → (spec, brute-force reference, its cases: (case name, specs kept or None, key in per_measure or None))
CIRCUITS = {
    "csva": (SPEC, REFERENCE, (("csva_4sigma", None, None), ("two_region_csva_gain_window", ["gain_db"], "gain_db"),
                               ("csva_power", ["power"], "power"))),
    "tsva_mismatch": (ROOT / "specs" / "tsva_mismatch.yaml",
                      ROOT / "experiments" / "reference" / "tsva_mismatch_brute_force.json",
                      (("tsva_mismatch", None, None), ("two_region_tsva_offset", ["offset"], "offset"))),
}
KEYS = ("case", "method", "dimension", "sigma", "simulations", "estimate", "low", "high", "reference",
        "relative_error", "brute_force")


def budget(sigma: float, quick: bool) -> int:
    """Simulations allowed to form_is at a sigma level (the issue's targets)."""
    if quick:
        return 400
    return 1000 if sigma < 4.5 else 3000 if sigma < 5.5 else 5000


def methods(quick: bool, circuit: bool) -> dict[str, Callable[[LimitState, int, int], FailureEstimate]]:
    """name → run(state, budget, seed)."""
    per_level = 200 if quick else 1000
    table: dict[str, Callable[[LimitState, int, int], FailureEstimate]] = {
        "form_is": lambda s, b, seed: form_importance_sampling(s, b, seed=seed),
        "ce": lambda s, b, seed: openturns_estimate(s, "ce", per_level, seed=seed),
        "nais": lambda s, b, seed: openturns_estimate(s, "nais", per_level, seed=seed),
        "subset": lambda s, b, seed: openturns_estimate(s, "subset", per_level, seed=seed),
    }
    if quick:
        table = {k: table[k] for k in ("form_is", "ce")}
    if circuit:
        table["mc"] = lambda s, b, seed: plain_monte_carlo(s, b, seed=seed, batch=b)
    return table


def _number(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def record(case: str, method: str, dimension: int, reference: float, est: FailureEstimate,
           brute_force: bool) -> dict:
    """One JSON record (the issue's keys; NaN/inf written as null)."""
    rel = est.probability / reference - 1.0 if reference > 0 and math.isfinite(est.probability) else float("nan")
    return {"case": case, "method": method, "dimension": dimension, "sigma": sigma_level(reference),
            "simulations": int(est.simulations), "estimate": _number(est.probability), "low": _number(est.low),
            "high": _number(est.high), "reference": reference, "relative_error": _number(rel),
            "brute_force": brute_force}


def analytic_records(cases: list[AnalyticCase], quick: bool, seed: int) -> list[dict]:
    """Run every method on every analytic case."""
    out = []
    for c in cases:
        for name, run in methods(quick, circuit=False).items():
            est = run(c.make(), budget(c.sigma, quick), seed)
            out.append(record(c.name, name, c.dimension, c.probability, est, brute_force=False))
    return out


def circuit_records(quick: bool, seed: int, circuits: list[str], budgets: list[int],
                    references: dict[str, Path] | None = None) -> list[dict]:
    """Run the methods on the circuit cases and add the brute-force reference records."""
    from optiyield.reliability.circuit import CircuitLimitState
    from optiyield.sim.engine import Engine
    from optiyield.spec import load_spec

    out = []
    with Engine(workers=2) as engine:
        for circuit in circuits:
            spec_path, reference_path, cases = CIRCUITS[circuit]
            reference_path = (references or {}).get(circuit, reference_path)
            reference = json.loads(reference_path.read_text())
            spec = load_spec(spec_path)
            limits = {n: {"min": b.min, "max": b.max} for n, b in spec.file.specs.items()}
            if reference["limits"] != limits:
                raise SystemExit(f"{reference_path} was made for limits {reference['limits']}, but {spec_path.name} "
                                 f"has {limits}: re-count it with experiments/high_sigma_reference.py --count-only")
            for case, specs, key in cases[:1] if quick else cases:
                ref = reference if key is None else reference["per_measure"][key]
                p_ref = ref["probability"]
                state = CircuitLimitState(spec, engine, specs=specs)
                brute = FailureEstimate("mc", p_ref, ref["low"], ref["high"], reference["samples"])
                out.append(record(case, "mc_brute_force", state.dimension, p_ref, brute, brute_force=True))
                b = budget(sigma_level(p_ref), quick)
                if state.dimension > 30 and not quick:  # the worst-case search alone spends ~1,350 in 34 dimensions
                    b = max(b, 3000)
                for name, run in methods(quick, circuit=True).items():
                    est = run(CircuitLimitState(spec, engine, specs=specs), b, seed)
                    out.append(record(case, name, state.dimension, p_ref, est, brute_force=True))
                for extra in budgets:
                    est = form_importance_sampling(CircuitLimitState(spec, engine, specs=specs), extra, seed=seed)
                    out.append(record(case, f"form_is@{extra}", state.dimension, p_ref, est, brute_force=True))
    return out


def scaling(quick: bool) -> list[dict]:
    """Cost of the worst-case search (every bound, from the nominal, no exploration) on the TSVA with 8, 21 and
    34 statistical parameters (global only; + threshold mismatch; + mobility mismatch); ``quick``: 8 only."""
    import yaml

    from optiyield.api import load
    from optiyield.reliability.circuit import CircuitLimitState
    from optiyield.reliability.wcd import worst_case_distances
    from optiyield.sim.engine import Engine

    spec_path = CIRCUITS["tsva_mismatch"][0]
    data = yaml.safe_load(spec_path.read_text())
    entries = data["variation"]["parameters"]
    rows = []
    with Engine(workers=2) as engine:
        # the entries: 8 global, then the threshold mismatch, then the mobility mismatch
        for keep in (8,) if quick else (8, 9, 10):
            variant = {**data, "variation": {**data["variation"], "parameters": entries[:keep]}}
            spec = load(variant, base=spec_path.parent, name=f"tsva_mismatch_{keep}").spec
            state = CircuitLimitState(spec, engine)
            start = time.perf_counter()
            res = worst_case_distances(state)
            rows.append({"dimension": state.dimension, "bounds": state.bounds, "simulations": res.simulations,
                         "engine_calls": res.batches, "iterations": [p.iterations for p in res.points],
                         "beta": [p.beta for p in res.points], "status": [p.status for p in res.points],
                         "seconds": round(time.perf_counter() - start, 1)})
    return rows


def table(records: list[dict]) -> str:
    """A readable table of the records."""
    lines = [f"{'case':30s} {'method':15s} {'d':>3s} {'sigma':>5s} {'sims':>9s} {'estimate':>10s} "
             f"{'95% interval':>23s} {'reference':>10s} {'rel.err':>8s}"]
    for r in records:
        est = "failed" if r["estimate"] is None else f"{r['estimate']:.3e}"
        interval = "" if r["low"] is None else f"[{r['low']:.2e}, {r['high']:.2e}]"
        err = "" if r["relative_error"] is None else f"{100 * r['relative_error']:+.1f}%"
        lines.append(f"{r['case']:30s} {r['method']:15s} {r['dimension']:3d} {r['sigma']:5.2f} {r['simulations']:9,d} "
                     f"{est:>10s} {interval:>23s} {r['reference']:10.3e} {err:>8s}")
    return "\n".join(lines)


def spread(runs: list[list[dict]]) -> str:
    """Median and worst |relative error|, interval coverage and mean cost per case and method over seeds."""
    lines = [f"{'case':30s} {'method':15s} {'median|err|':>11s} {'max|err|':>9s} {'covered':>8s} {'sims':>8s}"]
    for i, first in enumerate(runs[0]):
        rows = [run[i] for run in runs]
        errs = [abs(r["relative_error"]) if r["relative_error"] is not None else math.inf for r in rows]
        cov = sum(r["low"] is not None and r["low"] <= r["reference"] <= r["high"] for r in rows)
        sims = np.mean([r["simulations"] for r in rows])
        lines.append(f"{first['case']:30s} {first['method']:15s} {100 * float(np.median(errs)):10.1f}% "
                     f"{100 * max(errs):8.1f}% {cov:4d}/{len(rows):<3d} {sims:8.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="three small analytic cases, one circuit case")
    parser.add_argument("--json", type=Path, help="write the records (first seed) here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1, help="seeds seed..seed+R-1; prints the spread")
    parser.add_argument("--cases", default="", help="only cases whose name contains this text")
    parser.add_argument("--no-circuit", action="store_true", help="skip the circuit cases (no ngspice)")
    parser.add_argument("--no-analytic", action="store_true", help="skip the analytic suite")
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="brute-force reference JSON of the CSVA")
    parser.add_argument("--circuits", default="csva,tsva_mismatch",
                        help=f"comma-separated circuit cases ({', '.join(CIRCUITS)})")
    parser.add_argument("--budgets", default="", help="further form_is budgets on the circuits, e.g. 1500,2000")
    parser.add_argument("--scaling", action="store_true", help="cost of the worst-case search against dimension")
    parser.add_argument("--scaling-json", type=Path, help="write the scaling rows here")
    args = parser.parse_args(argv)
    circuits = [c for c in args.circuits.split(",") if c]
    unknown = [c for c in circuits if c not in CIRCUITS]
    if unknown:
        parser.error(f"--circuits: unknown {', '.join(unknown)}; choose from {', '.join(CIRCUITS)}")
    if args.quick:
        circuits = circuits[:1]
    budgets = [int(b) for b in args.budgets.split(",") if b]
    cases = [c for c in suite(quick=args.quick) if args.cases in c.name]
    runs = []
    start = time.perf_counter()
    for k in range(args.repeats):
        seed = args.seed + k
        recs = [] if args.no_analytic else analytic_records(cases, args.quick, seed)
        if not args.no_circuit:
            recs += [r for r in circuit_records(args.quick, seed, circuits, budgets, {"csva": args.reference})
                     if args.cases in r["case"]]
        runs.append(recs)
        print(f"\nseed {seed}\n" + table(recs), flush=True)
    if args.repeats > 1:
        print(f"\nover {args.repeats} seeds\n" + spread(runs))
    if args.scaling:
        rows = scaling(args.quick)
        print("\nworst-case search cost against dimension (TSVA, every bound from the nominal, no exploration)")
        print(f"{'d':>3s} {'bounds':>6s} {'simulations':>11s} {'engine calls':>12s} {'iterations':>12s} "
              f"{'beta':>24s} {'s':>6s}")
        for r in rows:
            print(f"{r['dimension']:3d} {r['bounds']:6d} {r['simulations']:11,d} {r['engine_calls']:12d} "
                  f"{str(r['iterations']):>12s} {', '.join(f'{b:.2f}' for b in r['beta']):>24s} {r['seconds']:6.1f}")
        if args.scaling_json:
            args.scaling_json.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"\n{time.perf_counter() - start:.0f} s")
    if args.json:
        assert all(tuple(r) == KEYS for r in runs[0])
        args.json.write_text(json.dumps(runs[0], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
