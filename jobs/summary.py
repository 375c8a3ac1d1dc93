"""The human summary printed at the end of a job: metrics, a per-worker table, where the outputs are."""

from __future__ import annotations

from cluster.storage import redact


def human_bytes(n) -> str:
    """Bytes as a person reads them (KiB, MiB, GiB)."""
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def table_lines(header: list[str], rows: list[list[str]]) -> list[str]:
    """Aligned columns: the first left-aligned, the numbers right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  " + "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return [line(header), *map(line, rows)]


HEADLINE = (("accuracy", "accuracy"), ("top_k_accuracy", "top-{k} accuracy"), ("loss", "loss"),
            ("macro_f1", "macro-F1"), ("mse", "mse"), ("mae", "mae"), ("r2", "r2"))


def headline(metrics: dict) -> str:
    """One model's headline metrics on one line, each with its interval when there is one."""
    ci = metrics.get("ci") or {}
    parts = []
    for key, label in HEADLINE:
        if key in metrics:
            interval = ci.get(key)
            shown = f" [{interval[0]:.4f}, {interval[1]:.4f}]" if interval else ""
            parts.append(f"{label.format(k=metrics.get('top_k'))} {metrics[key]:.4f}{shown}")
    if metrics.get("calibration"):
        parts.append(f"ECE {metrics['calibration']['ece']:.4f}")
    if not parts:
        return "(no labels: no metrics, predictions only)"
    return "   ".join(parts) + (f"   ({ci['level']:.0%} intervals)" if ci else "")


def comparison_line(c: dict) -> str:
    """One pair of models: B's accuracy minus A's (its interval), McNemar's p, the rows only one got right."""
    interval = c.get("accuracy_diff_ci")
    shown = f" [{interval[0]:+.4f}, {interval[1]:+.4f}]" if interval else ""
    return (f"{c['b']} - {c['a']}: accuracy {c['accuracy_diff']:+.4f}{shown}   McNemar p {c['mcnemar_p']:.3g}   "
            f"only {c['a']} right {c['a_only_correct']:,}, only {c['b']} right {c['b_only_correct']:,}")


def slices_line(metrics: dict) -> str | None:
    """How many slices each slicing has, and how many are small."""
    slicings = next((m.get("slices") for m in [metrics, *(metrics.get("models") or {}).values()] if m.get("slices")),
                    None)
    if not slicings:
        return None
    parts = [f"by {name}: {len(entries):,} ({sum(e['small'] for e in entries):,} small)"
             for name, entries in slicings.items()]
    return "  slices " + "; ".join(parts) + " (metrics.json, slices.parquet)"


def metrics_lines(metrics: dict) -> list[str]:
    """The headline metrics (one line per model, and one per comparison), slices, and the rows set aside as bad."""
    models = metrics.get("models")
    if models:
        width = max(map(len, models))
        lines = [f"  {name.ljust(width)}  {headline(m)}" for name, m in models.items()]
        lines += [f"  {comparison_line(c)}" for c in metrics.get("comparisons", [])]
    else:
        lines = [f"  {headline(metrics)}"]
    if (line := slices_line(metrics)) is not None:
        lines.append(line)
    bad = metrics.get("bad_rows", {})
    if bad.get("rows"):
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in bad["by_reason"].items())
        lines.append(f"  {bad['rows']:,} bad row(s) skipped ({reasons}): see bad_rows.parquet")
    return lines


def render(result) -> str:
    """The whole summary for an EvalResult."""
    m = result.metrics
    workers = result.workers.to_pylist()
    runs = m.get("runs", [])
    this_run = [w for w in workers if w.get("run", 0) == (runs[-1]["run"] if runs else 0)]
    grad_mode = workers[0]["grad_mode"] if workers else "-"
    if result.already_finished:
        head = f"Already finished: {m['rows']:,} rows evaluated; nothing to do."
    else:
        earlier = m["rows"] - runs[-1]["rows"] if runs else 0
        done = f"{runs[-1]['rows']:,} rows in this run ({earlier:,} in earlier runs)" if earlier else \
            f"{m['rows']:,} rows"
        head = (f"Evaluated {done} in {m['wall_s']:.1f} s ({m['rows_per_s']:,.0f} rows/s) with "
                f"{sum(1 for w in this_run if w['shards'])} worker(s), grad mode {grad_mode}.")
    lines = [head, *metrics_lines(m)]
    if this_run:
        stages = {stage: sum(w[f"{stage}_s"] or 0.0 for w in this_run) for stage in ("read", "compute", "write")}
        lines.append(f"  time in workers: read and decode {stages['read']:.2f} s (ahead, beside the model), "
                     f"compute {stages['compute']:.2f} s, write {stages['write']:.2f} s")
    if workers:
        lines.append("Workers:")
        rows = [[w["worker"] if len(runs) < 2 else f"{w['worker']} (run {w['run']})", (w["node"] or "-")[:8],
                 f"{w['rows']:,}", f"{w['rows_per_s']:,.0f}", human_bytes(w["rss_peak_bytes"]),
                 human_bytes(w["engine_allocated_peak_bytes"]), human_bytes(w["engine_saved_peak_bytes"]),
                 str(w["shards"]), str(w["failures"])] for w in workers]
        lines += table_lines(["worker", "node", "rows", "rows/s", "peak RSS", "engine peak", "saved for bwd",
                              "shards", "retries"], rows)
    sliced = "slices.parquet, " if slices_line(m) else ""
    lines.append(f"Outputs in {redact(result.output)}: predictions/ (Parquet), workers.parquet, shards.parquet, "
                 f"{sliced}metrics.json, job.json, report.html, _SUCCESS")
    return "\n".join(lines)
