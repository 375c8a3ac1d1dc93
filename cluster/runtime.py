"""Connecting to Ray: an existing cluster when given an address, else a local single-node Ray."""

from __future__ import annotations

import logging
import os

import ray


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Make sure Ray is up; True when this call started it (and so should shut it down).

    `address` is 'auto', 'ray://host:port' or a head's 'host:port'; without one (and without
    RAY_ADDRESS) a local single-node Ray is started with `num_cpus` CPUs (all cores by default).
    """
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    options = {"logging_level": logging.WARNING, "log_to_driver": True}
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, **options)
    return True


def cluster_cpus() -> int:
    """CPUs the cluster has now."""
    return int(ray.cluster_resources().get("CPU", 1))
