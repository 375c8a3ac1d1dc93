"""The bundled demo: the digits test set, the model zoo and its checkpoints (trained by `python -m jobs.train_demo`).

Everything here ships inside the package, so `python -m jobs.evaluate` runs on a fresh machine with no download.
"""

from pathlib import Path

from zoo.models import convnet, mlp

_HERE = Path(__file__).parent

FACTORIES = {"mlp": mlp, "convnet": convnet}
WEIGHTS = {name: _HERE / "weights" / f"{name}.safetensors" for name in FACTORIES}
INPUT_SHAPES = {"mlp": (64,), "convnet": (1, 8, 8)}
DIGITS_TRAIN = _HERE / "data" / "digits" / "train.parquet"
DIGITS_TEST = _HERE / "data" / "digits" / "test.parquet"

__all__ = ["DIGITS_TEST", "DIGITS_TRAIN", "FACTORIES", "INPUT_SHAPES", "WEIGHTS", "convnet", "mlp"]
