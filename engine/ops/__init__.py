"""The functional op layer: what Tensor methods and the top-level functions call."""

from engine.ops.activation import silu
from engine.ops.arith import (
    add,
    allclose,
    bitwise_not,
    div,
    eq,
    equal,
    floor_divide,
    ge,
    gt,
    isclose,
    le,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    lt,
    maximum,
    minimum,
    mul,
    ne,
    pow,
    remainder,
    sub,
    where,
)
from engine.ops.conv import conv1d, conv2d
from engine.ops.einsum import einsum
from engine.ops.linalg import addmm, baddbmm, bmm, linear, matmul
from engine.ops.norm import batch_norm, layer_norm
from engine.ops.pointwise import abs, cast, clamp, exp, gelu, leaky_relu, log, neg, relu, sigmoid, sqrt, tanh
from engine.ops.pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from engine.ops.rearrange import flip, repeat, repeat_interleave, roll, tril, triu, unbind
from engine.ops.reduce import (
    amax,
    amin,
    argmax,
    argmin,
    log_softmax,
    max,
    mean,
    min,
    norm,
    prod,
    softmax,
    std,
    sum,
    var,
)
from engine.ops.scan import cumsum
from engine.ops.select import all, any, argsort, gather, isfinite, isnan, masked_fill, sort, topk
from engine.ops.shape import (
    cat,
    chunk,
    clone,
    contiguous,
    expand,
    flatten,
    getitem,
    index_put,
    permute,
    reshape,
    sizes,
    split,
    squeeze,
    stack,
    t,
    transpose,
    unflatten,
    unsqueeze,
    view,
)
from engine.ops.special import cos, erf, rsqrt, sin
