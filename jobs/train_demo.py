"""Train the zoo's models on the bundled digits with the engine alone: `python -m jobs.train_demo [--model all]`.

Each model trains on zoo/data/digits/train.parquet with AdamW and cross-entropy (the ConvNet on randomly
shifted images), is scored on the held-out test split in eval mode under no_grad, and is saved to
zoo/weights/<name>.safetensors.
The run is seeded, so it gives the same checkpoint on the same machine every time.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import engine
import engine.nn as nn
import zoo
from engine.optim import AdamW
from engine.optim.lr_scheduler import CosineAnnealingLR
from zoo.digits import read_digits


@dataclass(frozen=True)
class Recipe:
    """How one model is trained."""

    epochs: int
    lr: float
    weight_decay: float
    shift: bool  # augment with random 1-pixel shifts (the ConvNet gains from it; the MLP, blind to space, loses)
    batch_size: int = 64
    seed: int = 0


RECIPES = {
    "mlp": Recipe(epochs=80, lr=2e-3, weight_decay=1e-3, shift=False),
    "convnet": Recipe(epochs=20, lr=3e-3, weight_decay=1e-3, shift=True),
}


def shift_images(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each 8x8 image (rows of 64 pixels) moved by a random -1, 0 or +1 pixel on each axis, zeros shifted in."""
    images = x.reshape(-1, 8, 8)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    dy, dx = rng.integers(0, 3, size=(2, len(x)))
    rows = dy[:, None] + np.arange(8)  # (n, 8): which padded rows each image keeps
    cols = dx[:, None] + np.arange(8)
    out = padded[np.arange(len(x))[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.reshape(len(x), 64)


def as_input(x: np.ndarray, name: str) -> engine.Tensor:
    """Rows of 64 pixels in the shape the model takes (its zoo.INPUT_SHAPES entry, after the batch dim)."""
    return engine.from_numpy(np.ascontiguousarray(x.reshape(len(x), *zoo.INPUT_SHAPES[name])))


def accuracy(model: nn.Module, name: str, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows the model classifies right, in eval mode under no_grad."""
    model.eval()
    with engine.no_grad():
        predicted = model(as_input(x, name)).argmax(dim=1).numpy()
    return float((predicted == y).mean())


def train(name: str, recipe: Recipe, x: np.ndarray, y: np.ndarray) -> nn.Module:
    """A zoo model trained on (x, y) by the recipe: shuffled mini-batches, cosine-decayed lr."""
    engine.manual_seed(recipe.seed)  # the initial weights and dropout masks
    rng = np.random.default_rng(recipe.seed)  # batch order and shifts
    model = zoo.FACTORIES[name]()
    optimizer = AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = CosineAnnealingLR(optimizer, T_max=recipe.epochs)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(recipe.epochs):
        model.train()
        order = rng.permutation(len(x))
        for start in range(0, len(x), recipe.batch_size):
            batch = order[start:start + recipe.batch_size]
            pixels = shift_images(x[batch], rng) if recipe.shift else x[batch]
            loss = loss_fn(model(as_input(pixels, name)), engine.from_numpy(y[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
    return model


def main(argv: list[str] | None = None) -> None:
    """Train, score and save the chosen zoo models."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=[*zoo.FACTORIES, "all"], default="all")
    parser.add_argument("--out", type=Path, default=None, help="directory for the checkpoints (default zoo/weights)")
    args = parser.parse_args(argv)
    _, x_train, y_train = read_digits(zoo.DIGITS_TRAIN)
    _, x_test, y_test = read_digits(zoo.DIGITS_TEST)
    for name in zoo.FACTORIES if args.model == "all" else [args.model]:
        started = time.perf_counter()
        model = train(name, RECIPES[name], x_train, y_train)
        seconds = time.perf_counter() - started
        path = zoo.WEIGHTS[name] if args.out is None else args.out / zoo.WEIGHTS[name].name
        path.parent.mkdir(parents=True, exist_ok=True)
        engine.save(model.state_dict(), path)
        print(f"{name}: train accuracy {accuracy(model, name, x_train, y_train):.4f}, "
              f"test accuracy {accuracy(model, name, x_test, y_test):.4f} ({len(y_test)} rows), "
              f"trained in {seconds:.1f}s -> {path}")


if __name__ == "__main__":
    main()
