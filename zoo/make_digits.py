"""Build the bundled digits test set: `python -m zoo.make_digits [--source digits.csv.gz]`.

Converts the 8x8 handwritten digits that scikit-learn ships in its wheel into zoo/data/digits/train.parquet
and test.parquet (a stratified split with a fixed seed). scikit-learn is needed only to find the source file
once, and is never imported: the file is read with the standard library and numpy.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

OUT_DIR = Path(__file__).parent / "data" / "digits"
SOURCE_IN_WHEEL = Path("datasets") / "data" / "digits.csv.gz"
SPLIT_SEED = 20240601
TEST_FRACTION = 0.2
ROW_GROUP_ROWS = 128
PIXELS, MAX_PIXEL = 64, 16.0

SCHEMA = pa.schema([
    pa.field("id", pa.int64(), nullable=False),
    pa.field("features", pa.list_(pa.float32(), PIXELS), nullable=False),
    pa.field("label", pa.int64(), nullable=False),
])


def find_source() -> tuple[Path, str]:
    """The digits file inside the installed scikit-learn, and that scikit-learn's version."""
    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it (or scipy)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scikit-learn is not installed: `pip install scikit-learn`, or pass --source PATH "
                         "to sklearn/datasets/data/digits.csv.gz")
    path = Path(next(iter(spec.submodule_search_locations))) / SOURCE_IN_WHEEL
    if not path.is_file():
        raise SystemExit(f"{path} is missing from the installed scikit-learn; pass --source PATH")
    return path, importlib.metadata.version("scikit-learn")


def read_source(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(pixels (n, 64) in 0..16, labels (n,)) from sklearn's digits.csv.gz: 64 pixel columns, then the label."""
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.ndim != 2 or table.shape[1] != PIXELS + 1:
        raise SystemExit(f"{path}: expected {PIXELS + 1} columns per row (64 pixels and a label), "
                         f"got shape {table.shape}")
    pixels, labels = table[:, :PIXELS], table[:, PIXELS]
    if pixels.min() < 0 or pixels.max() > MAX_PIXEL or set(np.unique(labels)) != set(range(10)):
        raise SystemExit(f"{path}: pixels must lie in 0..16 and labels cover 0..9")
    return pixels, labels


def stratified_split(labels: np.ndarray, seed: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(train ids, test ids), each sorted: every class gives round(test_fraction * its size) rows to test."""
    rng = np.random.default_rng(seed)
    test = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        test.append(rng.permutation(members)[: round(test_fraction * len(members))])
    test_ids = np.sort(np.concatenate(test))
    train_ids = np.setdiff1d(np.arange(len(labels)), test_ids)
    return train_ids, test_ids


def write_split(path: Path, ids: np.ndarray, pixels: np.ndarray, labels: np.ndarray, provenance: dict) -> None:
    """One split as Parquet: id, features (64 float32 in [0, 1]), label; ROW_GROUP_ROWS rows per row group."""
    values = (pixels[ids] / MAX_PIXEL).astype(np.float32).reshape(-1)
    features = pa.FixedSizeListArray.from_arrays(pa.array(values, pa.float32()), PIXELS)
    table = pa.Table.from_arrays([pa.array(ids, pa.int64()), features, pa.array(labels[ids], pa.int64())],
                                 schema=SCHEMA.with_metadata({k: str(v) for k, v in provenance.items()}))
    pq.write_table(table, path, row_group_size=ROW_GROUP_ROWS, compression="zstd")


def main(argv: list[str] | None = None) -> None:
    """Write train.parquet and test.parquet under zoo/data/digits from scikit-learn's digits.csv.gz."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, help="path to digits.csv.gz (default: the installed scikit-learn's)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"output directory (default {OUT_DIR})")
    args = parser.parse_args(argv)
    if args.source is not None:
        source, version = args.source, _version_or_unknown()
    else:
        source, version = find_source()
    pixels, labels = read_source(source)
    train_ids, test_ids = stratified_split(labels, SPLIT_SEED, TEST_FRACTION)
    args.out.mkdir(parents=True, exist_ok=True)
    for split, ids in (("train", train_ids), ("test", test_ids)):
        provenance = {"source_file": "sklearn/" + SOURCE_IN_WHEEL.as_posix(), "scikit_learn_version": version,
                      "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(), "split": split,
                      "split_seed": SPLIT_SEED, "test_fraction": TEST_FRACTION, "pixel_scale": f"1/{MAX_PIXEL:g}"}
        write_split(args.out / f"{split}.parquet", ids, pixels, labels, provenance)
        print(f"{split}: {len(ids)} rows -> {args.out / f'{split}.parquet'}")


def _version_or_unknown() -> str:
    try:
        return importlib.metadata.version("scikit-learn")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    main()
