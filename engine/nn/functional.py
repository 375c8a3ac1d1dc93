"""engine.nn.functional: the functional forms of the layers and losses."""

from __future__ import annotations

from engine.nn.attention import multi_head_attention_forward  # noqa: F401, E402
from engine.nn.dropout import dropout  # noqa: F401
from engine.nn.embedding import embedding  # noqa: F401
from engine.nn.losses_functional import (  # noqa: F401
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    l1_loss,
    mse_loss,
    nll_loss,
    one_hot,
)
from engine.ops import gelu, leaky_relu, linear, log_softmax, relu, sigmoid, silu, softmax, tanh  # noqa: F401
from engine.ops.attention import scaled_dot_product_attention  # noqa: F401, E402
from engine.ops.conv import conv1d, conv2d  # noqa: F401
from engine.ops.norm import batch_norm, layer_norm  # noqa: F401
from engine.ops.pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d  # noqa: F401
from engine.ops.reduce import normalize  # noqa: F401
