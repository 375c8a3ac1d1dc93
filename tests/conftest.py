"""Shared fixtures: one real local Ray for the whole session, and small Arrow/Parquet data sets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

TESTS = Path(__file__).parent
pytest_plugins = ["no_skips"]  # CI: a skip is a failure

# Ray workers must import tests/fixture_models.py; they inherit this process's environment.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray with 2 CPUs, started once for the session and stopped at its end."""
    import ray
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def feature_table(rows: int, width: int = 8, seed: int = 0, classes: int = 3, id_offset: int | None = None) -> pa.Table:
    """A table with a fixed-size-list float32 `features` column, an int64 `label`, and optionally an `id`."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, width)).astype(np.float32)
    columns = {"features": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), width),
               "label": pa.array(rng.integers(0, classes, rows), pa.int64())}
    if id_offset is not None:
        columns["id"] = pa.array(np.arange(id_offset, id_offset + rows, dtype=np.int64))
    return pa.table(columns)


def write_parquet(path: Path, table: pa.Table, row_group_size: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def write_arrow(path: Path, table: pa.Table, batch_rows: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with ipc.new_file(path, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)
    return path


@pytest.fixture
def dataset(tmp_path) -> Path:
    """Three Parquet files of 300, 250 and 170 rows (row groups of 100) in one directory."""
    for i, rows in enumerate((300, 250, 170)):
        write_parquet(tmp_path / "data" / f"part-{i}.parquet", feature_table(rows, seed=i))
    return tmp_path / "data"


@pytest.fixture(scope="session")
def sliced_runs(ray_cluster, tmp_path_factory):
    """The results tests' shared jobs on a test set with slice columns, each run once (tests/results_runs.py)."""
    from results_runs import SlicedRuns
    return SlicedRuns(tmp_path_factory.mktemp("sliced"))
