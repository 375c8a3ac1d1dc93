"""What the Poisson bootstrap costs a worker per batch, beside what the model costs.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/bootstrap_cost.py [--rows 4096] [--replicates 200]

Prints the best of many rounds, in microseconds per batch, with BLAS on one thread as in a worker:
the weights alone (uint8 and float32), one accumulate step for loss and accuracy, the same with
macro-F1's per-class columns (10 classes), and the forward pass of the bundled ConvNet and of the
benchmarks' MLP on the same rows, so the bootstrap's share of a batch can be read off.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import engine  # noqa: E402
import zoo  # noqa: E402
from bench.models import mlp_64_256_10  # noqa: E402
from cluster import bootstrap  # noqa: E402

CLASSES = 10


def best_us(steps: dict, turns: int) -> dict[str, float]:
    """Each step's fastest call over `turns` rounds, in microseconds; rounds visit every step in turn, so that the
    machine's other load (which only slows calls down) falls on all of them alike."""
    best = {name: float("inf") for name in steps}
    for _ in range(turns):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: seconds * 1e6 for name, seconds in best.items()}


def accumulate(row_ids, losses, labels, predictions, replicates: int, per_class: bool) -> None:
    """One batch's bootstrap work in a worker: weights, the value columns, one matmul into the sums."""
    sums = bootstrap.BootstrapSums(replicates, bootstrap.classification_columns(CLASSES, per_class))
    weights = bootstrap.poisson_weights(0, row_ids, replicates)
    sums.add(weights, bootstrap.classification_values(losses, labels, predictions, CLASSES, per_class))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, replicates = args.rows, args.replicates
    row_ids = np.arange(10**9, 10**9 + n, dtype=np.int64)
    labels = rng.integers(0, CLASSES, n)
    predictions = np.where(rng.random(n) < 0.9, labels, rng.integers(0, CLASSES, n))
    losses = rng.exponential(size=n).astype(np.float32)
    convnet, mlp = zoo.FACTORIES["convnet"]().eval(), mlp_64_256_10().eval()
    images = engine.from_numpy(rng.random((n, 1, 8, 8), dtype=np.float32))
    vectors = engine.from_numpy(rng.random((n, 64), dtype=np.float32))
    steps = {
        "poisson_weights, uint8": lambda: bootstrap.poisson_weights(0, row_ids, replicates, np.uint8),
        "poisson_weights, float32": lambda: bootstrap.poisson_weights(0, row_ids, replicates),
        "accumulate: loss, accuracy": lambda: accumulate(row_ids, losses, labels, predictions, replicates, False),
        f"accumulate: + macro-F1 ({CLASSES} classes)":
            lambda: accumulate(row_ids, losses, labels, predictions, replicates, True),
        "forward: benchmarks' MLP 64-256-10": lambda: mlp(vectors).numpy(),
    }
    print(f"{n} rows x {replicates} replicates, best of {args.turns} rounds, one BLAS thread")
    with threadpool_limits(1), engine.no_grad():
        convnet_us = best_us({"convnet": lambda: convnet(images).numpy()}, max(3, args.turns // 40))["convnet"]
        for name, us in {**best_us(steps, args.turns), "forward: bundled ConvNet": convnet_us}.items():
            print(f"  {name:42s} {us:10,.0f} us")

if __name__ == "__main__":
    main()
