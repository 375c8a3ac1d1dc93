"""Sharded evaluation on Ray: plan shards from Arrow/Parquet metadata, evaluate them on actors, aggregate."""

from cluster.api import EvalResult, evaluate
from cluster.errors import InputError, JobFailed, ShardDataError

__all__ = ["EvalResult", "InputError", "JobFailed", "ShardDataError", "evaluate"]
