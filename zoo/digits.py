"""Read a bundled digits split into numpy arrays (the shape the training job and the tests want)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq


def read_digits(path: Path | str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids int64 (n,), features float32 (n, 64) in [0, 1], labels int64 (n,)) from a digits Parquet file."""
    table = pq.read_table(path, columns=["id", "features", "label"])
    features = table.column("features").combine_chunks()
    pixels = features.flatten().to_numpy().reshape(len(table), features.type.list_size)
    return table.column("id").to_numpy(), pixels, table.column("label").to_numpy()
