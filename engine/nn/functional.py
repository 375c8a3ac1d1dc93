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
from engine.ops import gelu, linear, log_softmax, sigmoid, softmax, tanh  # noqa: F401
from engine.ops.activation import (  # noqa: F401 (relu, leaky_relu and silu here take inplace, as in PyTorch)
    elu,
    elu_,
    hardsigmoid,
    hardswish,
    hardtanh,
    hardtanh_,
    leaky_relu,
    leaky_relu_,
    mish,
    prelu,
    relu,
    relu6,
    relu_,
    silu,
    softplus,
)
from engine.ops.attention import scaled_dot_product_attention  # noqa: F401, E402
from engine.ops.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d  # noqa: F401
from engine.ops.norm import batch_norm, group_norm, instance_norm, layer_norm  # noqa: F401
from engine.ops.padding import pad  # noqa: F401
from engine.ops.pooling import (  # noqa: F401
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
)
from engine.ops.reduce import normalize  # noqa: F401
from engine.ops.resample import (  # noqa: F401
    interpolate,
    pixel_shuffle,
    pixel_unshuffle,
    upsample,
    upsample_bilinear,
    upsample_nearest,
)
