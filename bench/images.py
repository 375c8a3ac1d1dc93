"""Study 6: images. The pipeline against Ray Data (PyTorch and engine models) on PNGs: decode, normalise, forward.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/images.py [--repeats 2] [--actors 2] [--quick]

Every contender runs as its own process, as a user would run it, on the same 64x64 RGB PNGs in the
Hugging Face layout (a tiny set of 1,024 rows and 100,000 rows in 16 files; bench/make_data.py),
decodes them with Pillow, converts them to RGB, scales them to [0, 1], normalises them by ImageNet's
mean and std and runs the same small ResNet (bench/models.py) on them, channels first, writing the
predictions as Parquet. Fixed cost and steady state (difference and traced) as in study 1
(bench/vs_raydata.py, whose turn-taking this reuses); besides, where each contender's time goes: the
pipeline's read/compute/write seconds from its workers.parquet, Ray Data's decode and forward seconds
inside its UDF and its operators' task seconds; and, in this process on one thread, what one image
costs to decode and to run through each model. Prints one JSON line, appends it to
bench/results.jsonl, and a PASS/FAIL line per target on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, contenders, make_data, vs_raydata  # noqa: E402

MODEL = "bench.models:resnet_small"
# Chosen by sweeps (bench/README.md, Study 6): each contender's best batch size, and Ray Data's best set-up.
PIPELINE_BATCH, RAY_DATA_BATCH = 256, 256


def pipeline_options() -> tuple[str, ...]:
    """The pipeline's image options: the HF `image` column, normalised as every contender normalises."""
    return ("--features", "image", "--mean", ",".join(map(str, contenders.IMAGE_MEAN)),
            "--std", ",".join(map(str, contenders.IMAGE_STD)))


def contender_table(actors: tuple[int, ...], batch: int, ray_batch: int, ray_options: tuple[str, ...],
                    with_torch: bool) -> dict:
    """name -> (actors, command maker(data, output))."""
    def ray_data(model: str, n: int):
        return lambda data, out: common.python(
            "bench/contenders.py", "raydata", "--images", "--model", model, "--actors", str(n), "--batch-size",
            str(ray_batch), "--data", str(data), "--output", str(out), *ray_options)
    table = {}
    for n in actors:
        table[f"pipeline/{n}"] = (n, lambda data, out, n=n: common.pipeline_command(
            data, out, n, model=MODEL, batch_size=batch, extra=pipeline_options()))
        table[f"ray_data_engine/{n}"] = (n, ray_data("engine", n))
        if with_torch:
            table[f"ray_data_torch/{n}"] = (n, ray_data("torch", n))
    return table


def stages(name: str, done: common.Run, output: Path, trace: Path) -> dict:
    """Where a run's time went: the pipeline's per-worker seconds (workers.parquet); Ray Data's in its UDF."""
    if name.startswith("pipeline"):
        import pyarrow.parquet as pq
        workers = pq.read_table(output / "workers.parquet",
                                columns=["rows", "busy_s", "read_s", "compute_s", "write_s"]).to_pylist()
        return {"workers": workers}
    per_actor = []
    for path in sorted(trace.glob("stages-*.txt")):
        lines = [line.split() for line in path.read_text().splitlines() if line]
        per_actor.append({"rows": sum(int(n) for _, _, n in lines), "decode_s": sum(float(d) for d, _, _ in lines),
                          "forward_s": sum(float(f) for _, f, _ in lines)})
    return {"actors": per_actor, "operators": done.json_line().get("operators", {})}


def stage_split(summary: dict) -> dict:
    """Per contender, from its large run of best traced rate: the stages' seconds summed over workers and shares."""
    split = {}
    for name, figures in summary.items():
        best = max(figures["runs"]["large"], key=lambda r: r["traced_rows_per_s"] or 0)
        parts = best.get("workers") or best.get("actors") or []
        keys = ("busy_s", "read_s", "compute_s", "write_s") if "workers" in best else ("decode_s", "forward_s")
        total = {key: sum(p[key] for p in parts) for key in ("rows", *keys)}
        whole = total["busy_s"] if "busy_s" in total else total["decode_s"] + total["forward_s"]
        split[name] = {**total, "shares": {key: total[key] / whole for key in keys if key != "busy_s"} if whole else {},
                       "per_worker": parts, "operators": best.get("operators", {})}
    return split


def per_image(data: Path, batches: dict) -> dict:
    """One thread, in this process: microseconds per image to decode (Ray Data's UDF, the pipeline's decoder) and to
    run the small ResNet (engine, PyTorch) at each contender's batch size; the largest difference of their outputs."""
    import numpy as np
    import pyarrow.parquet as pq
    import torch
    from threadpoolctl import threadpool_limits

    import engine
    from bench import models
    from cluster import decode
    from cluster.config import JobConfig

    threadpool_limits(1)
    torch.set_num_threads(1)
    records = next(pq.ParquetFile(sorted(data.glob("*.parquet"))[0]).iter_batches(batch_size=max(batches.values())))
    config = JobConfig(data=(str(data),), model=MODEL, output=str(data.parent / "unused"), features=("image",),
                       mean=contenders.IMAGE_MEAN, std=contenders.IMAGE_STD)
    column = records.column("image")
    x = contenders.decode_images(records)
    runs = {"ray_data_decode": lambda: contenders.decode_images(records),
            "pipeline_decode": lambda: decode.decode(column, "image", config)}
    engine_model, torch_model = models.resnet_small(), models.torch_resnet_small()
    for library, model, mode, tensor in (("engine", engine_model, engine.no_grad, engine.from_numpy),
                                         ("torch", torch_model, torch.inference_mode, torch.from_numpy)):
        batch = x[:batches[library]]
        runs[f"{library}_forward_b{len(batch)}"] = lambda m=model, g=mode, t=tensor, b=batch: _forward(m, g, t, b)
    found = {name: _best_seconds(run) * 1e6 / (len(x) if "decode" in name else int(name.rsplit("_b", 1)[1]))
             for name, run in runs.items()}
    difference = float(np.abs(_forward(engine_model, engine.no_grad, engine.from_numpy, x[:64])
                              - _forward(torch_model, torch.inference_mode, torch.from_numpy, x[:64])).max())
    pipeline_x = decode.decode(column, "image", config)[0]
    return {"rows_decoded": len(x), "us_per_image": found, "outputs_max_abs_diff": difference,
            "decoders_agree": bool(np.array_equal(pipeline_x, x))}


def _forward(model, mode, tensor, x):
    with mode():
        return model(tensor(x)).numpy()


def _best_seconds(run, turns: int = 3) -> float:
    best = float("inf")
    for _ in range(turns):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def targets(summary: dict, actors: tuple[int, ...], calibration: dict) -> dict:
    """The issue's targets for every actor count measured, on both steady-state figures (see README)."""
    found = {}
    for figure, suffix in (("steady_rows_per_s", ""), ("traced_rows_per_s", "_traced")):
        for n in actors:
            ours = summary[f"pipeline/{n}"][figure]
            if f"ray_data_torch/{n}" in summary:
                found[f"steady_vs_ray_data_torch_{n}_actors{suffix}"] = common.verdict(
                    ours / summary[f"ray_data_torch/{n}"][figure], ">=", 1.5)
            found[f"steady_vs_ray_data_engine_{n}_actors{suffix}"] = common.verdict(
                ours / summary[f"ray_data_engine/{n}"][figure], ">=", 1.2)
    # The contenders compute the same thing: the same pixels, and models that agree.
    found["decoders_agree"] = common.verdict(calibration["decoders_agree"], "==", True)
    found["resnet_outputs_max_abs_diff"] = common.verdict(calibration["outputs_max_abs_diff"], "<=", 1e-4)
    return found


def ratios(summary: dict, actors: tuple[int, ...]) -> dict:
    """Beyond the targets: fixed costs against each Ray Data, and Ray Data's two models against each other."""
    found = {}
    for n in actors:
        for other in ("ray_data_engine", "ray_data_torch"):
            if f"{other}/{n}" in summary:
                found[f"fixed_cost_vs_{other}_{n}_actors"] = (summary[f"pipeline/{n}"]["fixed_s"]
                                                              / summary[f"{other}/{n}"]["fixed_s"])
        if f"ray_data_torch/{n}" in summary:
            engine_rate, torch_rate = (summary[f"{other}/{n}"]["traced_rows_per_s"]
                                       for other in ("ray_data_engine", "ray_data_torch"))
            found[f"ray_data_engine_vs_torch_{n}_actors_traced"] = engine_rate / torch_rate
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="turns per contender; the best is kept (default 2)")
    parser.add_argument("--actors", default="2", help="actor counts to compare (default 2)")
    parser.add_argument("--batch-size", type=int, default=PIPELINE_BATCH, help="the pipeline's batch size")
    parser.add_argument("--ray-data-batch-size", type=int, default=RAY_DATA_BATCH, help="Ray Data's batch size")
    parser.add_argument("--ray-data-option", action="append", default=[],
                        help="an extra option for contenders.py raydata (e.g. --blocks-per-actor=8); repeatable")
    parser.add_argument("--no-torch", action="store_true", help="leave out Ray Data with the PyTorch model")
    parser.add_argument("--quick", action="store_true", help="small sets, one actor, one turn: a smoke run")
    parser.add_argument("--no-record", action="store_true", help="do not append to bench/results.jsonl")
    args = parser.parse_args(argv)
    common.warn_if_slow_blas(args.quick)
    started = common.now()
    sizes = make_data.QUICK if args.quick else make_data.FULL
    actors = (1,) if args.quick else tuple(int(n) for n in args.actors.split(","))
    repeats = 1 if args.quick else args.repeats
    sets = vs_raydata.made_sets("images-tiny", "images", sizes)
    calibration = per_image(sets["large"][0], {"engine": args.batch_size, "torch": args.ray_data_batch_size})
    table = contender_table(actors, args.batch_size, args.ray_data_batch_size, tuple(args.ray_data_option),
                            vs_raydata.torch_wanted(args.no_torch))
    summary = vs_raydata.race("images", table, sets, repeats, sizes, stages)
    example = table[f"pipeline/{actors[-1]}"][1](Path("DATA"), Path("OUT"))
    result = {"sets": vs_raydata.sets_record(sets),
              "batch_size": {"pipeline": args.batch_size, "ray_data": args.ray_data_batch_size},
              "ray_data_options": args.ray_data_option, "repeats": repeats,
              "pipeline_command": " ".join(example[1:]), "per_image": calibration, "contenders": summary,
              "stages": stage_split(summary), "ratios": ratios(summary, actors)}
    common.emit("images", started, args.quick, result, targets(summary, actors, calibration), not args.no_record)


if __name__ == "__main__":
    main()
