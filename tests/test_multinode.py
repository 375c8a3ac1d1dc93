"""Several Ray nodes: a 0-CPU head and two 1-CPU worker nodes (ray.cluster_utils.Cluster), on 127.0.0.1.

The cluster runs in a subprocess of its own (this file run as a script): Cluster must be the only Ray
of its process, and the pytest session may hold one already. The script runs two jobs and writes
what the tests need to know (node ids, which node was removed) next to the outputs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

ROWS, SHARD_ROWS = 600, 50


def run_scenario(root: Path) -> None:
    """Evaluate on both worker nodes; then again, removing a worker node when the first shard is done."""
    import ray
    from conftest import feature_table, write_parquet
    from private_ray import free_port
    from ray.cluster_utils import Cluster

    import cluster as api

    write_parquet(root / "data" / "rows.parquet", feature_table(ROWS, seed=3), row_group_size=SHARD_ROWS)
    fast_failure_detection = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 300,
                              "health_check_timeout_ms": 300, "health_check_failure_threshold": 3}
    ray_cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "node_ip_address": "127.0.0.1", "include_dashboard": False,
        "dashboard_agent_listen_port": free_port(), "_system_config": fast_failure_detection})
    try:
        workers = [ray_cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1") for _ in range(2)]
        ray_cluster.wait_for_nodes()
        ray.init(address=ray_cluster.address, logging_level="WARNING")
        options = {"label": "label", "shard_rows": SHARD_ROWS, "batch_size": SHARD_ROWS,
                   "model_kwargs": {"seconds": 0.4}}
        api.evaluate([str(root / "data")], "fixture_models:slow", str(root / "spread"), **options)

        removed = []

        def remove_the_node_that_finished_the_first_shard(record) -> None:
            # That node's actor is up and still holds the next shard it was given: the loss lands mid-job.
            if not removed:
                removed.append(next(w for w in workers if w.node_id == record.node))
                ray_cluster.remove_node(removed[0], allow_graceful=False)

        api.evaluate([str(root / "data")], "fixture_models:slow", str(root / "node-lost"),
                     on_shard_done=remove_the_node_that_finished_the_first_shard, **options)
        facts = {"worker_nodes": [w.node_id for w in workers], "removed": removed[0].node_id}
        (root / "facts.json").write_text(json.dumps(facts))
    finally:
        ray.shutdown()
        ray_cluster.shutdown()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """Run the script once; its outputs and facts, for the tests below to read."""
    from private_ray import PrivateRay

    root = tmp_path_factory.mktemp("multinode")
    ray_env = PrivateRay()
    try:
        result = ray_env.run([sys.executable, __file__, str(root)], timeout=240)
    finally:
        ray_env.remove()
    assert result.returncode == 0, result.stdout[-4000:]
    return root, json.loads((root / "facts.json").read_text())


def test_actors_are_placed_on_both_worker_nodes(scenario):
    root, facts = scenario
    workers = pq.read_table(root / "spread" / "workers.parquet")
    assert sorted(workers.column("node").to_pylist()) == sorted(facts["worker_nodes"])


def test_shards_are_evaluated_on_both_worker_nodes(scenario):
    root, facts = scenario
    workers = pq.read_table(root / "spread" / "workers.parquet").to_pylist()
    rows_by_node = {w["node"]: w["rows"] for w in workers}
    assert all(rows_by_node[node] > 0 for node in facts["worker_nodes"])
    assert sum(rows_by_node.values()) == ROWS


def test_losing_a_worker_node_mid_job_still_evaluates_every_row_exactly_once(scenario):
    root, _ = scenario
    assert (root / "node-lost" / "_SUCCESS").exists()
    ids = ds.dataset(root / "node-lost" / "predictions").to_table().column("row_id").to_pylist()
    assert sorted(ids) == list(range(ROWS))


def test_the_lost_nodes_worker_counts_a_failure_and_its_running_shard_a_second_attempt(scenario):
    root, facts = scenario
    workers = pq.read_table(root / "node-lost" / "workers.parquet").to_pylist()
    assert [w["failures"] for w in workers if w["node"] == facts["removed"]] == [1]
    attempts = pq.read_table(root / "node-lost" / "shards.parquet").column("attempts").to_pylist()
    assert sorted(attempts)[-1] == 2 and attempts.count(2) == 1


if __name__ == "__main__":
    run_scenario(Path(sys.argv[1]))
