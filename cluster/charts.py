"""The report's charts, as plotly figures: one function per chart, each taking plain metrics or table rows.

A chart that would be too large to read (or to ship in one page) shows a selection and says which, in
the note returned beside it: the page keeps to a few megabytes whatever the number of classes or shards.
"""

from __future__ import annotations

import os

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

CONFUSION_CLASSES = 30  # a heatmap of more classes is unreadable; beyond, the classes most confused
PER_CLASS_CLASSES = 50
SLICE_BARS = 40
MIB = 2 ** 20
COLOURS = {"first attempt": "#4C78A8", "retried": "#F58518", "speculative": "#B279A2"}
COLOURWAY = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#EECA3B", "#9D755D"]


def _layout(fig: go.Figure, title: str, height: int = 380, **layout) -> go.Figure:
    fig.update_layout(title=title, height=height, template="plotly_white", colorway=COLOURWAY,
                      margin=dict(l=60, r=20, t=50, b=50), **layout)
    return fig


def confusion(matrix: list[list[int]]) -> tuple[go.Figure, str]:
    """The confusion matrix as a heatmap (rows: true class); beyond CONFUSION_CLASSES, the most confused classes."""
    counts = np.asarray(matrix, np.int64)
    classes, note = np.arange(len(counts)), ""
    if len(counts) > CONFUSION_CLASSES:
        off_diagonal = counts - np.diag(np.diag(counts))
        confused = off_diagonal.sum(axis=0) + off_diagonal.sum(axis=1)
        classes = np.sort(np.argsort(-confused, kind="stable")[:CONFUSION_CLASSES])
        note = (f"{len(counts):,} classes: showing the {CONFUSION_CLASSES} with the most misclassified rows "
                "(as true class or as prediction); metrics.json holds the whole matrix.")
    shown = counts[np.ix_(classes, classes)]
    labels = [str(c) for c in classes]
    fig = go.Figure(go.Heatmap(z=shown, x=labels, y=labels, colorscale="Blues", hoverongaps=False,
                               hovertemplate="true %{y}, predicted %{x}: %{z:,}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category", title="true class")
    fig.update_xaxes(type="category", title="predicted class")
    return _layout(fig, "Confusion matrix", height=min(900, 250 + 18 * len(classes))), note


def per_class(rows: list[dict]) -> tuple[go.Figure, str]:
    """Precision and recall per class; beyond PER_CLASS_CLASSES classes, those with the lowest recall."""
    note = ""
    if len(rows) > PER_CLASS_CLASSES:
        rows = sorted(sorted(rows, key=lambda r: (r["recall"], r["precision"]))[:PER_CLASS_CLASSES],
                      key=lambda r: r["class"])
        note = f"showing the {PER_CLASS_CLASSES} classes with the lowest recall; metrics.json holds them all."
    labels = [str(r["class"]) for r in rows]
    fig = go.Figure([go.Bar(name=name, x=labels, y=[r[name] for r in rows],
                            customdata=[r["support"] for r in rows],
                            hovertemplate=f"class %{{x}}: {name} %{{y:.4f}} (support %{{customdata:,}})<extra></extra>")
                     for name in ("precision", "recall")])
    fig.update_xaxes(type="category", title="class")
    fig.update_yaxes(range=[0, 1.02])
    return _layout(fig, "Precision and recall per class", barmode="group"), note


def reliability(calibration: dict) -> go.Figure:
    """The reliability diagram: each confidence bin's accuracy against its mean confidence, and its row count."""
    bins = [b for b in calibration["bins"] if b["count"]]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.06)
    middles = [(b["lo"] + b["hi"]) / 2 if b["hi"] > b["lo"] else b["lo"] for b in bins]
    widths = [max(b["hi"] - b["lo"], 0.01) for b in bins]
    fig.add_trace(go.Bar(name="accuracy", x=middles, y=[b["accuracy"] for b in bins], width=widths,
                         marker_color="#4C78A8", customdata=[[b["lo"], b["hi"], b["confidence"]] for b in bins],
                         hovertemplate="confidence %{customdata[0]:.3f}-%{customdata[1]:.3f}: accuracy %{y:.4f}, "
                                       "mean confidence %{customdata[2]:.4f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(name="mean confidence", x=middles, y=[b["confidence"] for b in bins], mode="markers",
                             marker=dict(color="#E45756", size=8)), row=1, col=1)
    fig.add_trace(go.Scatter(name="perfect calibration", x=[0, 1], y=[0, 1], mode="lines",
                             line=dict(color="grey", dash="dash")), row=1, col=1)
    fig.add_trace(go.Bar(name="rows", x=middles, y=[b["count"] for b in bins], width=widths, marker_color="#9D9DA1",
                         showlegend=False, hovertemplate="%{y:,} rows<extra></extra>"), row=2, col=1)
    fig.update_xaxes(range=[0, 1.01], title="confidence (top-1 probability)", row=2, col=1)
    fig.update_yaxes(range=[0, 1.02], title="accuracy", row=1, col=1)
    fig.update_yaxes(title="rows", row=2, col=1)
    return _layout(fig, f"Reliability diagram (ECE {calibration['ece']:.4f})", height=480)


def interval_bars(title: str, names: list[str], series: dict[str, tuple[list, list | None]], axis: str) -> go.Figure:
    """Bars per name, one series per key of `series` (values, intervals or None), intervals as error bars."""
    bars = []
    for label, (values, intervals) in series.items():
        error = None
        if intervals and all(i is not None and v is not None for i, v in zip(intervals, values)):
            error = dict(type="data", symmetric=False, array=[hi - v for v, (_, hi) in zip(values, intervals)],
                         arrayminus=[v - lo for v, (lo, _) in zip(values, intervals)])
        bars.append(go.Bar(name=label, x=names, y=values, error_y=error,
                           hovertemplate=f"{label}: %{{x}} %{{y:.4f}}<extra></extra>"))
    fig = go.Figure(bars)
    fig.update_xaxes(type="category")
    fig.update_yaxes(title=axis)
    return _layout(fig, title, height=360, barmode="group", showlegend=len(series) > 1)


def workers(rows: list[dict]) -> go.Figure:
    """Rows and busy seconds per worker, side by side."""
    names = [_worker_label(r) for r in rows]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("rows evaluated", "busy seconds"))
    fig.add_trace(go.Bar(x=names, y=[r["rows"] for r in rows], marker_color="#4C78A8", showlegend=False,
                         hovertemplate="%{x}: %{y:,} rows<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=[r["busy_s"] for r in rows], marker_color="#72B7B2", showlegend=False,
                         hovertemplate="%{x}: %{y:.2f} s busy<extra></extra>"), row=1, col=2)
    fig.update_xaxes(type="category")
    return _layout(fig, "Work per worker", height=340)


def memory(rows: list[dict]) -> go.Figure:
    """Each worker's memory peaks: process RSS, engine allocated, and what autograd saved for backward (MiB)."""
    names = [_worker_label(r) for r in rows]
    kinds = (("rss_peak_bytes", "peak RSS"), ("engine_allocated_peak_bytes", "engine allocated peak"),
             ("engine_saved_peak_bytes", "saved for backward peak"))
    fig = go.Figure([go.Bar(name=label, x=names, y=[(r.get(column) or 0) / MIB for r in rows],
                            hovertemplate=f"%{{x}}: {label} %{{y:,.1f}} MiB<extra></extra>")
                     for column, label in kinds])
    fig.update_xaxes(type="category")
    fig.update_yaxes(title="MiB")
    return _layout(fig, "Memory peaks per worker", height=360, barmode="group")


def timeline(shards: list[dict]) -> go.Figure:
    """Each shard as a bar on its worker's line, from its start to its end (a retried or speculative one coloured)."""
    done = [s for s in shards if s.get("started_at") is not None and s.get("finished_at") is not None]
    origin = min(s["started_at"] for s in done)
    fig = go.Figure()
    for kind, colour in COLOURS.items():
        these = [s for s in done if _attempt_kind(s) == kind]
        if not these:
            continue
        fig.add_trace(go.Bar(
            name=kind, orientation="h", marker_color=colour, y=[_worker_label(s) for s in these],
            base=[s["started_at"] - origin for s in these], x=[s["finished_at"] - s["started_at"] for s in these],
            customdata=[[s["shard"], s.get("rows") or 0, s.get("attempts") or 1, os.path.basename(s.get("path") or "")]
                        for s in these],
            hovertemplate="shard %{customdata[0]} (%{customdata[3]}): %{customdata[1]:,} rows, "
                          "attempt %{customdata[2]}, started at %{base:.2f} s, took %{x:.2f} s<extra></extra>"))
    lines = len({_worker_label(s) for s in done})
    fig.update_yaxes(type="category", autorange="reversed", title="worker")
    fig.update_xaxes(title="seconds since the first shard started")
    return _layout(fig, "Shards over time, per worker", height=min(900, 160 + 28 * lines), barmode="overlay")


def _attempt_kind(shard: dict) -> str:
    if shard.get("speculative"):
        return "speculative"
    return "retried" if (shard.get("attempts") or 1) > 1 else "first attempt"


def _worker_label(row: dict) -> str:
    """A worker's name, with its run when the output was resumed (worker names restart with each run)."""
    run = row.get("run")
    return f"run {run} · {row['worker']}" if run else str(row["worker"])
