"""The benchmarks' synthetic data: Parquet files of 64 float32 features (one fixed-size-list column) and a label,
and of PNG images in the Hugging Face layout and a label.

    python bench/make_data.py [--quick] [--sets tiny,4m,...,images,images-tiny]

Files go under bench/data/ (git-ignored) and are made once: a file already there with the
expected rows is kept. The row sets share their files: `4m` is the first 8 files of the pool,
`1m` the first 2, `10m` all 20, each a directory of hard links, so 10M rows cost 2.6 GB of disk,
not 3.9. Every file has the same size and row groups, so a bigger set is only more of the same
shards (what a streaming test of 1M vs 10M rows needs). Each file is seeded by its number: the
data is the same on every machine.

`images` (study 6) is 64x64 RGB PNGs as `datasets` writes an image column: a struct `image` of
`bytes` and `path`, with an int64 `label`. Each picture is a smooth colour field (a random 4x4 grid
scaled up bicubically) plus Gaussian noise of IMAGE_NOISE grey levels, so PNG compresses it about as
well as a small photograph (about 7.5 KB an image) and decoding costs what it costs for real data.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DATA = Path(__file__).resolve().parent / "data"
WIDTH = 64
CLASSES = 10
IMAGE_SIDE = 64  # images are IMAGE_SIDE x IMAGE_SIDE RGB
IMAGE_NOISE = 4.0  # standard deviation of the noise added to each picture, in grey levels


@dataclass(frozen=True)
class Sizes:
    """How big everything is: the full benchmark's sizes or a smoke run's."""

    root: Path
    file_rows: int  # rows per pool file
    row_group_rows: int  # rows per Parquet row group (a shard of the pipeline holds one)
    tiny_rows: int  # the tiny job that measures fixed cost
    sets: dict  # set name -> pool files it holds
    many_files: int  # the many-shards set (driver overhead): files of
    many_groups: int  # row groups of
    many_group_rows: int  # rows each
    image_files: int  # the images set (study 6): files of
    image_file_rows: int  # rows each
    image_row_group_rows: int  # in row groups of
    image_tiny_rows: int  # rows of images-tiny (one file)


FULL = Sizes(DATA, 500_000, 65_536, 4_096, {"1m": 2, "4m": 8, "10m": 20}, 32, 128, 8,
             image_files=16, image_file_rows=6_250, image_row_group_rows=1_250, image_tiny_rows=1_024)
QUICK = Sizes(DATA / "quick", 16_384, 4_096, 4_096, {"1m": 1, "4m": 2, "10m": 4}, 4, 16, 8,
              image_files=2, image_file_rows=256, image_row_group_rows=128, image_tiny_rows=64)


def table(rows: int, seed: int) -> pa.Table:
    """`rows` rows of standard-normal float32 features and integer labels in [0, CLASSES)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, WIDTH), dtype=np.float32)
    return pa.table({"features": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), WIDTH),
                     "label": pa.array(rng.integers(0, CLASSES, rows), pa.int64())})


def image_table(rows: int, seed: int, name: str) -> pa.Table:
    """`rows` PNG-encoded 64x64 RGB pictures in the HF layout (struct `image` {bytes, path}) and int64 labels."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    grids = rng.integers(0, 256, (rows, 4, 4, 3), dtype=np.uint8)
    encoded = []
    for grid in grids:
        field = np.asarray(Image.fromarray(grid).resize((IMAGE_SIDE, IMAGE_SIDE), Image.BICUBIC), np.float32)
        pixels = np.clip(field + rng.normal(0, IMAGE_NOISE, field.shape), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")  # Pillow's defaults, as `datasets` encodes
        encoded.append(buffer.getvalue())
    paths = [f"{name}-{i:06d}.png" for i in range(rows)]
    image = pa.StructArray.from_arrays([pa.array(encoded, pa.binary()), pa.array(paths, pa.string())],
                                       names=["bytes", "path"])
    return pa.table({"image": image, "label": pa.array(rng.integers(0, CLASSES, rows), pa.int64())})


def write(path: Path, rows: int, row_group_rows: int, seed: int, images: bool = False) -> Path:
    """Write the file unless it is already there with `rows` rows; complete or absent (tmp, then rename)."""
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # a run of its own: two studies may make the same file at once
    made = image_table(rows, seed, path.stem) if images else table(rows, seed)
    pq.write_table(made, tmp, row_group_size=row_group_rows)
    os.replace(tmp, path)
    return path


def pool_file(sizes: Sizes, i: int) -> Path:
    return write(sizes.root / "pool" / f"part-{i:02d}.parquet", sizes.file_rows, sizes.row_group_rows, seed=i)


def dataset(name: str, sizes: Sizes = FULL) -> Path:
    """The directory of set `name` (tiny, 1m, 4m, 10m, many-shards, images or images-tiny), made if missing."""
    directory = sizes.root / name
    if name == "images":
        for i in range(sizes.image_files):
            write(directory / f"part-{i:02d}.parquet", sizes.image_file_rows, sizes.image_row_group_rows,
                  seed=3000 + i, images=True)
    elif name == "images-tiny":
        write(directory / "part-00.parquet", sizes.image_tiny_rows, sizes.image_row_group_rows, seed=4000,
              images=True)
    elif name == "tiny":
        write(directory / "part-00.parquet", sizes.tiny_rows, sizes.row_group_rows, seed=1000)
    elif name == "many-shards":
        for i in range(sizes.many_files):
            write(directory / f"part-{i:03d}.parquet", sizes.many_groups * sizes.many_group_rows,
                  sizes.many_group_rows, seed=2000 + i)
    elif name in sizes.sets:
        for i in range(sizes.sets[name]):
            link = directory / f"part-{i:02d}.parquet"
            source = pool_file(sizes, i)
            if not link.exists():
                directory.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(source, link)
                except FileExistsError:  # another study linked it first
                    pass
    else:
        raise ValueError(f"unknown data set {name!r}; expected tiny, many-shards, images, images-tiny or one of "
                         f"{', '.join(sizes.sets)}")
    return directory


def outputs(study: str, sizes: Sizes) -> Path:
    """A directory for one run's job outputs, its own (studies may run at once, e.g. a smoke test beside a full run)."""
    return sizes.root / "out" / f"{study}-{os.getpid()}"


def rows(directory: Path) -> int:
    """Rows in a set, from the files' metadata."""
    return sum(pq.ParquetFile(p).metadata.num_rows for p in sorted(directory.glob("*.parquet")))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the smoke run's small sets (under bench/data/quick)")
    parser.add_argument("--sets", default="tiny,4m",
                        help="comma-separated: tiny, 1m, 4m, 10m, many-shards, images, images-tiny")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    made = {}
    for name in args.sets.split(","):
        try:
            directory = dataset(name.strip(), sizes)
        except ValueError as e:
            sys.exit(str(e))
        made[name] = {"path": str(directory), "rows": rows(directory)}
    print(json.dumps(made))


if __name__ == "__main__":
    main()
