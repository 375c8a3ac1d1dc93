"""A first look at the engine: one MLP evaluated with grad recording on, then under no_grad.

Run it with `python -m jobs.demo`. It prints time and the engine's memory gauges for both, which
is the saving the batch-evaluation system is built on.
"""

from __future__ import annotations

import time

import engine
import engine.nn as nn


def _run(model: nn.Module, batches: list, grad_enabled: bool) -> dict:
    engine.reset_peak_memory_stats()
    start = time.perf_counter()
    with engine.set_grad_enabled(grad_enabled):
        outputs = [model(x) for x in batches]  # kept alive, as a result list would be
    seconds = time.perf_counter() - start
    stats = engine.memory_stats()
    del outputs
    return {"seconds": seconds, "saved_peak": stats["saved_bytes.peak"],
            "allocated_peak": stats["allocated_bytes.peak"]}


def main() -> None:
    engine.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
    model.eval()
    batches = [engine.randn(512, 784) for _ in range(8)]
    print(model)
    for label, enabled in (("grad enabled", True), ("no_grad", False)):
        r = _run(model, batches, enabled)
        print(f"{label:>13}: {r['seconds'] * 1e3:7.1f} ms, saved for backward peak {r['saved_peak'] / 2**20:7.1f} MiB, "
              f"allocated peak {r['allocated_peak'] / 2**20:7.1f} MiB")


if __name__ == "__main__":
    main()
