"""The benchmark's models, importable by Ray workers as 'bench.models:<factory>' (repo root on sys.path).

Each engine model and its PyTorch twin hold the same weights, so the contenders compute the same thing.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from types import ModuleType

import numpy as np

import engine
import engine.nn as nn
from zoo.families import _resnet_classes

SIZES = (64, 256, 10)
SEED = 0
RESNET_WIDTHS = (16, 32, 64)  # the small ResNet's stages (study 6)
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
    return traced(_with_weights_of(model, _mlp()))


@functools.cache
def _small_resnet_class(library: ModuleType) -> type:
    """The small ResNet's class for one layer library (engine.nn or torch.nn), on zoo.families' BasicBlock."""
    basic_block = _resnet_classes(library)[0]

    class SmallResNet(library.Module):
        """ResNet-18's layout scaled to 64x64 inputs: a 3x3 stride-2 stem and max pool (to 16x16), one BasicBlock
        per stage of RESNET_WIDTHS channels (16x16, 8x8, 4x4), global average pooling, a linear classifier."""

        def __init__(self, num_classes: int = SIZES[-1]):
            super().__init__()
            self.conv1 = library.Conv2d(3, RESNET_WIDTHS[0], 3, stride=2, padding=1, bias=False)
            self.bn1 = library.BatchNorm2d(RESNET_WIDTHS[0])
            self.relu = library.ReLU(inplace=True)
            self.maxpool = library.MaxPool2d(3, stride=2, padding=1)
            inplanes = RESNET_WIDTHS[0]
            for i, planes in enumerate(RESNET_WIDTHS, 1):
                setattr(self, f"layer{i}", basic_block(inplanes, planes, 1 if i == 1 else 2))
                inplanes = planes
            self.avgpool = library.AdaptiveAvgPool2d((1, 1))
            self.fc = library.Linear(inplanes, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(self.avgpool(x).flatten(1))

    return SmallResNet


def _small_resnet() -> nn.Module:
    engine.manual_seed(SEED)
    return _small_resnet_class(nn)().eval()


def resnet_small() -> nn.Module:
    """The image study's engine model: a small ResNet (3x64x64 -> 10), the same weights on every call (traced)."""
    return traced(_small_resnet())


def torch_resnet_small():
    """The same small ResNet built with torch.nn and loaded with the engine model's weights (traced)."""
    import torch
    return traced(_with_weights_of(_small_resnet_class(torch.nn)(), _small_resnet()))


def _with_weights_of(torch_model, engine_model):
    """`torch_model` in eval(), loaded with `engine_model`'s state dict (same keys: one definition builds both)."""
    import torch
    weights = {k: torch.from_numpy(np.array(v.numpy())) for k, v in engine_model.state_dict().items()}
    torch_model.load_state_dict(weights)
    return torch_model.eval()


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
