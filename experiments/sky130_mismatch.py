"""sky130 device mismatch: the PDK's own draw against optiyield's explicit deviates.

The PDK's ``tt_mm`` section draws each FET's mismatch inside ngspice (``AGAUSS`` at parse time, not seeded, so
two runs differ); optiyield's rewritten library takes it from the instance parameter ``mismatch`` (a standard
normal deviate the spec samples). For each device and geometry, N devices are simulated both ways at one bias
point and the spreads of threshold voltage and drain current are compared (ratio of standard deviations, with an
F-test p-value), next to the PDK's analytic sigma, sw_mm_vth0 x geometry factor / sqrt(W L) (docs/sky130.md).

    python experiments/sky130_mismatch.py                 # 1,000 devices per case
    python experiments/sky130_mismatch.py --count 20 --cases 1   # smoke size
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.pdk import sky130  # noqa: E402
from optiyield.sim.ngspice.runner import NgspiceRunner  # noqa: E402

#: device, W and L in um, |Vgs| and |Vds| in V. nfet geometry factor from the PDK's swx_vth scaling of delvto.
CASES = (
    ("nfet_01v8", 1.0, 0.15, 0.9, 1.8),
    ("nfet_01v8", 4.0, 1.0, 0.9, 1.8),
    ("pfet_01v8", 1.0, 0.15, 0.9, 1.8),
    ("pfet_01v8", 4.0, 1.0, 0.9, 1.8),
)
A_VT = {"nfet_01v8": 3.356e-3, "pfet_01v8": 5.856e-3}  # V um: sw_mm_vth0_sky130_fd_pr__<device> in models_global
PER_DECK = 50  # devices per ngspice run: the set-up grows faster than linearly with sky130 instances


def analytic_sigma(device: str, w: float, length: float) -> float:
    """The PDK's Vth mismatch sigma in V (mismatch_factor = 1): A_VT / sqrt(W L), times the nfet's geometry
    factor (the PDK scales the nfet's whole swx_vth, mismatch included, by it; the pfet's mismatch term not)."""
    sigma = A_VT[device] / np.sqrt(w * length)
    if device == "nfet_01v8":
        sigma *= (0.008 * 8 / length + 0.992) * (0.035 * 7 / w + 0.965) * (0.001 * 56 / (w * length) + 0.999)
    return float(sigma)


def _deck(library_line: str, device: str, w: float, length: float, vgs: float, vds: float,
          deviates: np.ndarray | None, count: int) -> str:
    pmos = device.startswith("pfet")
    name = f"sky130_fd_pr__{device}"
    lines = ["* sky130 mismatch", library_line, "VS s 0 0" if not pmos else "VS s 0 1.8",
             f"VG g 0 {0.0 + vgs if not pmos else 1.8 - vgs}"]
    saves = []
    for k in range(count):
        drain = f"d{k}"
        lines.append(f"VD{k} {drain} 0 {vds if not pmos else 1.8 - vds}")
        extra = f" mismatch={deviates[k]:.12g}" if deviates is not None else ""
        lines.append(f"X{k} {drain} g s s {name} w={w:g} l={length:g}{extra}")
        saves.append(f"@m.x{k}.m{name}[vth]")
    lines += [".save all " + " ".join(saves), ".op", ".end"]
    return "\n".join(lines) + "\n"


def _run(runner: NgspiceRunner, deck: str, count: int, device: str) -> tuple[np.ndarray, np.ndarray]:
    folder = runner.workdir()
    try:
        outcome = runner.run(deck, folder, 300, expected=("op",), compat=sky130.COMPAT)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not outcome.ok:
        raise RuntimeError(outcome.failure)
    plot = outcome.plot("op")
    name = f"sky130_fd_pr__{device}"
    vth = np.array([np.real(plot[f"v(@m.x{k}.m{name}[vth])"][0]) for k in range(count)])
    current = np.array([abs(np.real(plot[f"i(vd{k})"][0])) for k in range(count)])
    return vth, current


def measure(count: int, seed: int = 1, workers: int = 2, cases: int = len(CASES)) -> list[dict]:
    """Spread of Vth and Id over ``count`` devices per case (the first ``cases`` of :data:`CASES`), the PDK's draw
    vs explicit deviates."""
    pdk_line = f'.lib "{sky130.models_root() / "combined_models" / "continuous" / "sky130.lib.spice"}" tt_mm'
    ours_line = sky130.library().line("tt")
    rng = np.random.default_rng(seed)
    runner = NgspiceRunner()
    rows = []
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for device, w, length, vgs, vds in CASES[:cases]:
                z = rng.standard_normal(count)
                chunks = [np.arange(i, min(i + PER_DECK, count)) for i in range(0, count, PER_DECK)]
                pdk = [pool.submit(_run, runner, _deck(pdk_line, device, w, length, vgs, vds, None, len(c)),
                                   len(c), device) for c in chunks]
                ours = [pool.submit(_run, runner, _deck(ours_line, device, w, length, vgs, vds, z[c], len(c)),
                                    len(c), device) for c in chunks]
                vth_p, id_p = (np.concatenate(x) for x in zip(*(f.result() for f in pdk), strict=True))
                vth_o, id_o = (np.concatenate(x) for x in zip(*(f.result() for f in ours), strict=True))
                row = {"device": device, "w_um": w, "l_um": length, "count": count,
                       "sigma_vth_analytic": analytic_sigma(device, w, length)}
                for label, a, b in (("vth", vth_p, vth_o), ("id_rel", id_p / np.mean(id_p), id_o / np.mean(id_o))):
                    sa, sb = np.std(a, ddof=1), np.std(b, ddof=1)
                    f = (sb / sa) ** 2
                    p = 2 * min(stats.f.cdf(f, count - 1, count - 1), stats.f.sf(f, count - 1, count - 1))
                    row |= {f"sigma_{label}_pdk": float(sa), f"sigma_{label}_ours": float(sb),
                            f"ratio_{label}": float(sb / sa), f"p_{label}": float(p)}
                row["mean_vth_pdk"], row["mean_vth_ours"] = float(np.mean(vth_p)), float(np.mean(vth_o))
                rows.append(row)
    finally:
        runner.close()
    return rows


def main(argv: list[str] | None = None) -> dict:
    """Print the comparison table; ``--json FILE`` writes it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="devices per case and method")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cases", type=int, default=len(CASES), help="run the first N device/geometry cases")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = measure(args.count, args.seed, cases=args.cases)
    table = Table(title=f"sky130 mismatch, {args.count} devices per case: PDK tt_mm (ngspice AGAUSS) vs optiyield "
                  "deviates")
    for column in ("device", "W/L (um)", "sigma Vth analytic", "sigma Vth PDK", "sigma Vth ours", "ratio",
                   "F-test p", "sigma Id/Id PDK", "sigma Id/Id ours", "ratio", "F-test p"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r["device"], f"{r['w_um']:g}/{r['l_um']:g}", f"{1e3 * r['sigma_vth_analytic']:.2f} mV",
                      f"{1e3 * r['sigma_vth_pdk']:.2f} mV", f"{1e3 * r['sigma_vth_ours']:.2f} mV",
                      f"{r['ratio_vth']:.3f}", f"{r['p_vth']:.2f}", f"{100 * r['sigma_id_rel_pdk']:.2f} %",
                      f"{100 * r['sigma_id_rel_ours']:.2f} %", f"{r['ratio_id_rel']:.3f}", f"{r['p_id_rel']:.2f}")
    Console(width=170).print(table)
    figures = {"cases": rows, "max_ratio_deviation": max(
        max(abs(r["ratio_vth"] - 1), abs(r["ratio_id_rel"] - 1)) for r in rows)}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
