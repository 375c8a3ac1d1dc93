"""report.html's page: the views of a run's metrics and tables, laid out by a Jinja2 template with plotly charts.

Each section is shown only when its data exists: every model's headline metrics with their intervals,
its confusion matrix, per-class results and reliability diagram; the models' comparison; the slices;
and the run itself (throughput, work and memory per worker, the shards' timeline).
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timezone

import jinja2
import pyarrow as pa
from plotly.offline import get_plotlyjs

from cluster import charts
from cluster.report import RunFiles

HEADLINE = (("accuracy", "accuracy"), ("top_k_accuracy", "top-{top_k} accuracy"), ("loss", "loss"),
            ("macro_f1", "macro-F1"), ("ece", "expected calibration error"), ("mse", "mean squared error"),
            ("mae", "mean absolute error"), ("r2", "R²"))
_chart_ids = itertools.count()
SLICE_ROWS = 200  # table rows per slicing; the largest slices first beyond that
TABLE_ROWS = 200  # rows shown of slices.parquet when metrics.json has no slices


def render(files: RunFiles) -> str:
    """The page, as text."""
    environment = jinja2.Environment(loader=jinja2.PackageLoader("cluster", "templates"), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(number=_number, mib=lambda b: "" if b is None else f"{b / charts.MIB:,.1f} MiB",
                               p_value=lambda p: "–" if p is None else f"{p:.3g}")
    metrics, config = files.metrics, files.job.get("config", {})
    models = metrics.get("models") or {None: metrics}
    slices = _slices_view(models)
    return environment.get_template("report.html.j2").render(
        title=f"{_models_named(config)} on {', '.join(config.get('data') or ['its data'])}",
        location=files.location, job=files.job, config=config, started=_started(files.job),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        models=[_model_view(name, m) for name, m in models.items()], model_names=[name or "" for name in models],
        model_accuracy=_model_accuracy(models) if len(models) > 1 else None,
        comparisons=metrics.get("comparisons") or [], slices=slices,
        slices_table=_table_view(files.slices) if files.slices is not None and not slices else None,
        run=_run_view(files), plotly_js=get_plotlyjs())


def _models_named(config: dict) -> str:
    """The model, or the models of a several-model job (job.json lists them, with their names)."""
    models, names = config.get("model", "model"), config.get("name")
    if isinstance(models, list):
        return ", ".join(names if isinstance(names, list) and len(names) == len(models) else map(str, models))
    return str(models)


# No "Share chart" button: it uploads the chart to Plotly's cloud, and this page is meant to stay on the machine.
PLOT_CONFIG = {"displaylogo": False, "responsive": True, "showSendToCloud": False,
               "modeBarButtonsToRemove": ["sendChartToCloud"]}


def _html(figure: dict) -> str:
    """A chart's div and the script that draws it with plotly.js (inlined once in the page)."""
    div = f"chart-{next(_chart_ids)}"
    spec = json.dumps({**figure, "config": PLOT_CONFIG}, default=_plain)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):  # data never closes the <script>
        spec = spec.replace(char, escaped)
    return (f'<div id="{div}" class="plotly-graph-div"></div>\n'
            f'<script>(function (f) {{ Plotly.newPlot("{div}", f.data, f.layout, f.config); }})({spec});</script>')


def _plain(value):
    """numpy numbers and arrays as JSON."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _started(job: dict) -> str:
    """When the job started: its first run's start (job.json records one per run when resumed)."""
    runs = job.get("runs") or [{}]
    return job.get("started") or runs[0].get("started") or ""


def _model_view(name: str | None, metrics: dict) -> dict:
    """One model's headline metrics with their intervals, and its charts."""
    ci = metrics.get("ci") or {}
    values = {**metrics, "ece": (metrics.get("calibration") or {}).get("ece")}
    headline = [{"name": label.format(top_k=metrics.get("top_k") or "k"), "value": values[key], "interval": ci.get(key)}
                for key, label in HEADLINE if values.get(key) is not None]
    figures = []
    if metrics.get("confusion_matrix"):
        figures.append(charts.confusion(metrics["confusion_matrix"]))
    if metrics.get("per_class"):
        figures.append(charts.per_class(metrics["per_class"]))
    if metrics.get("calibration"):
        figures.append((charts.reliability(metrics["calibration"]), ""))
    return {"name": name, "rows": metrics.get("rows"), "level": ci.get("level"), "headline": headline,
            "charts": [{"html": _html(figure), "note": note} for figure, note in figures]}


def _model_accuracy(models: dict[str, dict]) -> str | None:
    """Each model's accuracy (and top-k accuracy) with its interval, side by side; None without accuracies."""
    names = list(models)
    series = {}
    for key, label in (("accuracy", "accuracy"), ("top_k_accuracy", "top-k accuracy")):
        if all(models[n].get(key) is not None for n in names):
            series[label] = ([models[n][key] for n in names], [(models[n].get("ci") or {}).get(key) for n in names])
    return _html(charts.interval_bars("Accuracy per model", names, series, "accuracy")) if series else None


def _slices_view(models: dict[str, dict]) -> list[dict]:
    """Per slicing (a column, or columns joined by commas): each slice's row for every model, and a chart.

    Slices are of the data's rows, the same for every model: the table has one row per slice (the
    largest SLICE_ROWS) and, per model, its accuracy, interval and loss.
    """
    slicings = dict.fromkeys(key for m in models.values() for key in (m.get("slices") or {}))
    views = []
    for column in slicings:
        by_model = {name: {_slice_label(r["value"]): r for r in (m.get("slices") or {}).get(column, [])}
                    for name, m in models.items()}
        sizes = {label: r["rows"] for rows in by_model.values() for label, r in rows.items()}
        labels = sorted(sizes, key=lambda label: -sizes[label])
        shown = labels[:SLICE_ROWS]
        rows = [{"label": label, "rows": sizes[label], "models": [by_model[name].get(label) or {} for name in models],
                 "small": any((by_model[name].get(label) or {}).get("small") for name in models)} for label in shown]
        charted = shown[:charts.SLICE_BARS]
        series = {name or "accuracy": ([by_model[name].get(label, {}).get("accuracy") for label in charted],
                                       [by_model[name].get(label, {}).get("accuracy_ci") for label in charted])
                  for name in models}
        notes = [f"showing the {SLICE_ROWS} largest of {len(labels):,} slices"] if len(labels) > SLICE_ROWS else []
        if len(labels) > charts.SLICE_BARS:
            notes.append(f"the chart shows the {charts.SLICE_BARS} largest")
        views.append({"column": column, "rows": rows, "note": "; ".join(notes),
                      "chart": _html(charts.interval_bars(f"Accuracy by {column}", charted, series, "accuracy"))})
    return views


def _slice_label(value) -> str:
    return " / ".join(map(str, value)) if isinstance(value, list) else str(value)


def _table_view(table: pa.Table) -> dict:
    return {"columns": table.column_names, "rows": table.slice(0, TABLE_ROWS).to_pylist(), "total": table.num_rows}


def _run_view(files: RunFiles) -> dict:
    """The run itself: throughput, work and memory per worker, and the shards' timeline when its columns exist."""
    metrics, shards, workers = files.metrics, files.shards, files.workers
    timed = any(s.get("started_at") is not None and s.get("finished_at") is not None for s in shards)
    summary = {"rows": metrics.get("rows"), "wall_s": metrics.get("wall_s"), "rows_per_s": metrics.get("rows_per_s"),
               "workers": len(workers), "shards": len(shards),
               "retries": sum(max((s.get("attempts") or 1) - 1, 0) for s in shards),
               "speculative": sum(1 for s in shards if s.get("speculative")),
               "skipped_shards": metrics.get("skipped_shards"), "bad_rows": (metrics.get("bad_rows") or {}).get("rows")}
    return {"summary": summary, "workers": workers, "runs": metrics.get("runs") or [],
            "charts": [_html(charts.workers(workers)), _html(charts.memory(workers))] if workers else [],
            "timeline": _html(charts.timeline(shards)) if timed else None}


def _number(value, digits: int = 4) -> str:
    """A metric as the page prints it: integers with separators, floats to `digits` decimals."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.{digits}f}"
