"""``optiyield report OUTDIR``: one self-contained HTML page of whatever an output folder holds.

The page (``OUTDIR/report.html``) embeds every figure as a base64 PNG data URI and carries its CSS
inline: no external file, no network, readable offline, light and printable. It is built from the files
``optiyield run`` and ``optiyield yield`` leave behind:

* ``run_summary.json`` (run only): designs, yields and cost of every step;
* ``summary.json`` and ``samples.parquet``: the (verification) Monte Carlo;
* ``store.sqlite`` (run only): the iteration journal, and the stored responses of the start design over
  the optimization outcomes (the "before" histograms, reconstructed row by row exactly as the run
  built them, so nothing is simulated again);
* ``sensitivity.json`` (``optiyield sensitivity``);
* ``run_summary.json``'s ``reliability`` (a centering step, a verification with ``sigma:``): worst-case
  distances β per spec bound, the statistical corners and the high-sigma failure probability.

A section whose data is missing is replaced by a one-line note. See docs/report.md.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from optiyield.errors import SpecError
from optiyield.optim.corners import make_evaluator
from optiyield.report import figures
from optiyield.report.figures import HistogramSeries, ObjectivePoint, YieldPoint
from optiyield.run import optimization_outcomes
from optiyield.sim.engine import FAILED
from optiyield.spec import Spec, load_spec
from optiyield.store import Store
from optiyield.units import format_eng, format_value
from optiyield.yield_ import YieldEstimate

REPORT_NAME = "report.html"
SECTIONS = (
    ("specs", "Specifications"),
    ("histograms", "Histograms before and after optimization"),
    ("traces", "Yield and objective per iteration"),
    ("design", "Design variables"),
    ("cost", "Simulations and time per step"),
    ("failures", "Failed simulations"),
    ("limiting", "The two most yield-limiting specs"),
    ("high_sigma", "High sigma: worst-case distances and failure probability"),
    ("sensitivity", "Sensitivity"),
)
#: Shown after the specifications when the folder has corners (a corner run, or `optiyield corners`).
CORNER_SECTION = ("corners", "PVT corners")
FAILED_ROWS_SHOWN = 5
SENSITIVITY_BARS = 6


class ReportError(RuntimeError):
    """The folder holds no optiyield results, or its spec cannot be found or loaded."""


@dataclass
class FolderData:
    """Everything the report shows, read from an output folder (None/empty where absent)."""

    folder: Path
    spec: Spec
    run: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    samples: pd.DataFrame | None = None
    history: list[dict[str, Any]] | None = None
    before: dict[str, np.ndarray] | None = None
    before_note: str = ""
    outcomes: tuple[int, str, int] | None = None  # samples, sampler, seed of the optimization outcomes
    nominal: dict[str, float] | None = None
    store_failures: dict[str, int] = field(default_factory=dict)
    store_evaluations: int = 0
    sensitivity: dict[str, Any] | None = None
    corners: dict[str, Any] | None = None  # corners.json of `optiyield corners`
    notes: list[str] = field(default_factory=list)

    @property
    def point(self) -> dict[str, float] | None:
        """The design the Monte Carlo of this folder was run at (final design of a run)."""
        if self.run is not None:
            return dict(self.run["design_final"])
        return dict(self.summary["design"]) if self.summary is not None else None


# ----------------------------------------------------------------------------------------------- loading


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _resolve_spec(folder: Path, spec: Spec | str | Path | None, run: dict[str, Any] | None,
                  summary: dict[str, Any] | None) -> Spec:
    if isinstance(spec, Spec):
        return spec
    source = "--spec"
    if spec is None:
        for name, data in (("run_summary.json", run), ("summary.json", summary)):
            if data is not None and data.get("spec_file"):
                spec, source = data["spec_file"], name
                break
    if spec is None:
        raise ReportError(f"{folder}: the results do not name their spec file; pass it with --spec SPEC")
    path = Path(spec)
    if not path.is_file():
        raise ReportError(f"spec file {path} (from {source}) not found; pass it with --spec SPEC")
    try:
        return load_spec(path)
    except SpecError as exc:
        raise ReportError(str(exc)) from None


def _read_store(data: FolderData, path: Path) -> None:
    """Journal, start-design responses over the optimization outcomes, nominal response at the final
    design and failure counts, from ``store.sqlite``. Nothing is simulated."""
    spec = data.spec
    # The evaluator only builds parameter rows and the job's fingerprint here: it has no engine.
    evaluator = make_evaluator(spec, None)
    store = Store.read(path, spec.parameters, spec.testbench.measure_names)
    try:
        data.store_evaluations = store.evaluations
        kinds: dict[str, int] = {}
        for reason, count in store.failure_reasons().items():
            kinds[reason_kind(reason)] = kinds.get(reason_kind(reason), 0) + count
        data.store_failures = dict(sorted(kinds.items(), key=lambda item: -item[1]))
        data.history = store.history()
        if store.fingerprint != evaluator.job.fingerprint:
            data.before_note = ("store.sqlite was written for a different testbench or parameter set than "
                                f"{spec.path}: its stored responses are not shown.")
            return
        if data.run is None:
            return
        if spec.corners is not None:
            data.before_note = ("a corner run: the histograms show the verification's value at each sample's worst "
                                "corner; the PVT corners section gives the yield per corner before and after.")
            return
        outcomes = optimization_outcomes(spec)
        data.outcomes = (outcomes.n, outcomes.method, outcomes.seed)
        x_start = np.array([data.run["design_start"][n] for n in evaluator.names], dtype=float)
        found, values, status, _ = store.lookup(evaluator.rows(x_start, outcomes))
        if not found.any():
            data.before_note = "the start design's responses over the optimization outcomes are not in store.sqlite."
        else:
            failed = np.asarray(status == FAILED)  # a failed simulation has no value: it counts as failing
            data.before = {m: np.where(failed, np.nan, values[m])[found] for m in spec.file.specs}
            if not found.all():
                data.before_note = (f"only {int(found.sum())} of {outcomes.n} start-design outcomes are in "
                                    "store.sqlite; the others are left out.")
        x_final = np.array([data.run["design_final"][n] for n in evaluator.names], dtype=float)
        found, values, status, _ = store.lookup(evaluator.rows(x_final, None))
        if found[0] and status[0] != FAILED:
            data.nominal = {m: float(values[m][0]) for m in spec.file.specs}
    finally:
        store.close()


def load_folder(folder: str | Path, spec: Spec | str | Path | None = None) -> FolderData:
    """Read an output folder of ``optiyield run`` or ``optiyield yield`` (and ``sensitivity``).

    ``spec`` (a loaded spec or a path) overrides the spec file named in the folder's JSON summaries.
    Raises :class:`ReportError` when the folder holds no results or the spec cannot be loaded.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"{folder}: no such folder")
    run = _read_json(folder / "run_summary.json")
    summary = _read_json(folder / "summary.json")
    if run is None and summary is None:
        raise ReportError(f"{folder}: no run_summary.json or summary.json (run `optiyield run` or "
                          "`optiyield yield` with --out first)")
    data = FolderData(folder=folder, spec=_resolve_spec(folder, spec, run, summary), run=run, summary=summary)
    if (folder / "samples.parquet").is_file():
        data.samples = pd.read_parquet(folder / "samples.parquet")
    elif (folder / "samples.csv").is_file():
        data.samples = pd.read_csv(folder / "samples.csv", keep_default_na=False, na_values=["", "nan", "NaN"])
    if (folder / "store.sqlite").is_file():
        _read_store(data, folder / "store.sqlite")
    data.sensitivity = _read_json(folder / "sensitivity.json")
    data.corners = _read_json(folder / "corners.json")
    if run is not None and summary is not None and not _same_design(run["design_final"], summary["design"]):
        data.notes.append("summary.json and samples.parquet are not at the run's final design (a later "
                          "`optiyield yield` wrote into this folder?): the Monte Carlo sections show that sample.")
    if run is not None and run.get("spec") != data.spec.name:
        data.notes.append(f"run_summary.json is for spec {run.get('spec')!r}, the spec loaded is {data.spec.name!r}.")
    return data


def _same_design(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=1e-30) for k in a)


# --------------------------------------------------------------------------------------------- formatting


_value = format_value


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _pct(value: float | None) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value * 100:.1f} %"


def _interval(est: Mapping[str, Any] | None) -> str:
    if not est:
        return "—"
    return f"[{est['low'] * 100:.1f}, {est['high'] * 100:.1f}] %"


def _yield_text(est: Mapping[str, Any] | None) -> str:
    return "—" if not est else f"{_pct(est['value'])} {_interval(est)}"


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], numeric: Sequence[bool] | None = None,
           classes: Sequence[str] = ()) -> str:
    """An HTML table; cells given as ``("html", str)`` tuples are inserted unescaped."""
    numeric = numeric or [False] * len(header)
    head = "".join(f'<th class="{"num" if n else ""}">{_e(h)}</th>' for h, n in zip(header, numeric, strict=True))
    body = []
    for index, row in enumerate(rows):
        cells = []
        for cell, num in zip(row, numeric, strict=True):
            content = cell[1] if isinstance(cell, tuple) and cell and cell[0] == "html" else _e(cell)
            cells.append(f'<td class="{"num" if num else ""}">{content}</td>')
        row_class = f' class="{classes[index]}"' if index < len(classes) and classes[index] else ""
        body.append(f"<tr{row_class}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(png: bytes, alt: str, caption: str = "") -> str:
    data = base64.b64encode(png).decode("ascii")
    caption_html = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{data}">{caption_html}</figure>'


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _limits(spec: Spec, measure: str) -> str:
    bound, unit = spec.file.specs[measure], spec.testbench.unit(measure)
    parts = []
    if bound.min is not None:
        parts.append(f"≥ {_value(bound.min, unit)}")
    if bound.max is not None:
        parts.append(f"≤ {_value(bound.max, unit)}")
    return ", ".join(parts)


def margin(value: float, minimum: float | None, maximum: float | None) -> tuple[float, float | None]:
    """Signed distance of ``value`` to its nearest limit (positive: met), and that limit."""
    candidates = []
    if minimum is not None:
        candidates.append((value - minimum, minimum))
    if maximum is not None:
        candidates.append((maximum - value, maximum))
    if not candidates or not math.isfinite(value):
        return math.nan, None
    return min(candidates, key=lambda c: c[0])


# ---------------------------------------------------------------------------------------------- sections


def _header(data: FolderData) -> str:
    spec, run, summary = data.spec, data.run, data.summary
    source = data.folder / ("run_summary.json" if run is not None else "summary.json")
    ran = _dt.datetime.fromtimestamp(source.stat().st_mtime).astimezone()
    now = _dt.datetime.now().astimezone()
    rows: list[tuple[str, object]] = [
        ("spec file", spec.path or "—"),
        ("testbench", spec.testbench.name),
        ("kind of results", "optimization run (optiyield run)" if run is not None
         else "Monte Carlo yield (optiyield yield)"),
        ("results written", ran.strftime("%Y-%m-%d %H:%M %Z")),
        ("report generated", now.strftime("%Y-%m-%d %H:%M %Z")),
    ]
    if data.outcomes is not None:
        n, sampler, seed = data.outcomes
        rows.append(("optimization outcomes", f"{n} samples, {sampler}, seed {seed} (common random numbers)"))
    if summary is not None:
        label = "verification Monte Carlo" if run is not None else "Monte Carlo"
        rows.append((label, f"{summary['samples']} samples, {summary['sampler']}, seed {summary['seed']}"))
    if run is not None:
        rows.append(("yield on the optimization outcomes",
                     f"start {_yield_text(run['start_yield'])} → final {_yield_text(run['final_yield'])}"))
    headline = ""
    if summary is not None:
        est = summary["yield"]
        what = "verified yield" if run is not None else "Monte Carlo yield"
        headline = (f'<p class="headline">{what}: <strong>{_pct(est["value"])}</strong> '
                    f'<span class="interval">{_interval(est)} ({summary["confidence"] * 100:g} % interval, '
                    f'{est["passed"]} of {est["n"]} samples pass)</span></p>')
    else:
        headline = _note("no Monte Carlo sample in this folder (no summary.json): no verified yield.")
    description = f"<p>{_e(spec.file.description)}</p>" if spec.file.description else ""
    notes = "".join(f'<p class="warning">{_e(n)}</p>' for n in data.notes)
    table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    toc = "".join(f'<li><a href="#{key}">{_e(title)}</a></li>' for key, title in _sections(data))
    return (f"<header><h1>{_e(spec.name)}: yield report</h1>{description}{headline}{notes}"
            f'<table class="facts">{table}</table><nav><ol start="2">{toc}</ol></nav></header>')


def _spec_section(data: FolderData) -> str:
    spec, summary, samples = data.spec, data.summary, data.samples
    per_spec = summary["per_spec"] if summary is not None else {}
    nominal, source = data.nominal, ""
    where = "final design" if data.run is not None else "design point"
    if nominal is not None:
        source = f"nominal: the simulated nominal response at the {where}, from store.sqlite."
    elif samples is not None:
        ok = samples["status"] != FAILED
        nominal = {m: float(samples.loc[ok, m].median()) for m in spec.file.specs}
        source = (f"nominal: the median of the {int(ok.sum())} successful Monte Carlo samples (the nominal "
                  "point itself was not simulated on its own).")
    rows, classes = [], []
    for measure, bound in spec.file.specs.items():
        unit = spec.testbench.unit(measure)
        value = nominal.get(measure, math.nan) if nominal else math.nan
        distance, limit = margin(value, bound.min, bound.max)
        share = distance / abs(limit) * 100 if limit not in (None, 0) and math.isfinite(distance) else math.nan
        est = per_spec.get(measure)
        rows.append([measure, _limits(spec, measure), _value(value, unit) if math.isfinite(value) else "—",
                     (_value(distance, unit) if math.isfinite(distance) else "—"),
                     f"{share:+.1f} %" if math.isfinite(share) else "—",
                     _pct(est["value"]) if est else "—", _interval(est),
                     est["failures"] if est else "—"])
        classes.append("bad" if math.isfinite(distance) and distance < 0 else "")
    body = _table(["spec", "limits", f"nominal at {where}", "margin", "margin / limit", "yield", "interval",
                   "violations"], rows, [False, False, True, True, True, True, True, True], classes)
    note = _note(source) if source else _note("no nominal values: no store entry and no Monte Carlo sample.")
    if summary is None:
        note += _note("no Monte Carlo sample (summary.json): the per-spec yields are missing.")
    else:
        note += _note(f"margin: distance to the nearest limit, positive when met. Yields and violations are over "
                      f"the {summary['samples']} Monte Carlo samples; a failed simulation violates every spec.")
    return body + note + _regions_table(data, nominal or {}, where)


def _regions_table(data: FolderData, nominal: Mapping[str, float], where: str) -> str:
    """The spec's ``regions:`` constraints per device: region, margin, measures at the nominal point, and the
    share of Monte Carlo samples in which the device holds its region with the margin (all its specs met)."""
    spec, samples = data.spec, data.samples
    if not spec.regions:
        return ""
    ok = samples["status"] != FAILED if samples is not None else None
    rows, classes = [], []
    for region in spec.regions:
        values = "; ".join(f"{m} {_value(nominal.get(m, math.nan), 'V')}" for m in region.measures)
        held = "—"
        if samples is not None and ok is not None:
            passing = ok.copy()
            for name, (low, high) in region.bounds.items():
                column = samples[name]
                passing &= column.notna() & ((column >= low) if low is not None else True) & (
                    (column <= high) if high is not None else True)
            held = _pct(float(passing.mean())) if len(samples) else "—"
        met = region.met(dict(nominal))
        rows.append([region.device, region.request.region, _value(region.request.margin, "V"), values,
                     "yes" if met else "NO", held])
        classes.append("" if met else "bad")
    body = _table(["device", "region", "margin", f"measures at the {where}", "met (nominal)",
                   "held in the Monte Carlo"], rows, [False, False, True, False, False, True], classes)
    return ("<h3>Operating-point regions (spec <code>regions:</code>)</h3>" + body
            + _note("sat = |Vds| − Vdsat, vov = Vgs − Vth, vcb = −Vbc (V); a device holds its region when every one "
                    "of its specs is met (optiyield/region_specs.py)."))


def _sections(data: FolderData) -> tuple[tuple[str, str], ...]:
    """The report's sections: :data:`SECTIONS`, with the corners after the specifications when there are any."""
    if data.corners is None and not (data.run or {}).get("corners"):
        return SECTIONS
    return (SECTIONS[0], CORNER_SECTION, *SECTIONS[1:])


def _corner_section(data: FolderData) -> str:
    """Yield per corner before and after a corner run, and the corners × specs table of `optiyield corners`."""
    spec, parts = data.spec, []
    run = (data.run or {}).get("corners")
    if run:
        rows, classes = [], []
        for name in run["names"]:
            before, after = run["before"][name], run["after"][name]
            rows.append([name, _pct(before["value"]), _interval(before), _pct(after["value"]), _interval(after)])
            classes.append("bad" if after["value"] < 1 else "")
        parts.append("<h3>Yield per corner on the optimization outcomes</h3>")
        parts.append(_table(["corner", "start", "interval", "final", "interval"], rows,
                            [False, True, True, True, True], classes))
        parts.append(_note("An outcome passes at a corner when it meets every spec there; the run's yield counts "
                           "an outcome only when it passes at every corner."))
    table = data.corners
    if table:
        at = "a design point"
        if data.run is not None:
            at = ("the final design" if _same_design(table["design"], data.run["design_final"]) else
                  "the start design" if _same_design(table["design"], data.run["design_start"]) else at)
        mc = table.get("samples", 1) > 1
        parts.append(f"<h3>Corners × specs at {_e(at)} (optiyield corners" + (f", {table['samples']} Monte Carlo "
                     "samples per sampled corner" if mc else "") + ")</h3>")
        worst_rows, worst_classes = [], []
        for row in table["worst"]:
            unit = spec.testbench.unit(row["spec"]) if row["spec"] in spec.testbench.measure_names else ""
            worst_rows.append([row["spec"], _limits(spec, row["spec"]), row["worst corner"],
                               _value(row["value"], unit) if _finite(row["value"]) else "—",
                               _value(row["margin"], unit) if _finite(row["margin"]) else "—",
                               "pass" if row["pass"] else "fail"])
            worst_classes.append("" if row["pass"] else "bad")
        parts.append(_table(["spec", "limits", "worst corner", "value", "margin", "at every corner"], worst_rows,
                            [False, False, False, True, True, False], worst_classes))
        rows, classes = [], []
        for row in table["table"]:
            cells = [row["corner"]]
            for name in spec.file.specs:
                unit = spec.testbench.unit(name)
                value = row.get(name)
                cell = _value(value, unit) if _finite(value) else "—"
                if mc:
                    cell += f" ({row.get(f'yield {name}', 0) * 100:.0f} %)"
                elif not (_finite(row.get(f"margin {name}")) and row[f"margin {name}"] >= 0):
                    cell += " ✗"
                cells.append(cell)
            cells.append(_pct(row["yield"]) if mc else ("yes" if row["pass"] else "no"))
            rows.append(cells)
            classes.append("" if row["pass"] else "bad")
        parts.append(_table(["corner", *spec.file.specs, "yield" if mc else "pass"], rows,
                            [False, *([True] * len(spec.file.specs)), True], classes))
        parts.append(_note(f"{table['passing_corners']} of {len(table['table'])} corners meet every spec; "
                           f"{table['simulations']} simulations, {table['wall_seconds']:.2f} s wall. "
                           + ("Values are medians over the corner's samples (yield of each spec in brackets)."
                              if mc else "✗: the spec is violated at that corner.")))
    return "".join(parts)


def _histogram_section(data: FolderData) -> tuple[str, int]:
    spec, samples = data.spec, data.samples
    if samples is None:
        return _note("no Monte Carlo sample in this folder (samples.parquet): no histograms."), 0
    parts = []
    if data.before is None:
        why = data.before_note or ("no optimization in this folder (no run_summary.json and store.sqlite): "
                                   "the histograms show the Monte Carlo sample only.")
        parts.append(_note(why))
    elif data.before_note:
        parts.append(_note(data.before_note))
    ok = samples["status"] != FAILED
    confidence = data.summary["confidence"] if data.summary else spec.run.confidence
    after_label = "final design" if data.run is not None else "design point"
    images = 0
    for measure, bound in spec.file.specs.items():
        unit = spec.testbench.unit(measure)
        after_values = samples.loc[ok, measure].to_numpy(dtype=float)
        after = HistogramSeries(after_values, f"{after_label}, {len(samples)} samples")
        after_est = data.summary["per_spec"][measure] if data.summary else None
        final = _pct(after_est["value"]) if after_est else "—"
        before, title = None, f"{measure}: spec yield {final}"
        if data.before is not None and data.outcomes is not None:
            values = data.before[measure]
            n = len(values)
            est = YieldEstimate.from_counts(int(figures.passing(values, bound).sum()), n, confidence)
            before = HistogramSeries(values, f"start design, {n} optimization outcomes")
            title = f"{measure}: spec yield {_pct(est.value)} (start) → {final} (final)"
        png = figures.png_bytes(figures.spec_histogram(measure, bound, unit, after, before, title=title))
        caption = f"{measure} ({_limits(spec, measure)}): dashed lines are the limits, the shaded side fails."
        if before is not None:
            caption += (" Bars: the final design over the verification sample; orange outline: the start "
                        "design over the optimization outcomes. Heights are shares of each sample.")
        parts.append(_image(png, f"histogram of {measure}", caption))
        images += 1
    return f'<div class="grid">{"".join(parts)}</div>', images


def _group_history(history: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Journal records by run step (its ``start`` and ``done`` events left out)."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in history:
        records = groups.setdefault(str(record["step"]), [])
        if record.get("event") not in ("start", "done"):
            records.append(record)
    return groups


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _trace_section(data: FolderData) -> tuple[str, int]:
    if data.run is None or not data.history:
        return _note("no optimization history in this folder (store.sqlite journal): nothing to trace."), 0
    groups = _group_history(data.history)
    series: dict[str, list[YieldPoint]] = {}
    objectives: dict[str, dict[str, list[ObjectivePoint]]] = {}
    for step, records in groups.items():
        for index, record in enumerate(records):
            if _finite(record.get("yield")) and _finite(record.get("simulations")):
                low, high = record.get("yield_low"), record.get("yield_high")
                series.setdefault(step, []).append(YieldPoint(
                    float(record["simulations"]), float(record["yield"]),
                    float(low) if _finite(low) else None, float(high) if _finite(high) else None))
            if _finite(record.get("objective")):
                phase = str(record.get("phase", step))
                objectives.setdefault(step, {}).setdefault(phase, []).append(
                    ObjectivePoint(index, float(record["objective"]), bool(record.get("accepted", True))))
    steps = [s for s in data.run["steps"] if s["kind"] != "verify"]
    total = sum(s["simulations"] for s in data.run["steps"])
    cumulative = float(data.run["simulations"] - total)  # the start yield's simulations, before step 1
    start = data.run["start_yield"]
    marks = [("start", YieldPoint(cumulative, start["value"], start["low"], start["high"]))]
    for step in data.run["steps"]:
        cumulative += step["simulations"]
        after = step.get("yield_after")
        if step["kind"] != "verify" and after:
            marks.append((f"end of step {step['label'].split('.')[0]}",
                          YieldPoint(cumulative, after["value"], after["low"], after["high"])))
    parts, images = [], 0
    confidence = data.spec.run.confidence
    png = figures.png_bytes(figures.yield_trace(series, marks, confidence))
    parts.append(_image(png, "yield trace", "Yield on the optimization outcomes against the cumulative number "
                        "of new simulations; lines are per-iteration yields of the optimizer steps (where they "
                        "track it), diamonds the yield at the start and at the end of each step."))
    images += 1
    if objectives:
        png = figures.png_bytes(figures.objective_traces(objectives))
        parts.append(_image(png, "objective traces", "Objective per iteration of each step: minimax, the largest "
                            "weighted spec error (≤ 0: every spec met with margin); one-sided ℓ1, Σ αᵢ Σ eᵢⱼ⁺ "
                            "(≈ the number of failing outcomes, α fixed per phase); staged, the total penalty; "
                            "baselines, −yield. Crosses are rejected trust-region trials."))
        images += 1
    else:
        parts.append(_note("no objective values in the journal."))
    if not steps:
        parts.append(_note("the run has no optimization step."))
    return "".join(parts), images


def _design_section(data: FolderData) -> str:
    spec = data.spec
    rows = []
    if data.run is not None:
        start, final = data.run["design_start"], data.run["design_final"]
        for name, var in spec.file.design.items():
            if name not in start or name not in final:
                continue
            span = var.max - var.min
            change = (final[name] - start[name]) / span * 100 if span > 0 else 0.0
            at = " (at min)" if math.isclose(final[name], var.min) else \
                " (at max)" if math.isclose(final[name], var.max) else ""
            rows.append([name, format_eng(start[name]), format_eng(final[name]) + at,
                         f"[{format_eng(var.min)}, {format_eng(var.max)}]", f"{change:+.1f} %"])
        return _table(["variable", "start", "final", "bounds", "change / range"], rows,
                      [False, True, True, True, True])
    point = data.point
    if not point:
        return _note("no design point in this folder.")
    for name, var in spec.file.design.items():
        if name in point:
            rows.append([name, format_eng(point[name]), f"[{format_eng(var.min)}, {format_eng(var.max)}]"])
    return (_table(["variable", "design point", "bounds"], rows, [False, True, True])
            + _note("a Monte Carlo at one design point: no optimization, so no start and final design."))


def _cost_section(data: FolderData) -> str:
    run, summary = data.run, data.summary
    if run is None:
        if summary is None:
            return _note("no run data.")
        return _note(f"one Monte Carlo: {summary['samples']} samples in {summary['ngspice_runs']} ngspice runs, "
                     f"{summary['ngspice_seconds']:.2f} s ngspice time, {summary['wall_seconds']:.2f} s wall "
                     f"({summary['samples_per_second']:.0f} samples/s).")
    rows = []
    for step in run["steps"]:
        result = step.get("result") or {}
        after = step.get("verify_yield") if step["kind"] == "verify" else step.get("yield_after")
        rows.append([step["label"], _yield_text(step.get("yield_before")), _yield_text(after),
                     result.get("iterations", "—"), step["simulations"], step["cached"],
                     f"{step['ngspice_seconds']:.1f}", f"{step['wall_seconds']:.1f}", result.get("status", "")])
    rows.append([("html", "<strong>total</strong>"), "", "", "", run["simulations"], run["cached"],
                 f"{run['ngspice_seconds']:.1f}", f"{run['wall_seconds']:.1f}", ""])
    return (_table(["step", "yield before", "yield after", "iterations", "new simulations", "from the store",
                    "ngspice s", "wall s", "status"], rows,
                   [False, True, True, True, True, True, True, True, False])
            + _note("yields before/after are on the optimization outcomes; a verify step shows the yield of its "
                    "fresh sample. ngspice s sums the process time of all ngspice runs (parallel), wall s is "
                    "elapsed time. The total includes the start design's yield evaluation."))


def _failure_section(data: FolderData) -> str:
    spec, samples = data.spec, data.samples
    parts = []
    failed = samples[samples["status"] == FAILED] if samples is not None else samples
    if failed is not None and len(failed):
        counts = failed["reason"].map(reason_kind).value_counts()
        parts.append(f"<h3>Monte Carlo sample: {len(failed)} of {len(samples)} simulations failed</h3>")
        parts.append(_table(["reason (numbers shown as #)", "samples"],
                            [[_short(r), int(c)] for r, c in counts.items()], [False, True]))
        columns = [c for c in spec.parameters if c in failed.columns]
        rows = [[int(row["sample"]), *(format_eng(float(row[c])) for c in columns), _short(row["reason"])]
                for _, row in failed.head(FAILED_ROWS_SHOWN).iterrows()]
        parts.append(f"<p>The first {min(FAILED_ROWS_SHOWN, len(failed))}, with their parameter values:</p>")
        parts.append(_table(["sample", *columns, "reason"], rows, [True] * (len(columns) + 1) + [False]))
    if data.store_failures:
        total = sum(data.store_failures.values())
        parts.append(f"<h3>All stored evaluations (store.sqlite): {total} of {data.store_evaluations} failed</h3>")
        parts.append(_table(["reason (numbers shown as #)", "evaluations"],
                            [[_short(r), c] for r, c in data.store_failures.items()],
                            [False, True]))
    if not parts:
        checked = []
        if samples is not None:
            checked.append(f"{len(samples)} Monte Carlo samples")
        if data.store_evaluations:
            checked.append(f"{data.store_evaluations} stored evaluations")
        parts.append(_note(f"none ({' and '.join(checked) or 'no simulations in this folder'})."))
    retried = int((samples["status"] == "retried").sum()) if samples is not None else 0
    if retried:
        parts.append(_note(f"{retried} Monte Carlo simulations succeeded on a retry with gentler solver options."))
    return "".join(parts)


_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+(?=[eE]))(?:[eE][-+]?\d+)?")


def reason_kind(reason: object) -> str:
    """A failure reason with its sample-specific numbers (decimals, exponents) replaced by ``#``, so
    failures of one kind group together: ``u0 ... = -0.0046 is not positive`` → ``u0 ... = # is not positive``."""
    return _NUMBER.sub("#", str(reason))


def _short(reason: object, limit: int = 240) -> str:
    text = str(reason)
    return text if len(text) <= limit else text[:limit] + " …"


def _limiting_section(data: FolderData) -> tuple[str, int]:
    spec, samples, summary = data.spec, data.samples, data.summary
    if samples is None or summary is None:
        return _note("no Monte Carlo sample in this folder: no scatter."), 0
    if len(spec.file.specs) < 2:
        return _note("the spec has a single measure: no scatter of two."), 0
    ranked = sorted(spec.file.specs, key=lambda m: summary["per_spec"][m]["value"])[:2]
    x_name, y_name = ranked
    ok = (samples["status"] != FAILED).to_numpy()
    passed = ok.copy()
    for measure, bound in spec.file.specs.items():
        passed &= figures.passing(samples[measure].to_numpy(dtype=float), bound)
    figure = figures.limits_scatter(
        x_name, y_name, samples[x_name].to_numpy(dtype=float), samples[y_name].to_numpy(dtype=float), passed,
        spec.file.specs[x_name], spec.file.specs[y_name], spec.testbench.unit(x_name), spec.testbench.unit(y_name),
        title=f"{y_name} (yield {_pct(summary['per_spec'][y_name]['value'])}) against "
              f"{x_name} (yield {_pct(summary['per_spec'][x_name]['value'])})")
    caption = (f"The {int(ok.sum())} successfully simulated Monte Carlo samples; red ones fail at least one spec "
               "(possibly one not plotted). Dashed lines are the limits, shaded sides fail.")
    return _image(figures.png_bytes(figure), f"scatter of {y_name} against {x_name}", caption), 1


def _sensitivity_section(data: FolderData) -> tuple[str, int]:
    result = data.sensitivity
    if result is None or not result.get("spec"):
        spec_path = data.spec.path or "SPEC"
        return _note(f"no sensitivity.json in this folder: run `optiyield sensitivity {spec_path} --at final "
                     f"--out {data.folder}` and then `optiyield report {data.folder}`."), 0
    spec = data.spec
    parts = []
    design = result.get("design")
    if design and data.run is not None:
        at = ("the final design" if _same_design(design, data.run["design_final"]) else
              "the start design" if _same_design(design, data.run["design_start"]) else "another design point")
        parts.append(_note(f"computed at {at}; effect: half the difference of the responses at ± the step, "
                           "normalized: the effect over the spec's error scale (compares specs)."))
    entries = {m: sorted(rows, key=lambda e: -abs(e["normalized"]) if _finite(e["normalized"]) else 0.0)
               for m, rows in result["spec"].items()}
    for measure, rows in entries.items():
        unit = spec.testbench.unit(measure) if measure in spec.testbench.measure_names else ""
        nominal = (result.get("nominal") or {}).get(measure)
        title = f"{measure}" + (f" (nominal {_value(nominal, unit)})" if _finite(nominal) else "")
        parts.append(f"<h3>{_e(title)}</h3>")
        parts.append(_table(["parameter", "kind", "step", "effect", "normalized"],
                            [[e["parameter"], e["kind"], e.get("step", ""),
                              _value(e["effect"], unit) if _finite(e["effect"]) else "—",
                              f"{e['normalized']:+.4f}" if _finite(e["normalized"]) else "—"] for e in rows],
                            [False, False, False, True, True]))
    png = figures.png_bytes(figures.sensitivity_bars(entries, SENSITIVITY_BARS))
    parts.append(_image(png, "sensitivity bars", f"The {SENSITIVITY_BARS} parameters with the largest normalized "
                        "effect on each spec."))
    return "".join(parts), 1


def _sci(x: Any) -> str:
    return f"{x:.3g}" if isinstance(x, int | float) and math.isfinite(x) else "—"


def _high_sigma_section(data: FolderData) -> str:
    reliability = (data.run or {}).get("reliability") or {}
    worst, failure = reliability.get("worst_case"), reliability.get("failure")
    if not worst and not failure:
        spec_path = data.spec.path or "SPEC"
        return _note("no high-sigma figures in this folder: add {centering: wcd, beta: 4} or {verify: {samples: 2000, "
                     f"sigma: is}} to run.steps, or run `optiyield wcd {spec_path}` and `optiyield yield {spec_path} "
                     "--method is`.")
    parts = []
    estimate = (failure or {}).get("failure")
    per_bound = (estimate or {}).get("details", {}).get("per_bound") or {}
    if worst:
        reached = "reached" if worst.get("reached") else "not reached"
        parts.append(f"<p>{_e(worst['step'])}: target β ≥ {worst['target']:g} {reached}, smallest β "
                     f"<strong>{worst['beta_min']:.3f}</strong> ({worst['evaluations']} evaluations).</p>")
    labels = list((worst or {}).get("beta") or per_bound)
    corners = {c["label"]: c for c in (worst or {}).get("corners", [])}
    rows = []
    for label in labels:
        beta = (worst or {}).get("beta", {}).get(label)
        corner = corners.get(label, {})
        est = per_bound.get(label)
        unit = data.spec.testbench.unit(corner["measure"]) if corner.get("measure") else ""
        at = corner.get("measure_at_corner")
        rows.append([label, "—" if beta is None else f"{beta:+.3f}",
                     "—" if beta is None else _sci(0.5 * math.erfc(beta / math.sqrt(2.0))),
                     "—" if at is None else _value(at, unit), corner.get("status", "—"),
                     "—" if est is None else f"{_sci(est['probability'])} [{_sci(est['low'])}, {_sci(est['high'])}]",
                     "—" if est is None else f"{est['sigma']:.2f}"])
    if rows:
        parts.append(_table(["bound", "β", "Φ(−β)", "measure at corner", "search", "estimated failure probability",
                             "sigma level"], rows, [False, True, True, True, False, True, True]))
    if failure:
        mc = failure.get("monte_carlo") or {}
        if mc:
            parts.append(f"<p>Verification Monte Carlo: {mc['failures']} failures in {mc['samples']} samples, failure "
                         f"probability {_sci(mc['probability'])} [{_sci(mc['low'])}, {_sci(mc['high'])}] "
                         f"(Clopper–Pearson), sigma level ≥ {mc['sigma_low']:.2f}.</p>")
        if estimate:
            parts.append(f"<p class='headline'>High-sigma estimate ({_e(estimate['method'])}, "
                         f"{estimate['simulations']} simulations): failure probability "
                         f"<strong>{_sci(estimate['probability'])}</strong> <span class='interval'>"
                         f"[{_sci(estimate['low'])}, {_sci(estimate['high'])}]</span>, sigma level "
                         f"<strong>{estimate['sigma']:.2f}</strong>.</p>")
    if corners:
        names = list(next(iter(corners.values())).get("values") or {})
        table_rows = [[name, *(_value(c["values"][name], "") if name in (c.get("values") or {}) else "—"
                               for c in corners.values())] for name in names]
        parts.append("<h3>Statistical corners (the worst-case points in parameter values)</h3>")
        parts.append(_table(["parameter", *corners], table_rows, [False, *([True] * len(corners))]))
        parts.append(_note("each corner is written to corners/<bound>.param (include it after the netlist's own "
                           ".param lines), corners/corners.alter and corners/corners_ngspice.control."))
    return "".join(parts)


# ---------------------------------------------------------------------------------------------- assembly

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #222;
       background: #fff; max-width: 1080px; margin: 24px auto; padding: 0 20px; }
h1 { font-size: 24px; margin: 0 0 6px; }
h2 { font-size: 18px; border-bottom: 1px solid #ccc; padding-bottom: 3px; margin-top: 32px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.headline { font-size: 18px; margin: 8px 0 10px; }
.headline strong { font-size: 22px; }
.interval { color: #555; font-size: 14px; }
table { border-collapse: collapse; margin: 8px 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d5d5d5; padding: 4px 8px; vertical-align: top; }
thead th { background: #f2f4f7; text-align: left; }
th.num, td.num { text-align: right; white-space: nowrap; }
table.facts th { text-align: left; background: #f7f7f7; font-weight: 600; }
tr.bad td { color: #b52b27; }
.note { color: #555; font-style: italic; margin: 6px 0; }
.warning { color: #8a5a00; background: #fff6e0; border: 1px solid #f0d9a0; padding: 4px 8px; }
figure { margin: 10px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 12.5px; max-width: 720px; }
.grid { display: flex; flex-wrap: wrap; gap: 8px 16px; }
.grid figure { flex: 1 1 460px; max-width: calc(50% - 8px); }
@media (max-width: 960px) { .grid figure { max-width: 100%; } }
.grid .note { flex-basis: 100%; }
nav ol { columns: 2; margin: 10px 0; }
footer { color: #777; font-size: 12px; margin-top: 32px; border-top: 1px solid #ddd; padding-top: 6px; }
@media print {
  body { max-width: none; margin: 0; font-size: 11pt; }
  nav { display: none; }
  h2 { break-after: avoid; }
  figure, table, tr { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
@page { margin: 14mm; }
"""


@dataclass
class Report:
    """A rendered report: the HTML text and the number of embedded images."""

    html: str
    images: int


def render(data: FolderData) -> Report:
    """Build the HTML page of loaded folder data."""
    bodies: dict[str, str] = {}
    images = 0
    bodies["specs"] = _spec_section(data)
    bodies["corners"] = _corner_section(data)
    bodies["histograms"], count = _histogram_section(data)
    images += count
    bodies["traces"], count = _trace_section(data)
    images += count
    bodies["design"] = _design_section(data)
    bodies["cost"] = _cost_section(data)
    bodies["failures"] = _failure_section(data)
    bodies["limiting"], count = _limiting_section(data)
    images += count
    bodies["high_sigma"] = _high_sigma_section(data)
    bodies["sensitivity"], count = _sensitivity_section(data)
    images += count
    sections = "".join(f'<section id="{key}"><h2>{number}. {_e(title)}</h2>{bodies[key]}</section>'
                       for number, (key, title) in enumerate(_sections(data), start=2))
    from optiyield import __version__

    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(data.spec.name)}: optiyield report</title><style>{CSS}</style></head>"
            f"<body>{_header(data)}{sections}"
            f"<footer>optiyield {_e(__version__)} · generated from {_e(data.folder.resolve())} · "
            f"self-contained: every figure is embedded.</footer></body></html>\n")
    return Report(page, images)


def write_report(folder: str | Path, spec: Spec | str | Path | None = None) -> Path:
    """Write ``folder/report.html`` from the folder's results; returns its path.

    ``spec`` (loaded, or a path) overrides the spec file named in the folder's summaries.
    Raises :class:`ReportError` when the folder holds no results or the spec cannot be loaded.
    """
    data = load_folder(folder, spec)
    path = Path(folder) / REPORT_NAME
    path.write_text(render(data).html, encoding="utf-8")
    return path
