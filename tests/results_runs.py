"""A test set with columns to slice by, and the jobs the results tests share, each run once per session.

Two models (the fixture MLP with seeds 0 and 1, named a and b) on two files of 600 and 400 rows
(row groups of 100): every run reads batches of 50 rows, which divide the row groups, so whatever
the sharding or the number of workers each row goes through the models in the same batch and gets
the same outputs, bit for bit (BLAS may round a row differently in a batch of another size).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from conftest import feature_table, write_parquet

import cluster
from cluster.outputs import SUMMARY_KEY

SEED, REPLICATES, LEVEL = 7, 100, 0.9
TWO_MODELS = {"model": ["fixture_models:mlp", "fixture_models:mlp"], "model_kwargs": [{"seed": 0}, {"seed": 1}],
              "name": ["a", "b"]}
MODEL = {"a": {"model": "fixture_models:mlp", "model_kwargs": {"seed": 0}, "name": "a"},
         "b": {"model": "fixture_models:mlp", "model_kwargs": {"seed": 1}, "name": "b"}}
COMMON = {"label": "label", "id": "id", "batch_size": 50, "ci": LEVEL, "bootstrap": REPLICATES, "seed": SEED,
          "top_k": 2, "save_scores": True, "slice_by": ["source", "source,even", "day"]}
RUNS = {
    "a": {**MODEL["a"], "workers": 1, "shard_rows": 300},
    "b": {**MODEL["b"], "workers": 2, "shard_rows": 200},
    "ab": {**TWO_MODELS, "workers": 3, "cpus_per_worker": 0.5, "shard_rows": 100},
    "ab_no_ci": {**TWO_MODELS, "workers": 2, "shard_rows": 300, "ci": 0},
}


def sliced_table(rows: int, seed: int, first_id: int) -> pa.Table:
    """feature_table's features, 3-class labels and ids, with a string `source` (nulls and a rare value), a boolean
    `even` and a date `day`."""
    rng = np.random.default_rng(100 + seed)
    table = feature_table(rows, seed=seed, id_offset=first_id)
    ids = np.arange(first_id, first_id + rows)
    source = rng.choice(np.array(["scan", "photo", "rare"]), rows, p=[0.6, 0.38, 0.02]).astype(object)
    source[rng.random(rows) < 0.05] = None
    days = [datetime.date(2026, 1, 1) + datetime.timedelta(days=int(i % 3)) for i in ids]
    return table.append_column("source", pa.array(source, pa.string())) \
        .append_column("even", pa.array(ids % 2 == 0)).append_column("day", pa.array(days, pa.date32()))


def write_sliced_data(directory: Path) -> Path:
    for i, (rows, first_id) in enumerate(((600, 10_000), (400, 20_000))):
        write_parquet(directory / f"part-{i}.parquet", sliced_table(rows, i, first_id), row_group_size=100)
    return directory


class SlicedRuns:
    """The shared jobs (RUNS), each run on first use; the data they read."""

    def __init__(self, root: Path):
        self.root, self.data = root, write_sliced_data(root / "data")
        self.results: dict = {}

    def __getitem__(self, name: str):
        if name not in self.results:
            self.results[name] = self.run(name, self.root / name)
        return self.results[name]

    def run(self, name: str, output: Path, **options):
        return cluster.evaluate(data=[str(self.data)], output=str(output), **{**COMMON, **RUNS[name], **options})

    def joined(self, result) -> pa.Table:
        """The run's predictions (but lists: a join does not carry them) joined to the data's slice columns by id,
        in id order."""
        data = ds.dataset(self.data).to_table(columns=["id", "source", "even", "day"])
        predictions = result.predictions.to_table()
        scalars = [f.name for f in predictions.schema if not pa.types.is_fixed_size_list(f.type)]
        return predictions.select(scalars).join(data, keys="row_id", right_keys="id").sort_by("row_id")


def column(table: pa.Table, name: str) -> np.ndarray:
    """A column as numpy; fixed-size lists as 2-d arrays."""
    values = table.column(name).combine_chunks()
    if pa.types.is_fixed_size_list(values.type):
        return values.flatten().to_numpy().reshape(len(values), -1)
    return values.to_numpy(zero_copy_only=False)


def footer_summaries(output: str) -> list[dict]:
    """The shard summaries in the committed part files' footers (what a resumed run reads back)."""
    return [json.loads(pq.ParquetFile(part).metadata.metadata[SUMMARY_KEY.encode()])
            for part in sorted(Path(output, "predictions").glob("part-*.parquet"))]
