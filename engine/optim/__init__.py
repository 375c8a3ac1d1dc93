"""engine.optim: PyTorch's optimizers (SGD, Adam, AdamW) with its update rules and state dict layout."""

from engine.optim import lr_scheduler
from engine.optim.adam import Adam, AdamW
from engine.optim.optimizer import Optimizer
from engine.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "lr_scheduler"]
