"""The benchmark's models, importable by Ray workers as 'bench.models:<factory>' (repo root on sys.path).

The engine MLP and its PyTorch twin hold the same weights, so the contenders compute the same thing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

import engine
import engine.nn as nn

SIZES = (64, 256, 10)
SEED = 0
TRACE_DIR = "BENCH_TRACE_DIR"  # when set, every forward appends "<end time> <rows>" to a file of its process there


def _mlp() -> nn.Module:
    engine.manual_seed(SEED)
    return nn.Sequential(nn.Linear(SIZES[0], SIZES[1]), nn.ReLU(), nn.Linear(SIZES[1], SIZES[2])).eval()


def mlp_64_256_10() -> nn.Module:
    """The benchmark's engine MLP: 64 -> 256 -> ReLU -> 10, the same weights on every call (traced, see traced)."""
    return traced(_mlp())


def torch_mlp_64_256_10():
    """The same MLP built with torch.nn and loaded with the engine model's weights (for Ray Data's torch run)."""
    import torch
    model = torch.nn.Sequential(torch.nn.Linear(SIZES[0], SIZES[1]), torch.nn.ReLU(),
                                torch.nn.Linear(SIZES[1], SIZES[2]))
    weights = {k: torch.from_numpy(np.array(v.numpy())) for k, v in _mlp().state_dict().items()}
    model.load_state_dict(weights)
    return traced(model.eval())


def traced(model):
    """The model, logging each forward's end time and rows when $BENCH_TRACE_DIR is set (engine or torch alike).

    The log shows a job's steady state from inside: rows between its first and last forward over the
    time between them, whatever Ray's start-up cost that run (see read_traces).
    """
    directory = os.environ.get(TRACE_DIR)
    if directory:
        path = Path(directory) / f"trace-{os.getpid()}.txt"

        def log(module, args, output):
            with open(path, "a") as f:
                f.write(f"{time.time():.6f} {len(output)}\n")
        model.register_forward_hook(log)
    return model


def read_traces(directory: Path) -> dict:
    """Forwards logged under `directory` (all processes): rows per second from the first forward's end to the last's.

    One-row forwards are left out: they are the pipeline driver's probe, run before Ray starts.
    """
    events = sorted((float(t), int(n)) for path in Path(directory).glob("trace-*.txt")
                    for t, n in (line.split() for line in path.read_text().splitlines() if line) if int(n) > 1)
    if len(events) < 2:
        return {"forwards": len(events), "rows_per_s": None}
    span = events[-1][0] - events[0][0]
    rows = sum(n for _, n in events[1:])  # rows finished after the first forward ended
    return {"forwards": len(events), "processes": len(list(Path(directory).glob("trace-*.txt"))), "span_s": span,
            "rows_per_s": rows / span if span > 0 else None}


class Noop(nn.Module):
    """A model that does (almost) nothing: the first ten features as the ten class scores.

    With it a shard costs only its reading, writing and scheduling, so the driver's per-shard
    overhead shows.
    """

    def forward(self, x):
        return x[:, :SIZES[-1]]


def noop() -> nn.Module:
    """Factory for Noop."""
    return Noop().eval()
