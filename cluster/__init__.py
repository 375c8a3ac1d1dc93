"""Sharded evaluation on Ray: plan shards from Arrow/Parquet metadata, evaluate them on actors, aggregate.

Importing `cluster` does not import Ray: only the pool (cluster.pool) does, when a job runs.
"""

from cluster.config import JobConfig
from cluster.errors import InputError, JobFailed, ShardDataError
from cluster.job import EvalResult, evaluate

__all__ = ["EvalResult", "InputError", "JobConfig", "JobFailed", "ShardDataError", "evaluate"]
