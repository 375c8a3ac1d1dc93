"""The jobs the benchmarks time, each run as its own process, the way a user would run it.

    python bench/contenders.py plain   --data DIR --output DIR [--batch-size 4096]
    python bench/contenders.py raydata --data DIR --output DIR --actors N [--model engine|torch] [--images] [...]
    python bench/contenders.py api     --data DIR --output DIR --actors N [--model module:factory] [...]

`plain` is the no-distribution ceiling: one process, one BLAS thread, pyarrow reads, the engine
computes, Parquet is written. `raydata` is Ray Data's map_batches in its best configuration here
(see ray_data_job); with `--images`, on the image study's PNGs and small ResNet (see ImageUDF).
`api` is `cluster.evaluate` called from Python (the `jobs.evaluate` CLI wraps it; the benchmarks
run the CLI itself when it is there). Each prints one JSON line: rows written (and for `raydata`
the seconds Ray Data's stats give each operator).
Run from the repository root (or with it on PYTHONPATH): Ray workers import bench.models from there.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's engine, cluster, bench

FEATURES, LABEL = "features", "label"
IMAGE, PIXELS = "image", "pixels"  # the HF image column; the decoded tensor column (decoding in read tasks)
IMAGE_MEAN, IMAGE_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet's: every image contender's --mean/--std


def features_of(batch):
    """(rows, width) float32 numpy from a fixed-size-list column, without a copy (Arrow's buffer viewed in place).

    A dict batch (Ray Data's numpy format) holds whatever Ray made of the column: stacked if need be.
    """
    if isinstance(batch, dict):
        import numpy as np
        x = batch[FEATURES]
        return x if x.dtype != object else np.stack(x)
    column = batch.column(FEATURES)
    if hasattr(column, "combine_chunks"):  # a Table's column is chunked; a RecordBatch's is not
        column = column.combine_chunks()
    return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), column.type.list_size)


def plain_jobs(data: str, output: str, batch_size: int, processes: int) -> int:
    """plain_job in `processes` processes at once, each on every n-th file: the loop's ceiling on that many cores."""
    files = sorted(Path(data).glob("*.parquet"))
    if processes == 1:
        return plain_job(files, output, batch_size)
    import multiprocessing
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        return sum(pool.starmap(plain_job, [(files[i::processes], output, batch_size) for i in range(processes)]))


def plain_job(files: list[Path], output: str, batch_size: int) -> int:
    """Every file, batch by batch through the engine MLP on one core; one output file per input."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from threadpoolctl import threadpool_limits

    import engine
    from bench.models import mlp_64_256_10

    threadpool_limits(1)
    model = mlp_64_256_10()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    rows = 0
    for path in files:
        writer = None
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=[FEATURES, LABEL],
                                                       use_threads=False):
            with engine.no_grad():
                scores = model(engine.from_numpy(features_of(batch))).numpy()
            table = pa.table({LABEL: batch.column(LABEL), "prediction": scores.argmax(axis=1)})
            writer = writer or pq.ParquetWriter(out / path.name, table.schema)
            writer.write_table(table)
            rows += len(table)
        if writer is not None:
            writer.close()
    return rows


class EngineUDF:
    """Ray Data's callable class around the engine MLP: built once per actor, one BLAS thread."""

    def __init__(self):
        from threadpoolctl import threadpool_limits

        from bench.models import mlp_64_256_10
        self._limit = threadpool_limits(1)
        self.model = mlp_64_256_10()

    def __call__(self, batch):

        import engine
        with engine.no_grad():
            scores = self.model(engine.from_numpy(features_of(batch))).numpy()
        return predictions(batch, scores)


def predictions(batch, scores):
    """The output batch, in the input's format: the label and the predicted class."""
    import pyarrow as pa
    if isinstance(batch, dict):
        return {LABEL: batch[LABEL], "prediction": scores.argmax(axis=1)}
    return pa.table({LABEL: batch.column(LABEL), "prediction": scores.argmax(axis=1)})


class TorchUDF:
    """The same with the PyTorch MLP (what a Ray Data user would write), one thread, inference_mode."""

    def __init__(self):
        import torch

        from bench.models import torch_mlp_64_256_10
        torch.set_num_threads(1)
        self.model = torch_mlp_64_256_10()

    def __call__(self, batch):
        import torch
        with torch.inference_mode():
            scores = self.model(torch.from_numpy(features_of(batch))).numpy()
        return predictions(batch, scores)


def decode_images(batch):
    """N x 3 x H x W float32 from a batch's HF `image` column (struct of bytes and path), as a Ray Data user writes
    it: Pillow decodes each image and converts it to RGB; the batch is scaled to [0, 1], normalised by IMAGE_MEAN
    and IMAGE_STD and made channels-first (the same float32 operations as the pipeline's, so the same values)."""
    import numpy as np
    from PIL import Image
    column = batch.column(IMAGE)
    if hasattr(column, "combine_chunks"):
        column = column.combine_chunks()
    pixels = np.stack([np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
                       for data in column.field("bytes").to_pylist()])
    x = pixels.astype(np.float32) / 255.0
    x -= np.asarray(IMAGE_MEAN, np.float32)
    x /= np.asarray(IMAGE_STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def decoded_batch(batch):
    """decode_images as a map_batches step of its own (run in Ray Data's read tasks): the tensor and the label."""
    import pyarrow as pa
    return pa.table({PIXELS: pa.FixedShapeTensorArray.from_numpy_ndarray(decode_images(batch)),
                     LABEL: batch.column(LABEL)})


class ImageUDF:
    """Ray Data's callable class for the image study: the small ResNet of `library` (engine or torch), one
    thread, under no_grad / inference_mode; decodes the batch itself unless a read-task step did.

    With $BENCH_TRACE_DIR set, each call appends "<decode s> <forward s> <rows>" to a file of its process
    there (stages-<pid>.txt): where the actor's time goes.
    """

    def __init__(self, library: str):
        from threadpoolctl import threadpool_limits

        from bench import models
        self._limit = threadpool_limits(1)
        if library == "torch":
            import torch
            torch.set_num_threads(1)
            self.model, self.mode, self.tensor = models.torch_resnet_small(), torch.inference_mode, torch.from_numpy
        else:
            import engine
            self.model, self.mode, self.tensor = models.resnet_small(), engine.no_grad, engine.from_numpy
        directory = os.environ.get(models.TRACE_DIR)
        self.log = Path(directory) / f"stages-{os.getpid()}.txt" if directory else None

    def __call__(self, batch):
        start = time.perf_counter()
        if PIXELS in batch.column_names:
            column = batch.column(PIXELS)
            x = (column.combine_chunks() if hasattr(column, "combine_chunks") else column).to_numpy_ndarray()
        else:
            x = decode_images(batch)
        decoded = time.perf_counter()
        with self.mode():
            scores = self.model(self.tensor(x)).numpy()
        if self.log is not None:
            with open(self.log, "a") as f:
                f.write(f"{decoded - start:.6f} {time.perf_counter() - decoded:.6f} {len(x)}\n")
        return predictions(batch, scores)


def ray_data_job(data: str, output: str, actors: int, model: str, batch_size: int, blocks_per_actor: int,
                 extra_cpus: int, datasource_v2: bool = False, batch_format: str = "pyarrow", images: bool = False,
                 decode_in_read_tasks: bool = False) -> tuple[int, dict]:
    """read_parquet -> map_batches(UDF, ActorPoolStrategy(size=actors)) -> write_parquet, tuned for this machine.

    - `extra_cpus` logical CPUs beyond the actors' own, so read and write tasks always find a slot
      (ray-project/ray#44687: with every CPU held by the actors, they wait forever).
    - the legacy Parquet datasource and `blocks_per_actor * actors` blocks: Ray 2.60's default reader
      can hand a small input to one actor as a single block, leaving the others idle.
    - pyarrow batches, converted to numpy by us without a copy (Ray's numpy format copies a
      fixed-size-list column row by row); progress bars off.

    `images`: the image study's job (ImageUDF with `model` as its library), decoding in the actors, or with
    `decode_in_read_tasks` in a map_batches step of its own that Ray fuses into the read tasks. Returns the
    rows written and, per operator, the wall and CPU seconds Ray Data's stats give its tasks.
    """
    import logging

    import ray
    import ray.data

    ray.init(num_cpus=actors + extra_cpus, include_dashboard=False, logging_level=logging.WARNING)
    try:
        context = ray.data.DataContext.get_current()
        context.use_datasource_v2 = datasource_v2
        context.enable_progress_bars = False
        paths = sorted(str(p) for p in Path(data).glob("*.parquet"))
        blocks = {"override_num_blocks": blocks_per_actor * actors} if blocks_per_actor else {}
        ds = ray.data.read_parquet(paths, columns=[IMAGE if images else FEATURES, LABEL], **blocks)
        udf, arguments = (EngineUDF if model == "engine" else TorchUDF), {}
        if images:
            udf, arguments = ImageUDF, {"fn_constructor_kwargs": {"library": model}}
            if decode_in_read_tasks:
                ds = ds.map_batches(decoded_batch, batch_size=batch_size, batch_format="pyarrow")
        ds = ds.map_batches(udf, compute=ray.data.ActorPoolStrategy(size=actors), batch_size=batch_size,
                            batch_format=batch_format, num_cpus=1, **arguments)
        ds.write_parquet(output)
        operators = _operator_times(ds)
    finally:
        ray.shutdown()
    import pyarrow.dataset as pads
    return pads.dataset(output, format="parquet").count_rows(), operators


def _operator_times(ds) -> dict:
    """Per operator of a finished Ray Data job: tasks, summed wall and CPU seconds (empty if Ray's stats lack them)."""
    try:
        summary = ds.get_stats_summary()
    except Exception:  # a developer API: its shape may change between Ray versions
        return {}
    found, pending = {}, [summary]
    while pending:  # a write's summary holds the write; the read and map_batches are in its parents
        summary = pending.pop()
        pending += summary.parents
        found.update({op.operator_name: {"tasks": op.wall_time.count, "wall_s": op.wall_time.sum,
                                         "cpu_s": op.cpu_time.sum}
                      for op in summary.operators_stats if op.wall_time is not None and op.cpu_time is not None})
    return found


def api_job(data: str, output: str, actors: int, model: str, batch_size: int, **options) -> int:
    """cluster.evaluate, as the jobs.evaluate CLI calls it."""
    import cluster
    result = cluster.evaluate(data, model, output, label=LABEL, batch_size=batch_size, workers=actors,
                              overwrite=True, **options)
    return result.metrics["rows"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("contender", choices=["plain", "raydata", "api"])
    parser.add_argument("--data", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--actors", type=int, default=1)
    parser.add_argument("--model", default=None, help="raydata: engine or torch; api: module:factory")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--blocks-per-actor", type=int, default=4, help="raydata: read blocks per actor")
    parser.add_argument("--extra-cpus", type=int, default=2, help="raydata: logical CPUs beyond the actors'")
    parser.add_argument("--datasource-v2", action="store_true", help="raydata: Ray 2.60's default Parquet reader")
    parser.add_argument("--batch-format", default="pyarrow", help="raydata: pyarrow (default) or numpy")
    parser.add_argument("--images", action="store_true", help="raydata: the image study's PNGs and small ResNet")
    parser.add_argument("--decode-in-read-tasks", action="store_true",
                        help="raydata --images: decode in a map_batches step fused into the read tasks")
    parser.add_argument("--keep-freed-memory", action="store_true", help="plain: glibc keeps freed memory mapped")
    parser.add_argument("--processes", type=int, default=1, help="plain: loops at once, each on every n-th file")
    parser.add_argument("--grad-mode", default="no_grad", help="api: the workers' grad mode")
    parser.add_argument("--input-shape", default=None, help="api: per-row input shape, e.g. 1,8,8")
    parser.add_argument("--shard-rows", type=int, default=65536, help="api: rows per shard")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    extra = {}
    if args.keep_freed_memory:
        from cluster.process_memory import keep_freed_memory  # the pipeline workers' own setting
        keep_freed_memory()
    if args.contender == "plain":
        rows = plain_jobs(args.data, args.output, args.batch_size, args.processes)
    elif args.contender == "raydata":
        rows, operators = ray_data_job(args.data, args.output, args.actors, args.model or "engine", args.batch_size,
                                       args.blocks_per_actor, args.extra_cpus, args.datasource_v2, args.batch_format,
                                       args.images, args.decode_in_read_tasks)
        extra = {"operators": operators}
    else:
        rows = api_job(args.data, args.output, args.actors, args.model or "bench.models:mlp_64_256_10",
                       args.batch_size, grad_mode=args.grad_mode, input_shape=args.input_shape,
                       shard_rows=args.shard_rows)
    print(json.dumps({"contender": args.contender, "rows": rows, "inner_s": time.perf_counter() - start, **extra}))


if __name__ == "__main__":
    main()
