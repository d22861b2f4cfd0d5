"""Region constraints on the shipped amplifier specs (issue 21, part 4): how the yields move.

The region constraints are the ones a designer would put on these amplifiers (:data:`REGIONS`: the CSVA's
M1; every one of the TSVA's 13 devices; the LNA's input device M0 and cascode M1, all in saturation with the
default 50 mV margin); a spec file that carries its own ``regions:`` is used as it is. For each spec this runs,
from the same start and with the same outcomes:

1. the Monte Carlo yield at the start design without and with the region specs (the same samples scored twice);
2. the spec's own ``run.steps`` WITHOUT the region specs (the region measures are still simulated, not
   constrained), and its verification sample scored with them too: how much of the old result's yield had a
   device out of its region;
3. the same steps WITH the region specs: the optimizers now keep the devices in saturation.

    python experiments/region_yields.py [--specs csva,tsva,lna] [--samples N] [--verify N] [--json FILE]

``--samples`` overrides the optimization outcomes and the start Monte Carlo, ``--verify`` the verification
sample, ``--max-iter`` the iterations of each minimax/yield step (defaults: the specs' own settings).
JSON: {spec: {"regions": {device: region}, "start": {"without": y, "with": y}, "without": {"verified": y,
"verified_with_regions": y, "region_failures": {device: n}, "simulations": n, "design": {...}}, "with":
{"verified": y, "region_failures": {...}, "simulations": n, "design": {...}}}}, yields as fractions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.montecarlo import run_monte_carlo  # noqa: E402
from optiyield.run import execute  # noqa: E402
from optiyield.sim.engine import FAILED, Engine  # noqa: E402
from optiyield.spec import Spec, load_spec, revise, spec_from_data  # noqa: E402

#: The devices a designer wants in saturation, per spec (used when the spec file has no ``regions:``).
REGIONS = {
    "csva": {"M1": "saturation"},
    "tsva": {d: "saturation" for d in ("MN4", "MN2", "MN3", "MN0", "MN1", "MP0", "MP1", "MP2", "MP3", "MP4", "MP5",
                                       "MN5", "MN6")},
    "lna": {"M0": "saturation", "M1": "saturation"},
}


def constrained(name: str) -> Spec:
    """specs/NAME.yaml with its region constraints (its own ``regions:``, else :data:`REGIONS`)."""
    path = ROOT / "specs" / f"{name}.yaml"
    spec = load_spec(path)
    if spec.regions:
        return spec
    data = yaml.safe_load(path.read_text())
    data["regions"] = REGIONS[name]
    return spec_from_data(data, base=path.parent, source=str(path))


def unconstrained(spec: Spec) -> Spec:
    """The spec without its region specs; its testbench still has the region measures (simulated, reported)."""
    names = {m for r in spec.regions for m in r.measures}
    file = spec.file.model_copy(update={"specs": {k: v for k, v in spec.file.specs.items() if k not in names},
                                        "regions": {}})
    return Spec(file, spec.testbench, spec.model, spec.path, spec.base)


def holds(spec: Spec, table: pd.DataFrame) -> tuple[np.ndarray, dict[str, int]]:
    """Per sample: does every device hold its region (all its specs met, simulation ok); failures per device."""
    ok = (table["status"] != FAILED).to_numpy().copy()
    every = ok.copy()
    failures = {}
    for region in spec.regions:
        held = ok.copy()
        for name, (low, high) in region.bounds.items():
            column = table[name].to_numpy(dtype=float)
            held &= np.isfinite(column) & (column >= low if low is not None else True) & (
                column <= high if high is not None else True)
        failures[region.device] = int((~held).sum())
        every &= held
    return every, failures


def passes(spec: Spec, table: pd.DataFrame) -> np.ndarray:
    """Per sample: every spec of ``spec`` met and the simulation ok."""
    ok = (table["status"] != FAILED).to_numpy().copy()
    for name, bound in spec.file.specs.items():
        column = table[name].to_numpy(dtype=float)
        ok &= np.isfinite(column) & (column >= bound.min if bound.min is not None else True) & (
            column <= bound.max if bound.max is not None else True)
    return ok


def steps_with(spec: Spec, samples: int | None, verify: int | None, max_iter: int | None) -> Spec:
    """The spec with the run settings this invocation overrides."""
    steps = []
    for step in spec.run.steps:
        options = step.options.model_dump(exclude_unset=True)
        if step.kind == "verify":
            steps.append({"verify": {**options, **({"samples": verify} if verify else {})}})
            continue
        if max_iter and "max_iter" in type(step.options).model_fields:
            options["max_iter"] = max_iter
        steps.append({step.kind: step.method, **options})
    run = {"steps": steps, **({"samples": samples} if samples else {})}
    return revise(spec, run=run)


def one(name: str, engine: Engine, folder: Path, args: argparse.Namespace) -> dict:
    """Start Monte Carlo and both runs of one spec."""
    spec = steps_with(constrained(name), args.samples, args.verify, args.max_iter)
    plain = unconstrained(spec)
    start = run_monte_carlo(spec, engine, samples=args.samples or spec.run.samples)
    result: dict = {"regions": {r.device: r.request.region for r in spec.regions},
                    "start": {"without": float(passes(plain, start.table).mean()),
                              "with": float(passes(spec, start.table).mean())}}
    for label, variant in (("without", plain), ("with", spec)):
        began = time.perf_counter()
        report = execute(variant, folder / f"{name}-{label}", engine)
        verify = report.verify
        assert verify is not None, "the spec's steps end with a verify step"
        held, failures = holds(spec, verify.table)
        result[label] = {"verified": float(passes(variant, verify.table).mean()),
                         "verified_with_regions": float(passes(spec, verify.table).mean()),
                         "regions_held": float(held.mean()), "region_failures": failures,
                         "verify_samples": len(verify.table), "simulations": report.cost.simulations,
                         "seconds": time.perf_counter() - began, "design": report.x_final}
    return result


def main() -> None:
    """Command line: every spec, the table, optionally JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specs", default="csva,tsva,lna")
    parser.add_argument("--samples", type=int, default=None, help="optimization outcomes and start Monte Carlo")
    parser.add_argument("--verify", type=int, default=None, help="verification samples")
    parser.add_argument("--max-iter", type=int, default=None, help="iterations of each minimax / yield step")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    console = Console()
    engine = Engine(workers=2)
    results = {}
    with tempfile.TemporaryDirectory(prefix="region-yields-") as tmp:
        for name in args.specs.split(","):
            results[name] = one(name.strip(), engine, Path(tmp), args)
    table = Table(title="Yield with and without the region specs (fractions of the same samples)")
    for column in ("spec", "regions", "start: without", "start: with", "run without regions: verified",
                   "same samples, with regions", "run with regions: verified", "sims without / with"):
        table.add_column(column, justify="left" if column in ("spec", "regions") else "right")
    for name, r in results.items():
        regions = ", ".join(r["regions"]) if len(r["regions"]) <= 3 else f"{len(r['regions'])} devices"
        table.add_row(name, regions, f"{r['start']['without'] * 100:.1f} %", f"{r['start']['with'] * 100:.1f} %",
                      f"{r['without']['verified'] * 100:.1f} %",
                      f"{r['without']['verified_with_regions'] * 100:.1f} %",
                      f"{r['with']['verified'] * 100:.1f} %",
                      f"{r['without']['simulations']} / {r['with']['simulations']}")
    console.print(table)
    for name, r in results.items():
        bad = {d: n for d, n in r["without"]["region_failures"].items() if n}
        console.print(f"  {name}: samples out of region after the unconstrained run: {bad or 'none'}; "
                      f"after the constrained run: "
                      f"{ {d: n for d, n in r['with']['region_failures'].items() if n} or 'none'}", highlight=False)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
        console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
