"""engine.nn: modules with PyTorch's names, registration rules and numerics."""

from engine.nn import functional, init  # noqa: F401
from engine.nn.containers import Sequential
from engine.nn.layers import Identity, Linear, ReLU
from engine.nn.module import Module
from engine.nn.parameter import Parameter

__all__ = ["Identity", "Linear", "Module", "Parameter", "ReLU", "Sequential"]
