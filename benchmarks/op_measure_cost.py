"""What operating-point measures cost: Monte Carlo throughput with and without device quantities saved.

An operating-point measure (``sat_margin``, ``overdrive``, ``device_op``, a spec's ``regions:``) makes the deck
``.save`` its device quantities for every copy, and ngspice then writes them at every point of every analysis
(docs/testbench.md). This measures that, in one invocation, variants interleaved in each repeat:

* CSVA (``.op`` + ``.ac`` at 161 points, batches of 500 copies, 2 workers): no op measure (nothing extra saved);
  ``sat_margin`` of M1 (2 vectors per copy); ``regions M1`` = ``regions: {M1: saturation}`` (4: vds, vdsat, vgs,
  vth); ``regions + gm/id``, the same plus ``gm_over_id`` (6);
* VGA at 10 GHz (20 copies per sample: ``.op``, ``.ac`` at 41 points and a 500-point ``.tran``): no op measure
  (the spec without its own ``regions:``) and ``regions M1, M2`` = ``regions: {M1: saturation, M2: saturation}``
  (8 vectors per copy).

    python benchmarks/op_measure_cost.py [--samples 2000] [--vga-samples 20] [--repeats 3] [--json FILE]

Prints a table of samples/s and the ratio to the variant without op measures (medians of the engine's wall time
over ``--repeats``; the machine is shared, so compare within one run). With ``--json``: ``csva`` and ``vga``, each
{variant: {"samples_per_s", "wall_s", "ngspice_s", "ratio", "vectors_per_copy"}}, and ``deck_unchanged`` (True when
the deck of the testbench without op measures has no ``.save`` line: AC throughput as before by construction).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.montecarlo import sample_matrix  # noqa: E402
from optiyield.sim.engine import Engine  # noqa: E402
from optiyield.sim.ngspice.deck import render  # noqa: E402
from optiyield.spec import Spec, spec_from_data  # noqa: E402
from optiyield.stats.variation import OutcomeSet  # noqa: E402


def variant(spec_file: Path, regions: dict | None = None, measures: dict | None = None) -> Spec:
    """The spec of ``spec_file`` with ``regions`` and extra testbench ``measures`` (op measures) added; the
    file's own ``regions:`` (the VGA's M1, M2) and the stages naming their specs are left out first."""
    data = yaml.safe_load(spec_file.read_text())
    testbench = yaml.safe_load((spec_file.parent / data["testbench"]).read_text())
    folder = (spec_file.parent / data["testbench"]).parent
    testbench["netlist"] = str(folder / testbench["netlist"])
    testbench["measures"].update(measures or {})
    data["testbench"] = testbench
    shipped = {f"{d.lower().replace('.', '_')}_{k}" for d in data.pop("regions", None) or {} for k in ("sat", "vov")}
    data["stages"] = [st for st in data.get("stages", []) if not set(st["specs"]) & shipped]  # they name those
    if not data["stages"]:
        data.pop("stages")
    if regions:
        data["regions"] = regions
    return spec_from_data(data, base=folder)


def measure(specs: dict[str, Spec], samples: int, repeats: int, workers: int) -> dict[str, dict[str, float]]:
    """Monte Carlo of every variant, interleaved; medians of wall and ngspice seconds."""
    base = next(iter(specs.values()))
    values = sample_matrix(base, OutcomeSet.draw(base.model, samples, "mc", seed=1))
    engine = Engine(workers=workers)
    jobs = {name: spec.testbench.job(spec.parameters) for name, spec in specs.items()}
    for job in jobs.values():  # warm-up: model files in the page cache, numparam caches
        engine.run(job, values[: max(1, min(len(values), 2 * workers))])
    wall: dict[str, list[float]] = {name: [] for name in specs}
    ngspice: dict[str, list[float]] = {name: [] for name in specs}
    for _ in range(repeats):
        for name, job in jobs.items():
            result = engine.run(job, values)
            assert result.ok.all(), result.reason[~result.ok][:3]
            wall[name].append(result.wall_seconds)
            ngspice[name].append(result.ngspice_seconds)
    first = next(iter(specs))
    out = {}
    for name, job in jobs.items():
        seconds = statistics.median(wall[name])
        out[name] = {"samples_per_s": samples / seconds, "wall_s": seconds,
                     "ngspice_s": statistics.median(ngspice[name]),
                     "ratio": seconds / statistics.median(wall[first]), "vectors_per_copy": len(job.devices)}
    return out


def main() -> None:
    """Command line: both circuits, the table, optionally JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000, help="CSVA Monte Carlo samples per variant")
    parser.add_argument("--vga-samples", type=int, default=20, help="VGA samples per variant (0: skip the VGA)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    csva = ROOT / "specs" / "csva.yaml"
    specs = {
        "no op measure": variant(csva),
        "sat_margin M1": variant(csva, measures={"m1_sat": {"fn": "sat_margin", "device": "M1"}}),
        "regions M1": variant(csva, {"M1": "saturation"}),
        "regions + gm/id": variant(csva, {"M1": "saturation"},
                                        {"m1_gmid": {"fn": "gm_over_id", "device": "M1"}}),
    }
    plain = specs["no op measure"]
    job = plain.testbench.job(plain.parameters)
    text, _ = render(job.netlist, job.names, np.tile(list(plain.nominal().values()), (2, 1)), "out.raw", True,
                     devices=job.devices)
    figures: dict = {"deck_unchanged": ".save" not in text and not job.devices, "samples": args.samples,
                     "vga_samples": args.vga_samples, "repeats": args.repeats}
    figures["csva"] = measure(specs, args.samples, args.repeats, args.workers)
    if args.vga_samples:
        vga = ROOT / "specs" / "vga_10ghz.yaml"
        figures["vga"] = measure({"no op measure": variant(vga),
                                  "regions M1, M2": variant(vga, {"M1": "saturation",
                                                                                 "M2": "saturation"})},
                                 args.vga_samples, args.repeats, args.workers)
    console = Console()
    for circuit, title in (("csva", f"CSVA, {args.samples} samples (.op + .ac 161 points, 500 copies per deck)"),
                           ("vga", f"VGA 10 GHz, {args.vga_samples} samples (20 copies each: .op, .ac, .tran)")):
        if circuit not in figures:
            continue
        table = Table(title=f"{title}, {args.workers} workers, median of {args.repeats}")
        for column in ("variant", "vectors/copy", "wall (s)", "ngspice (s)", "samples/s", "ratio"):
            table.add_column(column, justify="left" if column == "variant" else "right")
        for name, row in figures[circuit].items():
            table.add_row(name, str(row["vectors_per_copy"]), f"{row['wall_s']:.3f}", f"{row['ngspice_s']:.3f}",
                          f"{row['samples_per_s']:.3g}", f"{row['ratio']:.2f}×")
        console.print(table)
    console.print(f"deck without op measures has no .save line (throughput as before): {figures['deck_unchanged']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
