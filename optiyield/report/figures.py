"""Report figures: matplotlib (Agg) figures of specs, traces and sensitivities, as PNG bytes.

Every function here takes plain data (arrays, limits, units) and returns a :class:`~matplotlib.figure.Figure`;
:func:`png_bytes` renders and closes it. Measure axes use engineering units (``EngFormatter``: 250 MHz,
723 µW); logarithmic and angular units (dB, degrees) get plain numbers, since "500 mdB" helps nobody.
Colours are light and print-friendly: blue passes, red fails, orange is the start design.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import EngFormatter, Formatter, FuncFormatter, MaxNLocator, PercentFormatter  # noqa: E402

from optiyield.spec import SpecBound  # noqa: E402
from optiyield.units import PLAIN_UNITS, format_value  # noqa: E402
from optiyield.yield_ import SpecLimit  # noqa: E402

PASS_COLOR = "#4c8cbf"
FAIL_COLOR = "#d9534f"
BEFORE_COLOR = "#e08214"
DESIGN_COLOR = "#4c8cbf"
STATISTICAL_COLOR = "#8c6bb1"
DPI = 110


def png_bytes(figure: Figure) -> bytes:
    """Render a figure to PNG bytes and close it."""
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=DPI)
    finally:
        plt.close(figure)
    return buffer.getvalue()


def axis_formatter(unit: str) -> Formatter:
    """Tick formatter of a measure axis: SI prefixes with the unit, or plain numbers for dB and degrees."""
    if unit in PLAIN_UNITS:
        return FuncFormatter(lambda value, _pos: f"{value:g}")
    return EngFormatter(unit=unit, sep=" ")


def axis_label(measure: str, unit: str) -> str:
    """``gain_db (dB)``, or the bare name when the unit is unknown."""
    return f"{measure} ({unit})" if unit else measure


def _finite(values: np.ndarray | Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def passing(values: np.ndarray, bound: SpecBound) -> np.ndarray:
    """True where a value meets a spec's limits (NaN fails)."""
    return SpecLimit("", bound.min, bound.max).passes(np.asarray(values, dtype=float))


def _shade_failing(axes: Axes, bound: SpecBound, unit: str, vertical: bool = True) -> None:
    """Dashed limit lines, labelled, with the failing side lightly shaded (the limits are kept in view)."""
    line = axes.axvline if vertical else axes.axhline
    span = axes.axvspan if vertical else axes.axhspan
    limits = [(limit, name) for limit, name in ((bound.min, "min"), (bound.max, "max")) if limit is not None]
    for limit, _name in limits:
        line(limit, color="black", linestyle="--", linewidth=1.4, zorder=3)
    low, high = axes.get_xlim() if vertical else axes.get_ylim()
    for limit, name in limits:
        if name == "min" and low < limit:
            span(low, limit, color=FAIL_COLOR, alpha=0.07, linewidth=0, zorder=0)
        if name == "max" and limit < high:
            span(limit, high, color=FAIL_COLOR, alpha=0.07, linewidth=0, zorder=0)
        text = f"{name} {format_value(limit, unit)}"
        if vertical:
            axes.annotate(text, (limit, 1), xycoords=("data", "axes fraction"), xytext=(3, -12),
                          textcoords="offset points", fontsize=8)
        else:
            axes.annotate(text, (1, limit), xycoords=("axes fraction", "data"), xytext=(-3, 3),
                          textcoords="offset points", fontsize=8, ha="right")
    if vertical:
        axes.set_xlim(low, high)
    else:
        axes.set_ylim(low, high)


def bin_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Common histogram bin edges of finite values; a (nearly) constant sample, as without variation,
    gets a small window around its value instead of bins narrower than float resolution."""
    low, high = float(values.min()), float(values.max())
    scale = max(abs(low), abs(high))
    if high - low <= 1e-9 * scale or high == low:
        middle, half = (low + high) / 2, (0.01 * scale) or 0.5
        return np.linspace(middle - half, middle + half, 11)
    return np.histogram_bin_edges(values, bins=bins, range=(low, high))


@dataclass(frozen=True)
class HistogramSeries:
    """Values of one measure over a sample, with the legend label to show."""

    values: np.ndarray
    label: str


def spec_histogram(measure: str, bound: SpecBound, unit: str, after: HistogramSeries,
                   before: HistogramSeries | None = None, title: str = "") -> Figure:
    """Histogram of a measure with its limits drawn (Bandler et al. 1990, Figs. 3 and 4).

    ``after`` is drawn as bars, blue where the spec is met and red where it is violated. Alone, the
    y axis counts samples. With ``before`` (e.g. the start design over the optimization outcomes),
    both are drawn on common bins as percentages of their own sample, ``before`` as an orange outline,
    so samples of different sizes compare.
    """
    after_values = _finite(after.values)
    before_values = _finite(before.values) if before is not None else np.zeros(0)
    figure, axes = plt.subplots(figsize=(6.4, 4.4 if before is None else 4.6))
    everything = np.concatenate([after_values, before_values])
    if len(everything):
        bins = min(60, max(10, int(math.sqrt(max(len(after_values), len(before_values))))))
        edges = bin_edges(everything, bins)
        meets = passing(after_values, bound)
        prefix = f"{after.label}: " if after.label else ""
        if before is None:
            weights = [np.ones(int(meets.sum())), np.ones(int((~meets).sum()))]
        else:
            scale = 100.0 / max(len(after_values), 1)
            weights = [np.full(int(meets.sum()), scale), np.full(int((~meets).sum()), scale)]
        if len(after_values):
            axes.hist([after_values[meets], after_values[~meets]], bins=edges, weights=weights, stacked=True,
                      color=[PASS_COLOR, FAIL_COLOR], alpha=0.85,
                      label=[f"{prefix}meets spec", f"{prefix}violates spec"])
        if before is not None and len(before_values):
            axes.hist(before_values, bins=edges, weights=np.full(len(before_values), 100.0 / len(before_values)),
                      histtype="step", color=BEFORE_COLOR, linewidth=2.0, label=before.label)
    else:
        axes.text(0.5, 0.5, "no successful simulations", transform=axes.transAxes, ha="center", va="center")
    _shade_failing(axes, bound, unit)
    axes.set_title(title or measure, fontsize=10)
    axes.set_xlabel(axis_label(measure, unit))
    axes.xaxis.set_major_formatter(axis_formatter(unit))
    axes.xaxis.set_major_locator(MaxNLocator(nbins=6))
    if before is None:
        axes.set_ylabel("samples")
    else:
        axes.set_ylabel("share of each sample")
        axes.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2, frameon=False)
    axes.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    axes.set_axisbelow(True)
    figure.tight_layout()
    return figure


@dataclass(frozen=True)
class YieldPoint:
    """A yield estimate with its interval (fractions) at a cumulative simulation count."""

    simulations: float
    value: float
    low: float | None = None
    high: float | None = None


def yield_trace(series: Mapping[str, Sequence[YieldPoint]], marks: Sequence[tuple[str, YieldPoint]] = (),
                confidence: float = 0.95) -> Figure:
    """Yield (%) against cumulative simulations: one line per optimizer step, its interval as a band.

    ``marks`` are labelled single estimates (the start design, the end of each step) drawn with error bars.
    """
    figure, axes = plt.subplots(figsize=(7.2, 3.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (label, points) in enumerate(series.items()):
        color = colors[index % len(colors)]
        x = np.array([p.simulations for p in points], dtype=float)
        y = np.array([p.value for p in points], dtype=float) * 100
        axes.plot(x, y, marker="o", markersize=3.5, linewidth=1.4, color=color, label=label)
        if all(p.low is not None and p.high is not None for p in points):
            low = np.array([p.low for p in points], dtype=float) * 100
            high = np.array([p.high for p in points], dtype=float) * 100
            axes.fill_between(x, low, high, color=color, alpha=0.15, linewidth=0)
    for index, (label, point) in enumerate(marks):
        yerr = None
        if point.low is not None and point.high is not None:
            yerr = [[(point.value - point.low) * 100], [(point.high - point.value) * 100]]
        axes.errorbar([point.simulations], [point.value * 100], yerr=yerr, fmt="D", color="black",
                      markersize=4.5, capsize=3, linewidth=1, zorder=4)
        axes.annotate(label, (point.simulations, point.value * 100), xytext=(5, 6 if index % 2 == 0 else -12),
                      textcoords="offset points", fontsize=7.5)
    axes.set_xlabel("cumulative simulations (new ngspice samples in this run)")
    axes.set_ylabel(f"yield ({confidence * 100:g} % interval shaded)")
    axes.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    axes.xaxis.set_major_formatter(EngFormatter(sep=""))
    axes.set_ylim(-3, 103)
    axes.grid(color="#e5e5e5", linewidth=0.6)
    if series:
        axes.legend(fontsize=7.5, loc="lower right")
    axes.set_title("yield on the optimization outcomes", fontsize=10)
    figure.tight_layout()
    return figure


@dataclass(frozen=True)
class ObjectivePoint:
    """One optimizer iteration: its index within the step, objective value, and whether it was accepted."""

    iteration: int
    objective: float
    accepted: bool = True


def objective_traces(steps: Mapping[str, Mapping[str, Sequence[ObjectivePoint]]]) -> Figure:
    """Objective against iteration, one panel per run step and one line per optimizer phase in it.

    Rejected trust-region trials are drawn as crosses.
    """
    count = max(len(steps), 1)
    columns = min(count, 2)
    rows = math.ceil(count / columns)
    figure, grid = plt.subplots(rows, columns, figsize=(3.7 * columns + 0.4, 2.9 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (step, phases) in enumerate(steps.items()):
        axes = grid[index // columns][index % columns]
        for number, (phase, points) in enumerate(phases.items()):
            color = colors[number % len(colors)]
            x = np.array([p.iteration for p in points])
            y = np.array([p.objective for p in points], dtype=float)
            axes.plot(x, y, linewidth=1.3, color=color, marker="o", markersize=3, label=phase)
            rejected = np.array([not p.accepted for p in points], dtype=bool)
            if rejected.any():
                axes.plot(x[rejected], y[rejected], linestyle="none", marker="x", markersize=6, color="black")
        axes.set_title(step, fontsize=9)
        axes.set_xlabel("iteration", fontsize=8)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel("objective", fontsize=8)
        axes.tick_params(labelsize=7.5)
        axes.grid(color="#e5e5e5", linewidth=0.6)
        if len(phases) > 1:
            axes.legend(fontsize=7)
    for index in range(len(steps), rows * columns):
        grid[index // columns][index % columns].set_visible(False)
    figure.tight_layout()
    return figure


def limits_scatter(x_measure: str, y_measure: str, x: np.ndarray, y: np.ndarray, passed: np.ndarray,
                   x_bound: SpecBound, y_bound: SpecBound, x_unit: str, y_unit: str, title: str = "") -> Figure:
    """Scatter of two measures over a sample, passing samples blue and failing ones red, limits drawn."""
    x, y, passed = np.asarray(x, dtype=float), np.asarray(y, dtype=float), np.asarray(passed, dtype=bool)
    finite = np.isfinite(x) & np.isfinite(y)
    figure, axes = plt.subplots(figsize=(6.4, 4.6))
    for mask, color, label in ((finite & passed, PASS_COLOR, "meets all specs"),
                               (finite & ~passed, FAIL_COLOR, "fails a spec")):
        axes.scatter(x[mask], y[mask], s=7, color=color, alpha=0.55, linewidths=0,
                     label=f"{label} ({int(mask.sum())})")
    _shade_failing(axes, x_bound, x_unit, vertical=True)
    _shade_failing(axes, y_bound, y_unit, vertical=False)
    axes.set_xlabel(axis_label(x_measure, x_unit))
    axes.set_ylabel(axis_label(y_measure, y_unit))
    axes.xaxis.set_major_formatter(axis_formatter(x_unit))
    axes.yaxis.set_major_formatter(axis_formatter(y_unit))
    axes.xaxis.set_major_locator(MaxNLocator(nbins=6))
    axes.legend(fontsize=8, loc="best", markerscale=2, framealpha=0.9)
    axes.set_title(title or f"{y_measure} against {x_measure}", fontsize=10)
    figure.tight_layout()
    return figure


def sensitivity_bars(entries: Mapping[str, Sequence[Mapping[str, object]]], top: int = 6) -> Figure:
    """Horizontal bars of the normalized effect of the ``top`` parameters of each spec (largest first).

    Design variables are blue, sources of variation purple.
    """
    count = max(len(entries), 1)
    figure, grid = plt.subplots(count, 1, figsize=(6.4, 0.5 + 0.36 * top * count + 0.5 * count), squeeze=False)
    for axes, (measure, rows) in zip(grid[:, 0], entries.items(), strict=False):
        ranked = sorted(rows, key=lambda e: -abs(float(e["normalized"])) if np.isfinite(float(e["normalized"]))
                        else 0.0)[:top]
        # A parameter can be both a design variable and a source of variation: label the kind, and place
        # bars by position (categorical labels would merge the two).
        labels = [f"{e['parameter']} ({'design' if e['kind'] == 'design' else 'variation'})" for e in ranked][::-1]
        values = [float(e["normalized"]) for e in ranked][::-1]
        colors = [DESIGN_COLOR if e["kind"] == "design" else STATISTICAL_COLOR for e in ranked][::-1]
        positions = np.arange(len(labels))
        axes.barh(positions, values, color=colors, height=0.6)
        axes.set_yticks(positions, labels)
        axes.axvline(0, color="black", linewidth=0.8)
        axes.set_title(f"{measure}: effect / spec scale", fontsize=9)
        axes.tick_params(labelsize=8)
        axes.grid(axis="x", color="#e5e5e5", linewidth=0.6)
        axes.set_axisbelow(True)
    figure.tight_layout()
    return figure
