"""High-sigma failure estimates against known answers (issue 17, part 5).

For every case (the analytic suite of :mod:`optiyield.reliability.analytic` and circuit cases on
specs/csva_4sigma.yaml) and every method, one record: the failure probability with its 95 % interval,
the simulations spent, and the relative error against the reference (the exact answer, or for the
circuit our own brute-force plain Monte Carlo of 1e7 samples, experiments/reference/
high_sigma_brute_force.json, made by experiments/high_sigma_reference.py).

Methods: ``form_is`` (worst-case points of every bound, then a mixture importance sampling around all of
them, at the budget of the case's sigma: 1,000 / 3,000 / 5,000 simulations at 4 / 5 / 6 sigma), and the
OpenTURNS methods that need no design point, ``ce`` (cross-entropy IS), ``nais`` and ``subset`` (1,000
points per step), and for the circuit ``mc`` (plain Monte Carlo at the form_is budget).

    python experiments/high_sigma.py --json results.json            # the whole suite (minutes)
    python experiments/high_sigma.py --quick --json /tmp/q.json      # smoke configuration (seconds)
    python experiments/high_sigma.py --repeats 5 --no-circuit        # spread of the errors over 5 seeds
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


def circuit_cases(reference: dict) -> list[tuple[str, list[str] | None, dict]]:
    """(case name, specs kept, reference figures) of the circuit cases the reference file covers."""
    cases = [("csva_4sigma", None, reference)]
    measures = reference.get("per_measure", {})
    if "gain_db" in measures:
        cases.append(("two_region_csva_gain_window", ["gain_db"], measures["gain_db"]))
    if "power" in measures:
        cases.append(("csva_power", ["power"], measures["power"]))
    return cases


def circuit_records(quick: bool, seed: int, reference_path: Path) -> list[dict]:
    """Run the methods on the circuit cases and add the brute-force reference records."""
    from optiyield.reliability.circuit import CircuitLimitState
    from optiyield.sim.engine import Engine
    from optiyield.spec import load_spec

    reference = json.loads(reference_path.read_text())
    spec = load_spec(SPEC)
    limits = {n: {"min": b.min, "max": b.max} for n, b in spec.file.specs.items()}
    if reference["limits"] != limits:
        raise SystemExit(f"{reference_path} was made for limits {reference['limits']}, but {SPEC.name} has "
                         f"{limits}: re-count it with experiments/high_sigma_reference.py --count-only")
    out = []
    with Engine(workers=2) as engine:
        cases = circuit_cases(reference)[:1] if quick else circuit_cases(reference)
        for case, specs, ref in cases:
            p_ref = ref["probability"]
            state = CircuitLimitState(spec, engine, specs=specs)
            brute = FailureEstimate("mc", p_ref, ref["low"], ref["high"], reference["samples"])
            out.append(record(case, "mc_brute_force", state.dimension, p_ref, brute, brute_force=True))
            b = budget(sigma_level(p_ref), quick)
            for name, run in methods(quick, circuit=True).items():
                state = CircuitLimitState(spec, engine, specs=specs)
                est = run(state, b, seed)
                out.append(record(case, name, state.dimension, p_ref, est, brute_force=True))
    return out


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
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="brute-force reference JSON")
    args = parser.parse_args(argv)
    cases = [c for c in suite(quick=args.quick) if args.cases in c.name]
    runs = []
    start = time.perf_counter()
    for k in range(args.repeats):
        seed = args.seed + k
        recs = [] if args.no_analytic else analytic_records(cases, args.quick, seed)
        if not args.no_circuit:
            recs += [r for r in circuit_records(args.quick, seed, args.reference) if args.cases in r["case"]]
        runs.append(recs)
        print(f"\nseed {seed}\n" + table(recs), flush=True)
    if args.repeats > 1:
        print(f"\nover {args.repeats} seeds\n" + spread(runs))
    print(f"\n{time.perf_counter() - start:.0f} s")
    if args.json:
        assert all(tuple(r) == KEYS for r in runs[0])
        args.json.write_text(json.dumps(runs[0], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
