"""The errors a job can end with, each naming its culprit."""


class InputError(ValueError):
    """The inputs or options cannot work (missing path, bad column, wrong width...), found before any actor starts."""


class ShardDataError(RuntimeError):
    """A shard's data cannot be evaluated (nulls, ragged lists, bad values): retrying will not help."""


class JobFailed(RuntimeError):
    """The job started but could not finish (e.g. a shard failed all its attempts)."""
