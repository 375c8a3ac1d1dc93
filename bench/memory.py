"""Study 3: memory per worker under each grad mode, and streaming (peak RSS at 1M vs 10M rows).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/memory.py [--quick]

1. Grad modes: the MLP (64-256-10) and the zoo ConvNet (input 1x8x8) at batch 256 and 4096, each under
   `enabled`, `no_grad` and `inference_mode`: one job of one worker each (131,072 rows, two shards),
   all on one local Ray started here. Per worker: peak RSS, the engine's allocated-bytes peak and
   saved-for-backward peak, and Arrow's pool peak, as the worker reports them.
2. Streaming: the jobs.evaluate command with 2 workers over 1M and 10M rows (the same files and row
   groups, ten times as many): the driver's peak RSS (its VmHWM, sampled) and each worker's. Target:
   10x the rows, at most 10% more peak memory. The same 1M rows also run with 1 worker and through the
   plain loop (issue 4's one-run comparison; end to end, so the fixed cost is in it).
Prints one JSON line, appends it to bench/results.jsonl, and a PASS/FAIL line per target on stderr.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, make_data  # noqa: E402

MODELS = {"mlp": ("bench.models:mlp_64_256_10", None), "convnet": ("convnet", (1, 8, 8))}
MODES = ("enabled", "no_grad", "inference_mode")
BATCHES = (256, 4096)
WORKER_FIGURES = ("rss_peak_bytes", "engine_allocated_peak_bytes", "engine_saved_peak_bytes", "arrow_peak_bytes")


def grad_modes(data: Path, rows: int, shard_rows: int, out_root: Path) -> list[dict]:
    """One single-worker job per (model, batch, mode) on one local Ray; each worker's memory figures."""
    import ray

    import cluster
    found = []
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        for model, (factory, shape) in MODELS.items():
            for batch in BATCHES:
                for mode in MODES:
                    out = out_root / f"{model}-{batch}-{mode}"
                    result = cluster.evaluate(str(data), factory, str(out), label="label", input_shape=shape,
                                              batch_size=batch, workers=1, grad_mode=mode, limit=rows,
                                              shard_rows=shard_rows, overwrite=True)
                    worker = result.workers.to_pylist()[0]
                    found.append({"model": model, "batch": batch, "grad_mode": mode, "rows": result.metrics["rows"],
                                  "busy_s": worker["busy_s"], **{k: worker[k] for k in WORKER_FIGURES}})
                    print(f"  {model:8s} b{batch:<5d} {mode:15s} RSS {worker['rss_peak_bytes'] >> 20:5d} MiB  "
                          f"saved {worker['engine_saved_peak_bytes'] >> 10:7d} KiB", file=sys.stderr)
    finally:
        ray.shutdown()
    return found


def streaming(sizes: make_data.Sizes, out_root: Path) -> dict:
    """The jobs.evaluate command with 2 workers on 1M and 10M rows (and 1 worker and the plain loop on 1M)."""
    runs = {}
    for name, actors, set_name in (("pipeline_2/1m", 2, "1m"), ("pipeline_2/10m", 2, "10m"),
                                   ("pipeline_1/1m", 1, "1m"), ("plain/1m", 1, "1m")):
        data = make_data.dataset(set_name, sizes)
        out = out_root / name.replace("/", "-")
        command = (common.python("bench/contenders.py", "plain", "--data", str(data), "--output", str(out))
                   if name.startswith("plain") else common.pipeline_command(data, out, actors))
        done = common.run(command)
        rows = make_data.rows(data)
        entry = {"rows": rows, "actors": actors, "wall_s": done.wall_s, "rows_per_s": rows / done.wall_s,
                 "driver_peak_rss": done.driver_peak_rss, "tree_peak_rss": done.tree_peak_rss}
        if not name.startswith("plain"):
            workers = pq.read_table(out / "workers.parquet").to_pylist()
            entry["worker_peak_rss"] = [w["rss_peak_bytes"] for w in workers]
            entry["worker_shards"] = [w["shards"] for w in workers]
        runs[name] = entry
        print(f"  {name:16s} {done.wall_s:7.2f} s  driver peak {done.driver_peak_rss >> 20} MiB", file=sys.stderr)
    small, big = runs["pipeline_2/1m"], runs["pipeline_2/10m"]
    growth = {"driver": big["driver_peak_rss"] / small["driver_peak_rss"],
              "worker": max(big["worker_peak_rss"]) / max(small["worker_peak_rss"])}
    return {"runs": runs, "growth_10x_rows": growth}


def targets(grid: list[dict], stream: dict) -> dict:
    saved = {(g["model"], g["batch"], g["grad_mode"]): g["engine_saved_peak_bytes"] for g in grid}
    found = {
        "no_grad_saves_nothing": common.verdict(
            max(v for k, v in saved.items() if k[2] != "enabled"), "==", 0),
        "enabled_saves_something": common.verdict(
            min(v for k, v in saved.items() if k[2] == "enabled") > 0, "==", True),
    }
    for who, ratio in stream["growth_10x_rows"].items():
        found[f"{who}_peak_rss_growth_1m_to_10m_rows"] = common.verdict(ratio, "<=", 1.10)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sets: a smoke run")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/results.jsonl")
    args = parser.parse_args(argv)
    common.warn_if_slow_blas(args.quick)
    started = common.now()
    sizes = make_data.QUICK if args.quick else make_data.FULL
    data = make_data.dataset("1m", sizes)
    rows = 2 * sizes.row_group_rows  # two shards per grid job: a peak that does not grow shows in the second
    out_root = make_data.outputs("memory", sizes)
    try:
        grid = grad_modes(data, rows, sizes.row_group_rows, out_root)
        stream = streaming(sizes, out_root)
    finally:
        shutil.rmtree(out_root, ignore_errors=True)
    result = {"grad_modes": {"rows": rows, "shard_rows": sizes.row_group_rows, "workers": 1, "table": grid},
              "streaming": stream}
    common.emit("memory", started, args.quick, result, targets(grid, stream), not args.no_record)


if __name__ == "__main__":
    main()
