"""Two-tone check of the VGA's IIP3 estimate (issue 7, part 3).

The testbench's ``iip3`` is an estimate from the single-tone gain compression of code 0 (a memoryless
cubic: docs/circuits.md, VGA). This script measures the IIP3 the classical way at the same design: two
tones f0 ± Δ of equal available power at port 1, a transient over whole common periods, and the
Fourier coefficients (optiyield.measure.tran, as harmonics of Δ) of the output and of the delivered
input. IIP3 (referred to the power delivered per tone, like the
estimate) = P_in + (P_fund,out − P_IM3,out)/2, at a drive 20 dB or more below the estimated IIP3, and it
prints both side by side.

    python experiments/vga_two_tone.py [--design FILE.json] [--pin -25] [--json FILE]

``--design`` takes a JSON mapping of design variables (for example one ``design`` record of
experiments/vga_staged.py's output); the default is the spec's start point. ``--json`` writes
``iip3_two_tone_dbm``, ``iip3_estimate_dbm``, ``difference_db``, ``gain_db``, ``pin_dbm``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.measure import tran  # noqa: E402
from optiyield.optim.evaluator import Evaluator  # noqa: E402
from optiyield.sim.engine import Engine  # noqa: E402
from optiyield.sim.ngspice.rawfile import read_raw  # noqa: E402
from optiyield.spec import load_spec  # noqa: E402

SPEC = ROOT / "specs" / "vga_10ghz.yaml"
F0, DF = 10e9, 100e6  # tones at f0 - DF and f0 + DF; IM3 at f0 - 3 DF and f0 + 3 DF; common period 1/DF


def two_tone_netlist(design: dict[str, float], pin_dbm: float) -> str:
    """The VGA netlist at code 0 with a two-tone source (each tone ``pin_dbm`` available) and a transient
    of 2 ns settling plus 2 common periods at a 1 ps step, reltol 1e-5."""
    net = (ROOT / "circuits" / "vga_cs" / "netlist.cir").read_text()
    net = net.replace("../models/ptm45lp.lib", str(ROOT / "circuits" / "models" / "ptm45lp.lib"))
    amp = np.sqrt(400 * 1e-3 * 10 ** (pin_dbm / 10))
    source = (f"VS  src mid dc 0 sin(0 {amp:.6g} {F0 - DF:.6g})\n"
              f"VS2 mid 0 dc 0 sin(0 {amp:.6g} {F0 + DF:.6g})\n")
    net = re.sub(r"^VS  src 0 .*\n", source, net, flags=re.M)
    net = re.sub(r"^\.ac .*\n", "", net, flags=re.M)
    period = 1 / DF
    analysis = f".options reltol=1e-5 vntol=1e-9 abstol=1e-15\n.tran 1p {2e-9 + 2 * period:.6g} 0 1p\n"
    net = re.sub(r"^\.tran .*\n", analysis, net, flags=re.M)
    params = " ".join(f"{k}={v:.10g}" for k, v in design.items())
    net = net.replace(".include", f".param {params}\n.include", 1)
    return net


def main() -> None:
    """Simulate, measure, print and optionally write the comparison."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--design", type=Path, help="JSON mapping of design variables (default: the start)")
    parser.add_argument("--pin", type=float, default=-25.0, help="available power per tone, dBm")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    spec = load_spec(SPEC)
    design = dict(spec.design_start)
    if args.design:
        design.update(json.loads(args.design.read_text()))
    evaluator = Evaluator(spec, Engine(workers=1))
    x = np.array([design[n] for n in evaluator.names])
    estimate = float(evaluator.responses(x[None, :]).values["iip3"][0, 0])
    with tempfile.TemporaryDirectory(prefix="vga-two-tone-") as tmp:
        deck = Path(tmp) / "two_tone.cir"
        deck.write_text(two_tone_netlist(design, args.pin))
        proc = subprocess.run(["ngspice", "-b", "-r", str(Path(tmp) / "out.raw"), str(deck)],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"ngspice failed: {proc.stdout[-800:]}{proc.stderr[-800:]}")
        plot = next(p for p in read_raw(Path(tmp) / "out.raw") if p.kind == "tran")
    t = np.real(plot["time"])
    v_out, v_in, v_src = (np.real(plot[name]) for name in ("v(out)", "v(in)", "v(src)"))
    # the tones and IM3 products are harmonics of DF, over the last 2 common periods
    tones = {f: int(round(f / DF)) for f in (F0 - 3 * DF, F0 - DF, F0 + DF, F0 + 3 * DF)}
    dbm = {f: float(tran.to_dbm(tran.harmonic_power(t, v_out, 50.0, DF, periods=2, harmonic=k))[0])
           for f, k in tones.items()}
    delivered = [float(tran.delivered_power(t, v_in, (v_src - v_in) / 50.0, DF, periods=2, harmonic=tones[f])[0])
                 for f in (F0 - DF, F0 + DF)]
    p_in = float(tran.to_dbm(np.mean(delivered)))
    fund = np.mean([dbm[F0 - DF], dbm[F0 + DF]])
    im3 = np.mean([dbm[F0 - 3 * DF], dbm[F0 + 3 * DF]])
    iip3 = p_in + (fund - im3) / 2
    rows = {"pin_dbm": p_in, "gain_db": fund - p_in, "fund_out_dbm": fund, "im3_out_dbm": im3,
            "iip3_two_tone_dbm": iip3, "iip3_estimate_dbm": estimate, "difference_db": estimate - iip3}
    print(f"VGA code 0, tones {(F0 - DF) / 1e9:g} and {(F0 + DF) / 1e9:g} GHz, {args.pin:g} dBm available each")
    print(f"{'delivered per tone':>24}: {p_in:8.2f} dBm")
    print(f"{'output per tone':>24}: {fund:8.2f} dBm   (gain {fund - p_in:.2f} dB)")
    print(f"{'IM3 per side':>24}: {im3:8.2f} dBm   (IM3 asymmetry {dbm[F0 + 3 * DF] - dbm[F0 - 3 * DF]:+.2f} dB)")
    print(f"{'IIP3, two-tone':>24}: {iip3:8.2f} dBm")
    print(f"{'IIP3, estimate (iip3)':>24}: {estimate:8.2f} dBm   (estimate - two-tone {estimate - iip3:+.2f} dB)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
