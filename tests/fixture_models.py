"""Models the cluster tests evaluate (importable by Ray workers: conftest puts tests/ on PYTHONPATH)."""

from __future__ import annotations

import os

import engine
import engine.nn as nn


def mlp(width: int = 8, classes: int = 3, seed: int = 0) -> nn.Module:
    """A small deterministic MLP."""
    engine.manual_seed(seed)
    return nn.Sequential(nn.Linear(width, 16), nn.ReLU(), nn.Linear(16, classes))


class ExitOnce(nn.Module):
    """Kills its own process on its first forward in the first worker to get there (a marker file decides)."""

    def __init__(self, marker: str, width: int = 8):
        super().__init__()
        self.inner = mlp(width)
        self.marker = marker

    def forward(self, x):
        if len(x) == 1:
            return self.inner(x)  # the driver's one-row probe of the model must survive
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL)
            os.close(fd)
            os._exit(1)
        except FileExistsError:
            pass
        return self.inner(x)


def exit_once(marker: str, width: int = 8) -> nn.Module:
    return ExitOnce(marker, width)


class ExitOnRow(nn.Module):
    """Kills its process whenever a batch holds the poisoned feature value (a shard that always crashes)."""

    def __init__(self, poison: float, width: int = 8):
        super().__init__()
        self.inner = mlp(width)
        self.poison = poison

    def forward(self, x):
        if (x == self.poison).any().item():
            os._exit(1)
        return self.inner(x)


def exit_on_row(poison: float, width: int = 8) -> nn.Module:
    return ExitOnRow(poison, width)


class Stubborn(nn.Module):
    """A module whose train() refuses to leave training mode (bad eval hygiene)."""

    def train(self, mode: bool = True):
        self.training = True
        return self

    def forward(self, x):
        return x


def stubborn() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 3), Stubborn())


class GradLeaker(nn.Module):
    """Re-enables grad inside its forward: its output carries a graph even under no_grad."""

    def __init__(self):
        super().__init__()
        self.inner = mlp()

    def forward(self, x):
        with engine.enable_grad():
            return self.inner(x)


def grad_leaker() -> nn.Module:
    return GradLeaker()


class Slow(nn.Module):
    """An MLP that sleeps on every batch, so a test can interrupt a job midway."""

    def __init__(self, seconds: float, width: int = 8):
        super().__init__()
        self.inner = mlp(width)
        self.seconds = seconds

    def forward(self, x):
        import time
        if len(x) > 1:
            time.sleep(self.seconds)
        return self.inner(x)


def slow(seconds: float = 0.3, width: int = 8) -> nn.Module:
    return Slow(seconds, width)


def regressor(width: int = 8) -> nn.Module:
    engine.manual_seed(1)
    return nn.Sequential(nn.Linear(width, 4), nn.Tanh(), nn.Linear(4, 1))
