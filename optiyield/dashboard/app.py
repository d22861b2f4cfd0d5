"""The live run page: a Dash app (Flask + Plotly.js, both served from the installed packages: no CDN, works
offline) that polls the run folder once a second and redraws only when something changed.

Sections: status and headline figures; yield with its interval per iteration; each spec's margin per
iteration; the current design against its bounds; cost per step; failed simulations. When the run has
ended, the page becomes the full HTML report (``/report``, rendered from the folder as ``optiyield report``
renders it).
"""

from __future__ import annotations

import html as html_text
import math
import time
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from dash import Dash, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from optiyield.dashboard.state import FolderReader, RunState, age
from optiyield.spec import Spec
from optiyield.units import format_eng

#: Poll period of the page, ms. The measured latency from a journal record to the page is below this plus
#: the redraw (docs/dashboard.md).
POLL_MS = 1000

_LAYOUT = dict(margin=dict(l=60, r=20, t=40, b=40), height=320, template="plotly_white",
               legend=dict(orientation="h", y=-0.2))
_CSS = {"fontFamily": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "maxWidth": "1200px",
        "margin": "0 auto", "padding": "12px", "color": "#222"}
_GRAPH = {"displaylogo": False, "displayModeBar": False}  # zoom by dragging, double-click to reset
_GRID = {"display": "grid", "gridTemplateColumns": "repeat(auto-fit, minmax(520px, 1fr))", "gap": "12px"}


def _empty(title: str, note: str) -> go.Figure:
    figure = go.Figure(layout={**_LAYOUT, "title": title})
    figure.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return figure


def yield_figure(state: RunState) -> go.Figure:
    """Yield (%) with its interval band against the run's cumulative new simulations, one colour per step."""
    points = [it for it in state.iterations if it.yield_value is not None and it.simulations is not None]
    if not points:
        return _empty("yield per iteration", "no yield journaled yet (minimax steps track the objective)")
    figure = go.Figure(layout={**_LAYOUT, "title": "yield on the optimization outcomes (with its interval)"})
    for step in dict.fromkeys(it.step for it in points):
        rows = [it for it in points if it.step == step]
        x = [it.simulations for it in rows]
        low = [100 * (it.yield_low if it.yield_low is not None else it.yield_value) for it in rows]
        high = [100 * (it.yield_high if it.yield_high is not None else it.yield_value) for it in rows]
        figure.add_trace(go.Scatter(x=x + x[::-1], y=high + low[::-1], fill="toself", opacity=0.2, mode="none",
                                    name=f"{step} interval", hoverinfo="skip", showlegend=False))
        figure.add_trace(go.Scatter(x=x, y=[100 * it.yield_value for it in rows], mode="lines+markers", name=step,
                                    customdata=[[it.phase, it.iteration] for it in rows],
                                    hovertemplate="%{customdata[0]} it %{customdata[1]}<br>yield %{y:.1f} %"
                                                  "<br>%{x} simulations<extra></extra>"))
    figure.update_xaxes(title="new simulations in the run")
    figure.update_yaxes(title="yield, %", range=[0, 100.5])
    return figure


def margin_figure(state: RunState) -> go.Figure:
    """Each spec's scaled margin (> 0: met) per journaled iteration."""
    rows = [(index, it) for index, it in enumerate(state.iterations) if it.margins]
    if not rows:
        return _empty("spec margins per iteration", "no margins yet (they need the spec and stored responses)")
    figure = go.Figure(layout={**_LAYOUT, "title": "spec margins per iteration (scaled; > 0 met)"})
    for name in dict.fromkeys(n for _, it in rows for n in it.margins):
        figure.add_trace(go.Scatter(
            x=[i for i, it in rows if name in it.margins], y=[100 * it.margins[name] for _, it in rows if name in
                                                                it.margins],
            mode="lines+markers", name=name, customdata=[[it.step, it.margin_source] for _, it in rows
                                                          if name in it.margins],
            hovertemplate=f"{name}: %{{y:.2f}} %<br>%{{customdata[0]}}<br>%{{customdata[1]}}<extra></extra>"))
    figure.add_hline(y=0, line_dash="dash", line_color="#c00")
    figure.update_xaxes(title="iteration (whole run)")
    figure.update_yaxes(title="margin, % of the limit")
    return figure


def design_figure(state: RunState) -> go.Figure:
    """The current design as a position within each variable's bounds (0–100 %), the start marked."""
    names = [n for n in state.design if n in state.bounds]
    if not names:
        return _empty("design against its bounds", "no design journaled yet")

    def position(name: str, value: float) -> float:
        low, high = state.bounds[name]
        return 50.0 if high == low else 100 * (value - low) / (high - low)

    figure = go.Figure(layout={**_LAYOUT, "title": "current design within its bounds"})
    figure.add_trace(go.Bar(y=names, x=[position(n, state.design[n]) for n in names], orientation="h",
                            name="current", text=[format_eng(state.design[n]) for n in names],
                            textposition="auto", marker_color="#1f77b4"))
    starts = [n for n in names if n in state.start]
    figure.add_trace(go.Scatter(y=starts, x=[position(n, state.start[n]) for n in starts], mode="markers",
                                name="start", marker=dict(symbol="line-ns-open", size=22, color="#ff7f0e",
                                                          line=dict(width=3))))
    figure.update_xaxes(title="position between min (0 %) and max (100 %)", range=[0, 100])
    return figure


def cost_figure(state: RunState) -> go.Figure:
    """New and stored simulations of every finished step, with its wall time."""
    if not state.costs:
        return _empty("cost per step", "no step has finished yet")
    figure = go.Figure(layout={**_LAYOUT, "title": "cost per finished step", "barmode": "stack"})
    labels = [c.label for c in state.costs]
    figure.add_trace(go.Bar(x=labels, y=[c.simulations for c in state.costs], name="new simulations",
                            text=[f"{c.wall_seconds:.1f} s" for c in state.costs], textposition="outside"))
    figure.add_trace(go.Bar(x=labels, y=[c.cached for c in state.costs], name="served from the store"))
    figure.update_yaxes(title="samples")
    return figure


def _pct(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{100 * value:.1f} %"


def _limit(limits: tuple[float | None, float | None]) -> str:
    low, high = limits
    return " ".join(p for p in (f"≥ {format_eng(low)}" if low is not None else "",
                                f"≤ {format_eng(high)}" if high is not None else "") if p)


def _table(header: list[str], rows: list[list[Any]], table_id: str) -> html.Table:
    cell = {"padding": "2px 10px", "borderBottom": "1px solid #ddd", "textAlign": "left"}
    return html.Table([html.Thead(html.Tr([html.Th(h, style=cell) for h in header])),
                       html.Tbody([html.Tr([html.Td(str(v), style=cell) for v in row]) for row in rows])],
                      id=table_id, style={"borderCollapse": "collapse", "fontSize": "14px"})


def headline(state: RunState) -> list[Any]:
    """Status line and headline figures."""
    latest = state.latest_yield
    step_number = state.planned.index(state.current_step) + 1 if state.current_step in state.planned else None
    parts = [html.Div(state.message, id="status-message", **{"data-status": state.status})]
    facts = []
    if state.current_step:
        facts.append(f"step {step_number or '?'} of {len(state.planned) or '?'}: {state.current_step}")
    facts.append(f"{len(state.iterations)} iterations journaled")
    facts.append(f"{state.evaluations} evaluations stored")
    if latest is not None:
        facts.append(f"yield {_pct(latest.yield_value)} [{_pct(latest.yield_low)[:-2]}, {_pct(latest.yield_high)}] "
                     f"({latest.step}, iteration {latest.iteration})")
    seconds = age(state)
    if seconds is not None and not state.finished:
        facts.append(f"last update {seconds:.0f} s ago")
    parts.append(html.Div(" · ".join(facts), id="facts"))
    parts.append(html.Div(str(len(state.iterations)), id="iteration-count", style={"display": "none"}))
    return parts


def spec_table(state: RunState) -> Any:
    """Per spec at the current design: limits, margin, per-spec yield on the outcomes."""
    latest = next((it for it in reversed(state.iterations) if it.margins), None)
    if not state.limits:
        return html.Div("the spec is not known to the dashboard (pass it with --spec)")
    rows = []
    for name, limits in state.limits.items():
        margin = latest.margins.get(name) if latest else None
        rows.append([name, _limit(limits), "" if margin is None else f"{100 * margin:+.2f} %",
                     _pct(latest.spec_yield.get(name)) if latest else "", latest.margin_source if latest else ""])
    return _table(["spec", "limit", "margin (scaled)", "spec yield", "from"], rows, "spec-table")


def failure_table(state: RunState) -> Any:
    """Failed simulations of the run, grouped by reason (sample-specific numbers as #)."""
    if not state.failures:
        return html.Div("no failed simulation", id="failure-table")
    return _table(["reason", "samples"], [[html_text.unescape(k), v] for k, v in state.failures.items()],
                  "failure-table")


def make_app(folder: str | Path, spec: Spec | None = None, poll_ms: int = POLL_MS) -> Dash:
    """The Dash app following ``folder``; its Flask server is ``app.server`` (``/report`` serves the report)."""
    folder = Path(folder)
    reader = FolderReader(folder, spec)
    app = Dash(__name__, title="optiyield · live run", update_title=None, serve_locally=True)
    app.layout = html.Div(style=_CSS, children=[
        html.H2(id="title", children="optiyield · live run"),
        html.Div(id="headline"),
        html.Div(id="live", children=[
            html.Div(style=_GRID, children=[dcc.Graph(id=name, config=_GRAPH) for name in
                                            ("yield", "margins", "design", "cost")]),
            html.Div(style=_GRID, children=[html.Div([html.H4("specs at the current design"), html.Div(id="specs")]),
                                            html.Div([html.H4("failed simulations"), html.Div(id="failures")])]),
        ]),
        html.Iframe(id="report", style={"display": "none"}),
        dcc.Store(id="signature"),
        dcc.Interval(id="poll", interval=poll_ms),
    ])

    @app.callback(
        Output("title", "children"), Output("headline", "children"), Output("yield", "figure"),
        Output("margins", "figure"), Output("design", "figure"), Output("cost", "figure"), Output("specs", "children"),
        Output("failures", "children"), Output("live", "style"), Output("report", "src"), Output("report", "style"),
        Output("signature", "data"), Input("poll", "n_intervals"), State("signature", "data"))
    def refresh(_: int | None, signature: Any) -> tuple[Any, ...]:
        state = reader.read()
        key = repr(state.signature) + (f"|{int(time.time() // 5)}" if state.status == "running" else "")
        if key == signature:
            raise PreventUpdate
        finished = state.finished
        report_src = f"/report?v={state.signature[-1]}" if finished else ""
        return (f"optiyield · {state.spec_name or folder.name} · {'report' if finished else 'live run'}",
                headline(state), yield_figure(state), margin_figure(state), design_figure(state),
                cost_figure(state), spec_table(state), failure_table(state),
                {"display": "none"} if finished else {}, report_src,
                {"width": "100%", "height": "85vh", "border": "1px solid #ddd"} if finished else {"display": "none"},
                key)

    rendered: dict[float, str] = {}

    @app.server.route("/report")
    def report() -> Any:
        """The run's report.html when it is newer than run_summary.json (the run wrote it), else rendered from
        the folder as ``optiyield report`` renders it (once per run_summary.json)."""
        from optiyield.report.html import REPORT_NAME, ReportError, load_folder, render

        summary, page = folder / "run_summary.json", folder / REPORT_NAME
        if not summary.is_file():
            return "<p>the run has not finished: no run_summary.json yet</p>", 503
        stamp = summary.stat().st_mtime
        if page.is_file() and page.stat().st_mtime >= stamp:
            return page.read_text(encoding="utf-8")
        if stamp not in rendered:
            try:
                rendered[stamp] = render(load_folder(folder, reader.spec)).html
            except ReportError as exc:
                return f"<p>the report cannot be rendered: {html_text.escape(str(exc))}</p>", 503
        return rendered[stamp]

    return app
