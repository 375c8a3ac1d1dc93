"""Study 2: scaling from 1 to 2 actors, the driver's shard-completion rate, and a paper projection to N nodes.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/scaling.py [--repeats 3] [--quick]

1. The pipeline's steady state (extra rows / extra seconds between the tiny job and 4M rows, and
   traced from inside the 4M-row job as in vs_raydata.py) with 1 and 2 actors on this 2-core
   machine: efficiency = rate(2) / (2 x rate(1)).
2. The driver's overhead per shard: a no-op model over 4,096 one-row-group shards of 8 rows against
   the same job on one shard. Extra driver CPU seconds / extra shards is what each completion costs
   the driver; its inverse is how many completions per second one driver can take before it is the
   bottleneck. The observed rate (extra shards / extra wall seconds) is also reported; on 2 cores it
   is bounded by the actors' own per-shard work, not the driver's.
3. The projection: with the measured worker seconds per 65,536-row shard, N nodes of c cores
   complete N*c/shard_s shards per second until the driver's ceiling; rows/s follow.
Prints one JSON line, appends it to bench/results.jsonl, and a PASS/FAIL line per target on stderr.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, make_data  # noqa: E402

NODES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
NOOP = "bench.models:noop"


def jobs(sizes: make_data.Sizes, actors: tuple[int, ...]) -> dict:
    """name -> (data set, rows, command maker(output)): the MLP scaling runs and the no-op driver runs."""
    tiny, large, many = (make_data.dataset(n, sizes) for n in ("tiny", "4m", "many-shards"))
    table = {}
    for n in actors:
        for label, data in (("tiny", tiny), ("large", large)):
            table[f"mlp/{n}/{label}"] = (data, lambda out, data=data, n=n: common.pipeline_command(data, out, n))
    small = ("--shard-rows", str(sizes.many_group_rows))
    for label, data in (("one", tiny), ("many", many)):
        table[f"noop/{label}"] = (data, lambda out, data=data: common.pipeline_command(
            data, out, max(actors), model=NOOP, extra=small))
    return table


def measure(table: dict, repeats: int, out_root: Path) -> dict:
    """Every job `repeats` times, taking turns; per run: wall, driver CPU, and the worker's seconds per shard."""
    runs = {name: [] for name in table}
    names = list(table)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            out = out_root / name.replace("/", "-")
            shutil.rmtree(out, ignore_errors=True)  # this job's previous turn
            done, traced = common.run_traced(table[name][1](out), out_root / "trace" / f"{name.replace('/', '-')}-{r}")
            shards = pq.read_table(out / "shards.parquet", columns=["rows", "seconds"]).to_pydict()
            runs[name].append({"wall_s": done.wall_s, "traced_rows_per_s": traced, "driver_cpu_s": done.driver_cpu_s,
                               "shards": len(shards["rows"]),
                               "shard_seconds_median": statistics.median(shards["seconds"]),
                               "shard_rows_median": statistics.median(shards["rows"])})
            print(f"  {name:16s} {done.wall_s:7.2f} s  driver CPU {done.driver_cpu_s:6.2f} s", file=sys.stderr)
    return runs


def best(runs: list[dict], key: str) -> float:
    return min(r[key] for r in runs)


def summarise(table: dict, runs: dict, actors: tuple[int, ...]) -> dict:
    rows = {name: make_data.rows(data) for name, (data, _) in table.items()}
    steady = {}
    for n in actors:
        tiny, large = f"mlp/{n}/tiny", f"mlp/{n}/large"
        steady[n] = {"fixed_s": best(runs[tiny], "wall_s"), "large_s": best(runs[large], "wall_s"),
                     "rows_per_s": common.steady_rate(rows[tiny], best(runs[tiny], "wall_s"),
                                                      rows[large], best(runs[large], "wall_s")),
                     "traced_rows_per_s": max(r["traced_rows_per_s"] or 0 for r in runs[large])}
    one, many = runs["noop/one"], runs["noop/many"]
    extra_shards = statistics.median(r["shards"] for r in many) - statistics.median(r["shards"] for r in one)
    extra_cpu = best(many, "driver_cpu_s") - best(one, "driver_cpu_s")
    extra_wall = best(many, "wall_s") - best(one, "wall_s")
    driver = {"actors": max(actors), "extra_shards": extra_shards, "extra_driver_cpu_s": extra_cpu,
              "extra_wall_s": extra_wall, "driver_cpu_ms_per_shard": 1000 * extra_cpu / extra_shards,
              "capacity_shards_per_s": extra_shards / extra_cpu if extra_cpu > 0 else float("inf"),
              "observed_shards_per_s": extra_shards / extra_wall if extra_wall > 0 else float("inf"),
              "worker_seconds_per_noop_shard": statistics.median(r["shard_seconds_median"] for r in many)}
    large_runs = runs[f"mlp/{min(actors)}/large"]
    shard_s = statistics.median(r["shard_seconds_median"] for r in large_runs)
    shard_rows = statistics.median(r["shard_rows_median"] for r in large_runs)
    return {"steady": steady, "driver": driver,
            "projection": projection(shard_s, shard_rows, driver["capacity_shards_per_s"]), "runs": runs}


def projection(shard_s: float, shard_rows: float, capacity: float, cores: int = 2) -> dict:
    """Rows/s of N nodes of `cores` cores: every core busy until the driver's completions per second run out."""
    knee = capacity * shard_s / cores
    table = []
    for nodes in NODES:
        demand = nodes * cores / shard_s
        table.append({"nodes": nodes, "shards_per_s": min(demand, capacity), "rows_per_s": min(demand, capacity)
                      * shard_rows, "driver_bound": demand > capacity})
    return {"worker_seconds_per_shard": shard_s, "rows_per_shard": shard_rows, "cores_per_node": cores,
            "driver_capacity_shards_per_s": capacity, "nodes_before_driver_bound": knee, "table": table}


def targets(summary: dict, actors: tuple[int, ...]) -> dict:
    found = {"driver_shard_completions_per_s": common.verdict(summary["driver"]["capacity_shards_per_s"], ">=", 500)}
    if 1 in actors and 2 in actors:
        steady = summary["steady"]
        efficiency = steady[2]["rows_per_s"] / (2 * steady[1]["rows_per_s"])
        found["scaling_efficiency_1_to_2_actors"] = common.verdict(efficiency, ">=", 0.8)
        traced = steady[2]["traced_rows_per_s"] / (2 * steady[1]["traced_rows_per_s"])
        found["scaling_efficiency_1_to_2_actors_traced"] = common.verdict(traced, ">=", 0.8)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="turns per job; the best is kept (default 3)")
    parser.add_argument("--quick", action="store_true", help="small sets, one turn: a smoke run")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/results.jsonl")
    args = parser.parse_args(argv)
    common.warn_if_slow_blas(args.quick)
    started = common.now()
    sizes = make_data.QUICK if args.quick else make_data.FULL
    actors = (1, 2)
    repeats = 1 if args.quick else args.repeats
    table = jobs(sizes, actors)
    out_root = make_data.outputs("scaling", sizes)
    try:
        summary = summarise(table, measure(table, repeats, out_root), actors)
    finally:
        shutil.rmtree(out_root, ignore_errors=True)
    result = {"repeats": repeats, "pipeline_cli": common.cli_available(), **summary}
    common.emit("scaling", started, args.quick, result, targets(summary, actors), not args.no_record)


if __name__ == "__main__":
    main()
