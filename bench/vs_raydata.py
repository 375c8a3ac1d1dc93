"""Study 1: the pipeline against Ray Data (engine and PyTorch models) and a plain loop, fixed cost and steady state.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/vs_raydata.py [--repeats 2] [--actors 1,2] [--quick]

Every contender runs as its own process, as a user would run it, on the same Parquet data (a tiny
set of 4,096 rows and 4,000,000 rows in 8 files; bench/make_data.py), the same 64-256-10 MLP
(bench/models.py), batch 4096, writing predictions as Parquet. A contender's fixed cost is its tiny
job's wall time; its steady state is extra rows / extra seconds between the tiny job and the large
one, and (`traced`) rows between the large job's first and last forward over the time between them,
which Ray's start-up noise does not reach. Contenders take turns in every repetition (who goes first
rotates) and each keeps its best time per size. Prints one JSON line, appends it to
bench/results.jsonl, and a PASS/FAIL line per target on stderr.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, make_data  # noqa: E402


def contenders(actors: tuple[int, ...], with_torch: bool) -> dict:
    """name -> (actors, command maker(data, output))."""
    def ray_data(model: str, n: int):
        return lambda data, out: common.python("bench/contenders.py", "raydata", "--model", model, "--actors",
                                               str(n), "--data", str(data), "--output", str(out))
    table = {}
    for n in actors:
        table[f"pipeline/{n}"] = (n, lambda data, out, n=n: common.pipeline_command(data, out, n))
        # The same job without confidence intervals (--ci 0): the work the pipeline did before they came, and a job
        # nearer the others' (they write predictions only); the intervals' cost is study 5's subject.
        table[f"pipeline_no_ci/{n}"] = (n, lambda data, out, n=n: common.pipeline_command(data, out, n,
                                                                                          extra=("--ci", "0")))
        table[f"ray_data_engine/{n}"] = (n, ray_data("engine", n))
        if with_torch:
            table[f"ray_data_torch/{n}"] = (n, ray_data("torch", n))
    plains = [("plain/1", 1, ()), ("plain_kept_memory/1", 1, ("--keep-freed-memory",))]
    plains += [(f"plain_kept_memory/{n}", n, ("--keep-freed-memory", "--processes", str(n))) for n in actors if n > 1]
    for name, n, extra in plains:
        table[name] = (n, lambda data, out, extra=extra: common.python(
            "bench/contenders.py", "plain", "--data", str(data), "--output", str(out), *extra))
    return table


def measure(table: dict, sets: dict, repeats: int, out_root: Path, inspect=None) -> dict:
    """Every contender on every set, `repeats` times, taking turns; the wall times and memory of each run.

    `inspect(name, run, output, trace)`, if given, adds figures of its own to each run's record, read
    before the output is deleted.
    """
    runs = {name: {size: [] for size in sets} for name in table}
    names = list(table)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            for size, (data, _) in sets.items():
                out = out_root / f"{name.replace('/', '-')}-{size}"
                shutil.rmtree(out, ignore_errors=True)  # this contender's previous turn (Ray Data appends)
                trace = out_root / "trace" / f"{name.replace('/', '-')}-{size}-{r}"
                done, traced = common.run_traced(table[name][1](data, out), trace)
                runs[name][size].append({"wall_s": done.wall_s, "traced_rows_per_s": traced,
                                         "driver_peak_rss": done.driver_peak_rss, "tree_peak_rss": done.tree_peak_rss,
                                         "leftovers": len(done.leftovers),
                                         **(inspect(name, done, out, trace) if inspect else {})})
                print(f"  {name:22s} {size:5s} {done.wall_s:7.2f} s  traced {traced or 0:12,.0f} rows/s",
                      file=sys.stderr)
    return runs


def summarise(table: dict, runs: dict, sets: dict) -> dict:
    """Per contender: best fixed cost, best large wall, steady-state rows/s, memory peaks."""
    (tiny_rows, large_rows) = (sets["tiny"][1], sets["large"][1])
    out = {}
    for name, sizes in runs.items():
        fixed = min(r["wall_s"] for r in sizes["tiny"])
        large = min(r["wall_s"] for r in sizes["large"])
        out[name] = {"actors": table[name][0], "fixed_s": fixed, "large_s": large,
                     "steady_rows_per_s": common.steady_rate(tiny_rows, fixed, large_rows, large),
                     "end_to_end_rows_per_s": large_rows / large,
                     "traced_rows_per_s": max(r["traced_rows_per_s"] or 0 for r in sizes["large"]),
                     "driver_peak_rss": max(r["driver_peak_rss"] for r in sizes["large"]),
                     "tree_peak_rss": max(r["tree_peak_rss"] for r in sizes["large"]),
                     "runs": sizes}
    return out


def targets(summary: dict, actors: tuple[int, ...]) -> dict:
    """The issue's targets for every actor count measured, on both steady-state figures (see README)."""
    found = {}
    for variant, tag in (("pipeline", ""), ("pipeline_no_ci", "no_ci_")):
        for figure, suffix in (("steady_rows_per_s", ""), ("traced_rows_per_s", "_traced")):
            # The ceiling per core: the faster plain loop, with or without glibc keeping freed memory (see README).
            plain = max(summary[name][figure] for name in ("plain/1", "plain_kept_memory/1"))
            for n in actors:
                ours, theirs = summary[f"{variant}/{n}"][figure], summary[f"ray_data_engine/{n}"][figure]
                found[f"{tag}steady_vs_ray_data_engine_{n}_actors{suffix}"] = common.verdict(ours / theirs, ">=", 2.0)
                found[f"{tag}steady_vs_{n}x_plain_loop_{n}_actors{suffix}"] = common.verdict(
                    ours / (n * plain), ">=", 0.8)
                if n > 1:  # issue 12: N actors keep up with N plain loops running at once
                    found[f"{tag}issue12_{n}_actors_vs_{n}_plain_loops_at_once{suffix}"] = common.verdict(
                        ours / summary[f"plain_kept_memory/{n}"][figure], ">=", 0.9)
            if 1 in actors:  # issues 4 and 12: one actor keeps up with the plain loop
                found[f"{tag}issue4_one_actor_vs_plain_loop{suffix}"] = common.verdict(
                    summary[f"{variant}/1"][figure] / plain, ">=", 0.9)
        for n in actors:
            found[f"{tag}fixed_cost_vs_ray_data_engine_{n}_actors"] = common.verdict(
                summary[f"{variant}/{n}"]["fixed_s"] / summary[f"ray_data_engine/{n}"]["fixed_s"], "<=", 0.6)
    return found


def ratios(summary: dict, actors: tuple[int, ...]) -> dict:
    """Side-by-side ratios beyond the targets (traced steady states): what a user choosing would compare."""
    traced = {name: figures["traced_rows_per_s"] for name, figures in summary.items()}
    found = {}
    for n in actors:
        found[f"pipeline_vs_ray_data_torch_{n}_actors"] = traced[f"pipeline/{n}"] / traced[f"ray_data_torch/{n}"]
        found[f"pipeline_no_ci_vs_ray_data_torch_{n}_actors"] = (traced[f"pipeline_no_ci/{n}"]
                                                                 / traced[f"ray_data_torch/{n}"])
        found[f"intervals_cost_{n}_actors"] = traced[f"pipeline_no_ci/{n}"] / traced[f"pipeline/{n}"] - 1
        found[f"ray_data_engine_vs_torch_{n}_actors"] = traced[f"ray_data_engine/{n}"] / traced[f"ray_data_torch/{n}"]
        if n > 1:  # N plain loops at once: what N cores of this machine give with no distribution at all
            found[f"pipeline_vs_{n}_plain_loops_at_once"] = traced[f"pipeline/{n}"] / traced[f"plain_kept_memory/{n}"]
    return found


def made_sets(tiny: str, large: str, sizes: make_data.Sizes) -> dict:
    """{"tiny": (directory, rows), "large": (directory, rows)} of the data sets named, made if missing."""
    return {size: (path, make_data.rows(path))
            for size, path in (("tiny", make_data.dataset(tiny, sizes)), ("large", make_data.dataset(large, sizes)))}


def sets_record(sets: dict) -> dict:
    return {size: {"path": str(path.relative_to(common.ROOT)), "rows": rows} for size, (path, rows) in sets.items()}


def torch_wanted(no_torch: bool) -> bool:
    """Whether the PyTorch contenders run: PyTorch is installed and --no-torch was not given."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return not no_torch


def race(study: str, table: dict, sets: dict, repeats: int, sizes: make_data.Sizes, inspect=None) -> dict:
    """Every contender on both sets, taking turns (measure), summarised; the outputs deleted afterwards."""
    out_root = make_data.outputs(study, sizes)
    try:
        return summarise(table, measure(table, sets, repeats, out_root, inspect), sets)
    finally:
        shutil.rmtree(out_root, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="turns per contender; the best is kept (default 2)")
    parser.add_argument("--actors", default="1,2", help="actor counts to compare (default 1,2)")
    parser.add_argument("--no-torch", action="store_true", help="leave out Ray Data with the PyTorch model")
    parser.add_argument("--quick", action="store_true", help="small sets, one actor, one turn: a smoke run")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/results.jsonl")
    args = parser.parse_args(argv)
    common.warn_if_slow_blas(args.quick)
    started = common.now()
    sizes = make_data.QUICK if args.quick else make_data.FULL
    actors = (1,) if args.quick else tuple(int(n) for n in args.actors.split(","))
    repeats = 1 if args.quick else args.repeats
    sets = made_sets("tiny", "4m", sizes)
    table = contenders(actors, torch_wanted(args.no_torch))
    summary = race("vs_raydata", table, sets, repeats, sizes)
    result = {"sets": sets_record(sets), "batch_size": 4096, "repeats": repeats, "pipeline_cli": common.cli_available(),
              "pipeline_command": " ".join(common.pipeline_command(Path("DATA"), Path("OUT"), actors[-1])[1:]),
              "contenders": summary, "ratios": ratios(summary, actors)}
    common.emit("vs_raydata", started, args.quick, result, targets(summary, actors), not args.no_record)


if __name__ == "__main__":
    main()
