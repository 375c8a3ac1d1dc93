"""engine.nn.functional: the functional forms of the layers and losses."""

from __future__ import annotations

from engine.ops import gelu, leaky_relu, linear, log_softmax, relu, sigmoid, silu, softmax, tanh  # noqa: F401
