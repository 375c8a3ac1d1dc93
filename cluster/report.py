"""report.html: one self-contained page showing a run's outputs, built from the files in its output location.

The page holds its own copy of plotly.js and every chart's data, so it opens anywhere without a
network. It reads metrics.json, job.json, workers.parquet, shards.parquet (and slices.parquet when
there), so it can be rebuilt from any finished output (`python -m jobs.report OUTPUT`). The page
itself is laid out by cluster.page, its charts drawn by cluster.charts.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from cluster import storage
from cluster.outputs import Output

REPORT = "report.html"


@dataclass
class RunFiles:
    """What the report is made from: an output's metrics, job record and tables."""

    location: str
    metrics: dict
    job: dict
    workers: list[dict]
    shards: list[dict]
    slices: pa.Table | None = None


def write_report(output_location: str) -> str:
    """Build report.html from the output at `output_location` (finished, or being finished) and write it there."""
    from cluster.page import render  # plotly and Jinja2 load only to draw a page: never in a worker

    out = Output(output_location)
    page = render(read_output(out))
    with storage.atomic_output(out.path(REPORT)) as stream:
        stream.write(page.encode())
    return out.path(REPORT)


def read_output(out: Output) -> RunFiles:
    """The files a report shows, read from the output location (slices.parquet only when present)."""
    slices = out.read_table("slices.parquet") if storage.exists(out.path("slices.parquet")) else None
    return RunFiles(storage.redact(out.location), out.read_json("metrics.json"), out.read_json("job.json"),
                    out.read_table("workers.parquet").to_pylist(), out.read_table("shards.parquet").to_pylist(),
                    slices)
