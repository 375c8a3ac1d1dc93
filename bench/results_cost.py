"""What confidence intervals and a second model cost a worker in the steady state, side by side in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/results_cost.py [--quick] [--rounds N] [--no-record]

The steady state of a job is its workers' loop: ShardEvaluator.evaluate over shard after shard (what each
Ray actor runs; the actor only calls it). This runs that loop in one process, as a worker does (one BLAS
thread, freed memory kept), for two models: the benchmarks' MLP 64-256-10 (about 1M rows/s) and the zoo
ConvNet on the same 64 features as 1x8x8 digits (about 50k rows/s); each with the read-ahead on
(--prefetch 2: reading, decoding and the bootstrap's row weights on a background thread, beside the
model, as in a worker with a core to spare) and off (--prefetch 0: everything in turn on one core, as
when every core runs a worker). Three variants of the same job:

  baseline      one model, --ci 0
  intervals     one model, --ci 0.95 --bootstrap 200 (the defaults): Wilson, bootstrap sums, calibration
  second_model  the same model twice (--model M --model M), --ci 0

The variants take turns on each shard of bench/data/1m (65,536-row shards, batch 4096; 8 shards for the
MLP, 1 for the ConvNet), who goes first rotating; each keeps its best turn per shard (the machine's other
load only slows a turn down), summed over the shards. From the shard summaries: read_s (reading ahead,
and the bootstrap's weights), compute_s (the models, predictions, metrics, sums), write_s.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, make_data  # noqa: E402
from cluster import planner  # noqa: E402
from cluster.config import JobConfig  # noqa: E402
from cluster.evaluator import ShardEvaluator  # noqa: E402
from cluster.outputs import Output  # noqa: E402
from cluster.process_memory import keep_freed_memory  # noqa: E402

MODELS = {"mlp": ("bench.models:mlp_64_256_10", 8), "convnet": ("convnet", 1)}  # model, shards per round (full run)
VARIANTS = {"baseline": {"ci": 0.0}, "intervals": {"ci": 0.95}, "second_model": {"ci": 0.0, "twice": True}}
INTERVALS_LIMIT, SECOND_MODEL_LIMIT, READ_ONCE_LIMIT = 0.05, 1.10, 1.10


def evaluator(model: str, variant: dict, prefetch: int, data: Path, output: Path) -> ShardEvaluator:
    models = [model, model] if variant.get("twice") else [model]
    config = JobConfig(data=[str(data)], model=models, label="label", batch_size=4096, shard_rows=65536,
                       output=str(output), ci=variant["ci"], prefetch=prefetch)
    return ShardEvaluator(config)


def timed(runner: ShardEvaluator, shard, attempt: str) -> dict:
    """One shard once: wall seconds, and its summary's read, compute and write seconds."""
    start = time.perf_counter()
    summary = runner.evaluate(shard, attempt)
    seconds = time.perf_counter() - start
    Output(runner.config.output).discard(shard.index, attempt)
    return {"seconds": seconds, "read_s": summary.read_s, "compute_s": summary.compute_s, "write_s": summary.write_s}


def measure(name: str, prefetch: int, data: Path, out: Path, shard_count: int, rounds: int) -> dict:
    """Each variant's steady state for one model and read-ahead setting: per shard its best of `rounds` turns
    (the variants taking turns on each shard, who goes first rotating), summed over the shards."""
    model, _ = MODELS[name]
    runners = {variant: evaluator(model, spec, prefetch, data, out / f"{name}-{prefetch}-{variant}")
               for variant, spec in VARIANTS.items()}
    config = next(iter(runners.values())).config
    shards = planner.plan(config)[0][:shard_count]
    rows = sum(s.rows for s in shards)
    names = list(runners)
    best: dict[tuple[str, int], dict] = {}
    for turn in range(rounds + 1):  # the first turn warms caches and is not kept
        for k, shard in enumerate(shards):
            for variant in names[(turn + k) % len(names):] + names[:(turn + k) % len(names)]:
                result = timed(runners[variant], shard, f"r{turn}")
                key = (variant, shard.index)
                if turn and (key not in best or result["seconds"] < best[key]["seconds"]):
                    best[key] = result
    totals = {variant: {figure: sum(best[variant, s.index][figure] for s in shards)
                        for figure in ("seconds", "read_s", "compute_s", "write_s")} for variant in names}
    for result in totals.values():
        result["rows_per_s"] = rows / result["seconds"]
    base, intervals, second = totals["baseline"], totals["intervals"], totals["second_model"]
    return {"model": name, "prefetch": prefetch, "rows": rows, "shards": len(shards), "variants": totals,
            "intervals_cost": base["rows_per_s"] / intervals["rows_per_s"] - 1,
            "second_model_extra_s": second["seconds"] - base["seconds"],
            "second_model_extra_vs_one_models_compute": (second["seconds"] - base["seconds"]) / base["compute_s"],
            "second_model_read_ratio": second["read_s"] / base["read_s"]}


def targets(results: list[dict]) -> dict:
    found = {}
    for r in results:
        tag = f"{r['model']}_prefetch{r['prefetch']}"
        found[f"intervals_cost_{tag}"] = common.verdict(round(r["intervals_cost"], 4), "<=", INTERVALS_LIMIT)
        found[f"second_model_extra_vs_its_compute_{tag}"] = common.verdict(
            round(r["second_model_extra_vs_one_models_compute"], 3), "<=", SECOND_MODEL_LIMIT)
        found[f"second_model_reads_once_{tag}"] = common.verdict(round(r["second_model_read_ratio"], 3), "<=",
                                                                 READ_ONCE_LIMIT)
    return found


def report(results: list[dict]) -> None:
    """A human table on stderr (the JSON line on stdout is the record)."""
    print(f"{'model':8} {'prefetch':>8} {'variant':13} {'rows/s':>11} {'s':>7} {'read_s':>7} {'compute_s':>9} "
          f"{'write_s':>7}", file=sys.stderr)
    for r in results:
        for variant, v in r["variants"].items():
            print(f"{r['model']:8} {r['prefetch']:>8} {variant:13} {v['rows_per_s']:>11,.0f} {v['seconds']:>7.3f} "
                  f"{v['read_s']:>7.3f} {v['compute_s']:>9.3f} {v['write_s']:>7.3f}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, one round: a smoke run")
    parser.add_argument("--rounds", type=int, default=None, help="kept turns per variant and shard (default 5, "
                                                                 "quick 1)")
    parser.add_argument("--no-record", action="store_true", help="do not append to results.jsonl")
    args = parser.parse_args()
    started = common.now()
    common.warn_if_slow_blas(args.quick)
    sizes = make_data.QUICK if args.quick else make_data.FULL
    rounds = args.rounds or (1 if args.quick else 5)
    data, out = make_data.dataset("1m", sizes), make_data.outputs("results_cost", sizes)
    from threadpoolctl import threadpool_limits
    keep_freed_memory()  # as in a worker (cluster.pool.EvalActor)
    results = []
    try:
        with threadpool_limits(1):
            for name, (_, shard_count) in MODELS.items():
                for prefetch in (2, 0):
                    results.append(measure(name, prefetch, data, out, 1 if args.quick else shard_count, rounds))
    finally:
        shutil.rmtree(out, ignore_errors=True)
    report(results)
    common.emit("results_cost", started, args.quick, {"rounds": rounds, "results": results}, targets(results),
                record=not args.no_record)


if __name__ == "__main__":
    main()
