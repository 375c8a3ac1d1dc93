"""The report's charts, as plotly figure specs: one function per chart, each taking plain metrics or table rows.

A figure is plotly's JSON schema as plain dicts ({"data": [traces], "layout": {...}}), drawn in the browser by
plotly.js (inlined in the page once). Building the dicts directly, rather than through plotly's Python figure
classes, keeps the report to a few hundredths of a second (the classes validate and deep-copy every property:
about a second per job).

A chart that would be too large to read (or to ship in one page) shows a selection and says which, in
the note returned beside it: the page keeps to a few megabytes whatever the number of classes or shards.
"""

from __future__ import annotations

import os

import numpy as np

CONFUSION_CLASSES = 30  # a heatmap of more classes is unreadable; beyond, the classes most confused
PER_CLASS_CLASSES = 50
SLICE_BARS = 40
MIB = 2 ** 20
COLOURS = {"first attempt": "#4C78A8", "retried": "#F58518", "speculative": "#B279A2"}
COLOURWAY = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#EECA3B", "#9D755D"]
# ColorBrewer's Blues, light to dark (plotly.js's own "Blues" runs dark to light: more rows would look paler).
BLUES = [[i / 8, c] for i, c in enumerate(("#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5",
                                           "#08519c", "#08306b"))]
_GRID = {"gridcolor": "#EBF0F8", "zerolinecolor": "#EBF0F8", "linecolor": "#EBF0F8", "automargin": True}


def _figure(traces: list[dict], title: str, height: int = 380, axes: dict | None = None, **layout) -> dict:
    """A figure with the report's look (plotly's white style): axes given as {"xaxis": {...}, "yaxis2": {...}}."""
    axes = axes or {"xaxis": {}, "yaxis": {}}
    return {"data": traces, "layout": {
        "title": {"text": title}, "height": height, "colorway": COLOURWAY, "paper_bgcolor": "white",
        "plot_bgcolor": "white", "font": {"color": "#2a3f5f"}, "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        **{name: {**_GRID, **axis} for name, axis in axes.items()}, **layout}}


def confusion(matrix: list[list[int]]) -> tuple[dict, str]:
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
    heatmap = {"type": "heatmap", "z": shown.tolist(), "x": labels, "y": labels, "colorscale": BLUES,
               "hoverongaps": False, "hovertemplate": "true %{y}, predicted %{x}: %{z:,}<extra></extra>"}
    axes = {"xaxis": {"type": "category", "title": {"text": "predicted class"}},
            "yaxis": {"type": "category", "autorange": "reversed", "title": {"text": "true class"}}}
    return _figure([heatmap], "Confusion matrix", height=min(900, 250 + 18 * len(classes)), axes=axes), note


def per_class(rows: list[dict]) -> tuple[dict, str]:
    """Precision and recall per class; beyond PER_CLASS_CLASSES classes, those with the lowest recall."""
    note = ""
    if len(rows) > PER_CLASS_CLASSES:
        rows = sorted(sorted(rows, key=lambda r: (r["recall"], r["precision"]))[:PER_CLASS_CLASSES],
                      key=lambda r: r["class"])
        note = f"showing the {PER_CLASS_CLASSES} classes with the lowest recall; metrics.json holds them all."
    labels = [str(r["class"]) for r in rows]
    bars = [{"type": "bar", "name": name, "x": labels, "y": [r[name] for r in rows],
             "customdata": [r["support"] for r in rows],
             "hovertemplate": f"class %{{x}}: {name} %{{y:.4f}} (support %{{customdata:,}})<extra></extra>"}
            for name in ("precision", "recall")]
    axes = {"xaxis": {"type": "category", "title": {"text": "class"}}, "yaxis": {"range": [0, 1.02]}}
    return _figure(bars, "Precision and recall per class", axes=axes, barmode="group"), note


def reliability(calibration: dict) -> dict:
    """The reliability diagram: each confidence bin's accuracy against its mean confidence, and its row count."""
    bins = [b for b in calibration["bins"] if b["count"]]
    middles = [(b["lo"] + b["hi"]) / 2 if b["hi"] > b["lo"] else b["lo"] for b in bins]
    widths = [max(b["hi"] - b["lo"], 0.01) for b in bins]
    top, bottom = {"xaxis": "x", "yaxis": "y"}, {"xaxis": "x", "yaxis": "y2"}  # two rows sharing one x axis
    traces = [
        {"type": "bar", "name": "accuracy", "x": middles, "y": [b["accuracy"] for b in bins], "width": widths,
         "marker": {"color": "#4C78A8"}, "customdata": [[b["lo"], b["hi"], b["confidence"]] for b in bins],
         "hovertemplate": "confidence %{customdata[0]:.3f}-%{customdata[1]:.3f}: accuracy %{y:.4f}, "
                          "mean confidence %{customdata[2]:.4f}<extra></extra>", **top},
        {"type": "scatter", "name": "mean confidence", "x": middles, "y": [b["confidence"] for b in bins],
         "mode": "markers", "marker": {"color": "#E45756", "size": 8}, **top},
        {"type": "scatter", "name": "perfect calibration", "x": [0, 1], "y": [0, 1], "mode": "lines",
         "line": {"color": "grey", "dash": "dash"}, **top},
        {"type": "bar", "name": "rows", "x": middles, "y": [b["count"] for b in bins], "width": widths,
         "marker": {"color": "#9D9DA1"}, "showlegend": False, "hovertemplate": "%{y:,} rows<extra></extra>", **bottom},
    ]
    axes = {"xaxis": {"range": [0, 1.01], "anchor": "y2", "title": {"text": "confidence (top-1 probability)"}},
            "yaxis": {"range": [0, 1.02], "domain": [0.31, 1], "title": {"text": "accuracy"}},
            "yaxis2": {"domain": [0, 0.25], "anchor": "x", "title": {"text": "rows"}}}
    return _figure(traces, f"Reliability diagram (ECE {calibration['ece']:.4f})", height=480, axes=axes)


def interval_bars(title: str, names: list[str], series: dict[str, tuple[list, list | None]], axis: str) -> dict:
    """Bars per name, one series per key of `series` (values, intervals or None), intervals as error bars."""
    bars = []
    for label, (values, intervals) in series.items():
        bar = {"type": "bar", "name": label, "x": names, "y": values,
               "hovertemplate": f"{label}: %{{x}} %{{y:.4f}}<extra></extra>"}
        if intervals and all(i is not None and v is not None for i, v in zip(intervals, values)):
            bar["error_y"] = {"type": "data", "symmetric": False,
                              "array": [hi - v for v, (_, hi) in zip(values, intervals)],
                              "arrayminus": [v - lo for v, (lo, _) in zip(values, intervals)]}
        bars.append(bar)
    axes = {"xaxis": {"type": "category"}, "yaxis": {"title": {"text": axis}}}
    return _figure(bars, title, height=360, axes=axes, barmode="group", showlegend=len(series) > 1)


def workers(rows: list[dict]) -> dict:
    """Rows and busy seconds per worker, side by side."""
    names = [_worker_label(r) for r in rows]
    traces = [{"type": "bar", "x": names, "y": [r["rows"] for r in rows], "marker": {"color": "#4C78A8"},
               "showlegend": False, "hovertemplate": "%{x}: %{y:,} rows<extra></extra>", "xaxis": "x", "yaxis": "y"},
              {"type": "bar", "x": names, "y": [r["busy_s"] for r in rows], "marker": {"color": "#72B7B2"},
               "showlegend": False, "hovertemplate": "%{x}: %{y:.2f} s busy<extra></extra>", "xaxis": "x2",
               "yaxis": "y2"}]
    axes = {"xaxis": {"type": "category", "domain": [0, 0.45]}, "yaxis": {"anchor": "x"},
            "xaxis2": {"type": "category", "domain": [0.55, 1]}, "yaxis2": {"anchor": "x2"}}
    titles = [{"text": text, "x": x, "y": 1.0, "xref": "paper", "yref": "paper", "xanchor": "center",
               "yanchor": "bottom", "showarrow": False, "font": {"size": 16}}
              for text, x in (("rows evaluated", 0.225), ("busy seconds", 0.775))]
    return _figure(traces, "Work per worker", height=340, axes=axes, annotations=titles)


def memory(rows: list[dict]) -> dict:
    """Each worker's memory peaks: process RSS, engine allocated, and what autograd saved for backward (MiB)."""
    names = [_worker_label(r) for r in rows]
    kinds = (("rss_peak_bytes", "peak RSS"), ("engine_allocated_peak_bytes", "engine allocated peak"),
             ("engine_saved_peak_bytes", "saved for backward peak"))
    bars = [{"type": "bar", "name": label, "x": names, "y": [(r.get(column) or 0) / MIB for r in rows],
             "hovertemplate": f"%{{x}}: {label} %{{y:,.1f}} MiB<extra></extra>"} for column, label in kinds]
    axes = {"xaxis": {"type": "category"}, "yaxis": {"title": {"text": "MiB"}}}
    return _figure(bars, "Memory peaks per worker", height=360, axes=axes, barmode="group")


def timeline(shards: list[dict]) -> dict:
    """Each shard as a bar on its worker's line, from its start to its end (a retried or speculative one coloured)."""
    done = [s for s in shards if s.get("started_at") is not None and s.get("finished_at") is not None]
    origin = min(s["started_at"] for s in done)
    bars = []
    for kind, colour in COLOURS.items():
        these = [s for s in done if _attempt_kind(s) == kind]
        if these:
            bars.append({
                "type": "bar", "name": kind, "orientation": "h", "marker": {"color": colour},
                "y": [_worker_label(s) for s in these], "base": [s["started_at"] - origin for s in these],
                "x": [s["finished_at"] - s["started_at"] for s in these],
                "customdata": [[s["shard"], s.get("rows") or 0, s.get("attempts") or 1,
                                os.path.basename(s.get("path") or "")] for s in these],
                "hovertemplate": "shard %{customdata[0]} (%{customdata[3]}): %{customdata[1]:,} rows, attempt "
                                 "%{customdata[2]}, started at %{base:.2f} s, took %{x:.2f} s<extra></extra>"})
    lines = len({_worker_label(s) for s in done})
    axes = {"xaxis": {"title": {"text": "seconds since the first shard started"}},
            "yaxis": {"type": "category", "autorange": "reversed", "title": {"text": "worker"}}}
    return _figure(bars, "Shards over time, per worker", height=min(900, 160 + 28 * lines), axes=axes,
                   barmode="overlay")


def _attempt_kind(shard: dict) -> str:
    if shard.get("speculative"):
        return "speculative"
    return "retried" if (shard.get("attempts") or 1) > 1 else "first attempt"


def _worker_label(row: dict) -> str:
    """A worker's name, with its run when the output was resumed (worker names restart with each run)."""
    run = row.get("run")
    return f"run {run} · {row['worker']}" if run else str(row["worker"])
