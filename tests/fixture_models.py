"""Models the cluster tests evaluate (importable by Ray workers: conftest puts tests/ on PYTHONPATH)."""

from __future__ import annotations

import dataclasses
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


def _first(marker: str) -> bool:
    """True in exactly one process and call: whoever creates the marker file first."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        return True
    except FileExistsError:
        return False


class Hiccup(nn.Module):
    """Sleeps once on a forward (the first to take the marker), writing its pid there first and 'done' after.

    A test reads the pid to make this worker unreachable, or lets the sleep make it a straggler.
    """

    def __init__(self, marker: str, seconds: float, pause: float = 0.05, width: int = 8):
        super().__init__()
        self.inner, self.marker, self.seconds, self.pause = mlp(width), marker, seconds, pause

    def forward(self, x):
        import time
        if len(x) > 1 and _first(self.marker):
            with open(self.marker, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(self.seconds)
            with open(self.marker + ".done", "w") as f:
                f.write("finished")
        elif len(x) > 1:
            time.sleep(self.pause)
        return self.inner(x)


def hiccup(marker: str, seconds: float, pause: float = 0.05, width: int = 8) -> nn.Module:
    return Hiccup(marker, seconds, pause, width)


class FlakyStorage(nn.Module):
    """Raises a connection reset on the first forward of each shard-sized batch of rows, as storage might."""

    def __init__(self, marker_dir: str, width: int = 8):
        super().__init__()
        self.inner, self.marker_dir = mlp(width), marker_dir

    def forward(self, x):
        if len(x) > 1 and _first(os.path.join(self.marker_dir, f"{float(x[0, 0].item()):.6f}")):
            raise ConnectionResetError("connection reset by peer (simulated)")
        return self.inner(x)


def flaky_storage(marker_dir: str, width: int = 8) -> nn.Module:
    return FlakyStorage(marker_dir, width)


class InfOnRows(nn.Module):
    """An MLP whose output is -infinity for rows whose first feature is above a threshold."""

    def __init__(self, above: float, width: int = 8):
        super().__init__()
        self.inner, self.above = mlp(width), above

    def forward(self, x):
        bad = (x[:, :1] > self.above).float()
        return self.inner(x) + (1 - bad).log()  # log(0): -inf on those rows, 0 elsewhere


def inf_on_rows(above: float, width: int = 8) -> nn.Module:
    return InfOnRows(above, width)


def raising_factory() -> nn.Module:
    raise KeyError("no such checkpoint entry: 'encoder.weight'")


def image_net(channels: int = 3, classes: int = 4, seed: int = 0) -> nn.Module:
    """A tiny ConvNet over N x C x H x W images of any size (global average pooling before the classifier)."""
    engine.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(channels, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(6, classes))


class MaskedMean(nn.Module):
    """forward(ids, mask): the mean of the token embeddings the mask keeps, then a linear classifier."""

    def __init__(self, vocab: int, dim: int, classes: int):
        super().__init__()
        self.embed, self.head = nn.Embedding(vocab, dim), nn.Linear(dim, classes)

    def forward(self, ids, mask):
        keep = mask.float().unsqueeze(-1)
        return self.head((self.embed(ids) * keep).sum(dim=1) / keep.sum(dim=1))


def masked_mean(vocab: int = 50, dim: int = 8, classes: int = 3, seed: int = 0) -> nn.Module:
    engine.manual_seed(seed)
    return MaskedMean(vocab, dim, classes)


class Outputs(nn.Module):
    """An MLP returning its logits inside a tuple, a dict or a dataclass, beside another tensor."""

    def __init__(self, form: str, width: int = 8):
        super().__init__()
        self.inner, self.form = mlp(width), form

    def forward(self, x):
        logits = self.inner(x)
        if self.form == "tuple":
            return x.sum(dim=1, keepdim=True), logits  # the logits second: --output-key 1 picks them
        if self.form == "dict":
            return {"hidden": x, "logits": logits}
        return Scored(hidden=x, logits=logits)


@dataclasses.dataclass
class Scored:
    hidden: object
    logits: object


def outputs(form: str = "dict", width: int = 8) -> nn.Module:
    return Outputs(form, width)


class Reshape(nn.Module):
    """Each row's 8 features as a 2 x 4 map, times two: a per-row tensor output."""

    def forward(self, x):
        return x.reshape(len(x), 2, 4) * 2


def reshape() -> nn.Module:
    return Reshape()


def doubled(columns: dict):
    """A --transform: the features column, doubled (the reader hands it over as a (rows, 8) array)."""
    return columns["features"].astype("float32") * 2
