"""How long ngspice 39 takes to read the sky130 models, per deck, by the way the library is included.

One nfet_01v8 at one operating point (so the time is the model load), five ways of including the tt corner:

* ``full .lib``        the PDK's ``combined_models/sky130.lib.spice tt`` (continuous + legacy discrete models);
* ``full flat``        the same section's includes written into one file (``.include``);
* ``continuous .lib``  ``combined_models/continuous/sky130.lib.spice tt`` (the continuous FET/BJT/R/C models);
* ``continuous flat``  optiyield's flattened section file (``<cache>/tt.spice``, ``.include``);
* ``optiyield``        what a ``pdk: sky130`` testbench uses: ``.lib <cache>/tt.lib tt``, a one-section wrapper of
  the flat file.

CPU seconds (user + system) and peak memory of each ngspice process come from ``wait4``; wall seconds too, but
those depend on what else the machine runs. ``--json FILE`` writes medians under ``load_seconds`` (CPU) and
``load_wall_seconds``.

    python benchmarks/sky130_load.py            # 5 repetitions
    python benchmarks/sky130_load.py --repeat 1 --variants "continuous flat,optiyield"   # smoke
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

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optiyield.pdk import sky130  # noqa: E402
from optiyield.sim.ngspice.runner import find_ngspice, spinit_text  # noqa: E402

CIRCUIT = "VD d 0 1.8\nVG g 0 0.9\nXM1 d g 0 0 sky130_fd_pr__nfet_01v8 w=1 l=0.15\n.op\n.end\n"


def _flat_section(lib: Path, section: str, out: Path) -> Path:
    """The includes of ``section`` of ``lib`` as one file with absolute paths."""
    body = sky130.split_sections(lib.read_text())[section]
    lines = []
    for line in body:
        if line.lower().startswith(".include"):
            target = line.split(maxsplit=1)[1].strip("\"'")
            line = f'.include "{(lib.parent / target).resolve()}"'
        lines.append(line)
    out.write_text("\n".join(lines) + "\n")
    return out


def variants(work: Path) -> dict[str, str]:
    """Label → the deck line that includes the tt corner."""
    models = sky130.models_root() / "combined_models"
    library = sky130.library()
    full_flat = _flat_section(models / "sky130.lib.spice", "tt", work / "full_tt.spice")
    return {
        "full .lib": f'.lib "{models / "sky130.lib.spice"}" tt',
        "full flat": f'.include "{full_flat}"',
        "continuous .lib": f'.lib "{models / "continuous" / "sky130.lib.spice"}" tt',
        "continuous flat": f'.include "{library.folder / "tt.spice"}"',
        "optiyield": library.line("tt"),
    }


def run_once(ngspice: str, deck: Path, env: dict[str, str]) -> tuple[float, float, float, bool]:
    """(CPU s, wall s, peak MB, ok) of one ngspice process on ``deck``."""
    raw = deck.with_suffix(".raw")
    raw.unlink(missing_ok=True)
    start = time.perf_counter()
    process = subprocess.Popen([ngspice, "-b", "-r", str(raw), str(deck)], cwd=deck.parent, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024, status == 0 and raw.is_file()


def main(argv: list[str] | None = None) -> dict:
    """Measure every variant ``--repeat`` times (interleaved) and print medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--variants", default=None, help="comma-separated labels to run (default: all)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    chosen = None if args.variants is None else set(args.variants.split(","))
    ngspice = find_ngspice()
    with tempfile.TemporaryDirectory(prefix="sky130-load-") as tmp:
        work = Path(tmp)
        (work / "spinit").write_text(spinit_text(sky130.COMPAT))
        env = dict(os.environ, SPICE_SCRIPTS=str(work))
        decks = {}
        for index, (label, line) in enumerate(variants(work).items()):
            if chosen is not None and label not in chosen:
                continue
            decks[label] = work / f"v{index}.cir"
            decks[label].write_text(f"* {label}\n{line}\n{CIRCUIT}")
        samples: dict[str, list[tuple[float, float, float, bool]]] = {label: [] for label in decks}
        for _ in range(args.repeat):
            for label, deck in decks.items():
                samples[label].append(run_once(ngspice, deck, env))
    table = Table(title=f"sky130 tt model load in ngspice, one nfet .op (median of {args.repeat})")
    for column in ("included as", "CPU s", "wall s", "peak MB", "ok"):
        table.add_column(column, justify="right")
    figures: dict[str, dict[str, float]] = {"load_seconds": {}, "load_wall_seconds": {}, "peak_mb": {}}
    for label, runs in samples.items():
        cpu = statistics.median(r[0] for r in runs)
        wall = statistics.median(r[1] for r in runs)
        peak = statistics.median(r[2] for r in runs)
        ok = all(r[3] for r in runs)
        figures["load_seconds"][label], figures["load_wall_seconds"][label], figures["peak_mb"][label] = cpu, wall, peak
        table.add_row(label, f"{cpu:.2f}", f"{wall:.2f}", f"{peak:.0f}", "yes" if ok else "NO")
    Console(width=120).print(table)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
