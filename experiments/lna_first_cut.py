"""Analytical first cuts of the cascode LNA from 0.7 to 5 GHz, simulated without tuning, then polished.

Like Table 1 of the Hongik paper (J. Y. Choi, Circuits and Systems 3(2), 2012; DESIGN.md §5): for each
design frequency the sizer (optiyield/propose/lna_cascode.py; default I_DD = 5 mA from 1.2 V, target
|S21| = 21 dB, 50 ohm ports) sizes ``circuits/lna_cascode``, and ngspice simulates the first cut as is:
S21, NF, NFmin (two-port noise parameters fitted from .noise runs at 8 source impedances), S11, S22 and
dc power at f0. Then the spec's minimax optimizer (optiyield.optim.minimax) starts from the first cut:

* ``polish_sims``: simulations until the first design meeting every spec (``until="feasible"``; 1 when
  the first cut already meets them);
* the polished figures: minimax run to convergence (``until="converged"``, ``--polish-iter``) from the
  first cut, i.e. the largest worst-case margin the optimizer finds near it;
* ``cold_sims``: simulations until the first feasible design from the spec's own start point (a rough
  2.4 GHz hand design, its inductors and capacitors scaled by 2.4 GHz / f0, as are their bounds), capped
  by ``--max-iter`` trust-region iterations (``cold_feasible`` says whether it got there).

The specs are those of specs/lna_cascode.yaml (``--s21-min`` etc. override them), at every frequency.
Simulations are counted by the evaluator; a design simulated twice in one run is counted once.

    python experiments/lna_first_cut.py [--frequencies 0.7,1,2,2.4,3,4,5] [--json FILE]

``--json`` writes a list of rows with ``f_hz``, ``s21_db``, ``nf_db``, ``s11_db``, ``s22_db`` (the
first cut, simulated), ``polish_sims``, ``cold_sims``, and more (``nfmin_db``, ``power_w``, the design,
the sizer's predictions and notes, the polished figures, ``cold_feasible``, seconds).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from optiyield.objective import minimax_value
from optiyield.optim.evaluator import Evaluator
from optiyield.optim.minimax import minimax
from optiyield.propose.lna_cascode import LnaCascodeSizer, SizingWarning, noise_parameters, with_netlist_defaults
from optiyield.sim.engine import Engine
from optiyield.spec import DesignVariable, Spec, SpecBound, load_spec
from optiyield.store import Store

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "lna_cascode.yaml"
REACTIVE = ("Ls", "Lg", "Ci", "L1", "Co")  # scaled by f_ref / f0 in the cold start and the bounds
FIGURES = ("s21_db", "nf_db", "s11_db", "s22_db", "power")


def spec_at(base: Spec, f0: float, overrides: dict[str, SpecBound]) -> Spec:
    """The base spec at design frequency ``f0`` (Hz): netlist f0 replaced, the start and bounds of the
    inductors and capacitors scaled by f_ref/f0 (f_ref: the netlist's f0), spec bounds overridden."""
    f_ref = float(base.testbench.nominal("f0") or f0)
    ratio = f_ref / f0
    design = {}
    for name, var in base.file.design.items():
        k = ratio if name in REACTIVE else 1.0
        start = None if var.start is None else var.start * k
        design[name] = DesignVariable(start=start, min=var.min * k, max=var.max * k)
    file = base.file.model_copy(update={"design": design, "specs": {**base.file.specs, **overrides}})
    moved = with_netlist_defaults(base, {"f0": f0})
    return Spec(file, moved.testbench, moved.model, moved.path)


def evaluator(spec: Spec, engine: Engine) -> Evaluator:
    """An evaluator with an in-memory store (a repeated design is simulated and counted once)."""
    ev = Evaluator(spec, engine)
    ev.store = Store(":memory:", ev.job.fingerprint, spec.parameters, spec.testbench.measure_names)
    return ev


def figures(spec: Spec, engine: Engine, x: np.ndarray) -> dict[str, float]:
    """Simulated figures of design ``x`` at f0, its minimax objective (the worst spec error, scaled by the
    limit: −0.05 = every spec met with at least 5 % margin) and NFmin (dB) from the fitted noise parameters."""
    ev = Evaluator(spec, engine)
    responses = ev.responses(x[None, :])
    values = {k: float(v[0, 0]) for k, v in responses.values.items()}
    values["objective"] = float(minimax_value(responses.errors(ev.errors)[0, 0], ev.errors.weights))
    values["nfmin_db"] = noise_parameters(spec, ev.design(x), probe=ev.probe).nf_min_db
    return values


def run_frequency(base: Spec, f0: float, args: argparse.Namespace, engine: Engine,
                  overrides: dict[str, SpecBound]) -> dict[str, Any]:
    """Size, simulate, polish and cold-start one frequency; one JSON row."""
    spec = spec_at(base, f0, overrides)
    sizer = LnaCascodeSizer(idd=args.idd, gain_db=args.gain, probe=engine.probe)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SizingWarning)
        x_cut = sizer.propose(spec, 1)[0]
    sizing = sizer.last
    assert sizing is not None
    sizer_seconds = time.perf_counter() - started
    cut = figures(spec, engine, x_cut)

    ev = evaluator(spec, engine)
    feasible = minimax(ev, x_cut, gradient=args.gradient, max_iter=args.max_iter, until="feasible")
    ev = evaluator(spec, engine)
    polished = minimax(ev, x_cut, gradient=args.gradient, max_iter=args.polish_iter, until="converged")
    polished_figures = figures(spec, engine, polished.x)
    ev = evaluator(spec, engine)
    cold = minimax(ev, None, gradient=args.gradient, max_iter=args.max_iter, until="feasible")
    return {
        "f_hz": f0,
        "s21_db": cut["s21_db"], "nf_db": cut["nf_db"], "nfmin_db": cut["nfmin_db"], "s11_db": cut["s11_db"],
        "s22_db": cut["s22_db"], "power_w": cut["power"], "objective": cut["objective"],
        "polish_sims": feasible.simulations, "polish_feasible": feasible.objective <= 0,
        "cold_sims": cold.simulations, "cold_feasible": cold.objective <= 0,
        "polished": {**polished_figures, "simulations": polished.simulations},
        "design": sizing.design, "predicted": sizing.predicted, "notes": sizing.notes,
        "fingers": {"nf": sizing.fingers.nf, "m": sizing.fingers.m, "residue_m": sizing.fingers.residue},
        "sizer_ngspice_runs": sizing.runs, "sizer_seconds": sizer_seconds,
    }


def main() -> None:
    """Parse arguments, run every frequency, print the tables, write ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frequencies", default="0.7,1,2,2.4,3,4,5", help="design frequencies, GHz")
    parser.add_argument("--idd", type=float, default=5e-3, help="drain current of M1, A")
    parser.add_argument("--gain", type=float, default=21.0, help="target |S21| of the sizer, dB")
    parser.add_argument("--s21-min", type=float, default=None, help="override the spec's s21_db minimum, dB")
    parser.add_argument("--nf-max", type=float, default=None, help="override the spec's nf_db maximum, dB")
    parser.add_argument("--gradient", default="past", choices=("past", "igat", "central"))
    parser.add_argument("--max-iter", type=int, default=40, help="trust-region iterations to feasibility")
    parser.add_argument("--polish-iter", type=int, default=10, help="trust-region iterations of the polish")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args()

    base = load_spec(SPEC)
    overrides = {}
    if args.s21_min is not None:
        overrides["s21_db"] = SpecBound(min=args.s21_min)
    if args.nf_max is not None:
        overrides["nf_db"] = SpecBound(max=args.nf_max)
    console = Console(width=max(Console().width, 160))
    rows = []
    with Engine() as engine:
        for f_ghz in (float(v) for v in args.frequencies.split(",")):
            row = run_frequency(base, f_ghz * 1e9, args, engine, overrides)
            rows.append(row)
            console.print(f"{f_ghz:g} GHz: first cut {row['s21_db']:.2f} dB, polish {row['polish_sims']} sims, "
                          f"cold {row['cold_sims']} sims" + (f" ({'; '.join(row['notes'])})" if row["notes"] else ""))

    limits = ", ".join(f"{k} {'≥' if b.min is not None else '≤'} {b.min if b.min is not None else b.max:g}"
                       for k, b in {**base.file.specs, **overrides}.items())
    table = Table(title=f"cascode LNA first cuts (I_DD {args.idd * 1e3:g} mA, VDD 1.2 V, target {args.gain:g} dB)")
    for column in ("f (GHz)", "W (µm)", "nf×m", "nfb", "R_DB (Ω)", "Ls (nH)", "Lg (nH)", "Ci (pF)", "L1 (nH)",
                   "R1 (Ω)", "Co (pF)", "predicted S21", "G_max", "G_min", "sizer runs", "sizer s"):
        table.add_column(column, justify="right")
    for r in rows:
        d, q = r["design"], r["predicted"]
        table.add_row(f"{r['f_hz'] / 1e9:g}", f"{d['W'] * 1e6:.0f}", f"{r['fingers']['nf']}×{r['fingers']['m']}",
                      f"{d['nfb']:.0f}", f"{d['R_DB']:.4g}", f"{d['Ls'] * 1e9:.3g}", f"{d['Lg'] * 1e9:.3g}",
                      f"{d['Ci'] * 1e12:.3g}", f"{d['L1'] * 1e9:.3g}", f"{d['R1']:.4g}", f"{d['Co'] * 1e12:.3g}",
                      f"{q['s21_db']:.2f}", f"{q['g_max_db']:.2f}", f"{q['g_min_db']:.2f}",
                      str(r["sizer_ngspice_runs"]), f"{r['sizer_seconds']:.2f}")
    console.print(table)
    table = Table(title="simulated at f0 (dB, mW): first cut without tuning | after minimax polish (converged); "
                        f"worst margin = -objective; specs: {limits}")
    for column in ("f (GHz)", "S21", "NF", "NFmin", "S11", "S22", "P", "margin", "|", "S21", "NF", "NFmin", "S11",
                   "S22", "P", "margin", "polish sims", "to feasible: first cut", "cold start"):
        table.add_column(column, justify="right")
    for r in rows:
        p = r["polished"]
        table.add_row(f"{r['f_hz'] / 1e9:g}", f"{r['s21_db']:.2f}", f"{r['nf_db']:.2f}", f"{r['nfmin_db']:.2f}",
                      f"{r['s11_db']:.1f}", f"{r['s22_db']:.1f}", f"{r['power_w'] * 1e3:.2f}",
                      f"{-r['objective']:.1%}", "|", f"{p['s21_db']:.2f}", f"{p['nf_db']:.2f}", f"{p['nfmin_db']:.2f}",
                      f"{p['s11_db']:.1f}", f"{p['s22_db']:.1f}", f"{p['power'] * 1e3:.2f}", f"{-p['objective']:.1%}",
                      str(p["simulations"]), f"{r['polish_sims']}" + ("" if r["polish_feasible"] else " (not met)"),
                      f"{r['cold_sims']}" + ("" if r["cold_feasible"] else " (not met)"))
    console.print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2, default=float) + "\n")
        console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
