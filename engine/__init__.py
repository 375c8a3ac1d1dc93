"""engine: a numpy tensor/autograd library with PyTorch's names and semantics.

`import engine as torch` runs a PyTorch inference script on the CPU without PyTorch installed.
"""

from engine import autograd, cuda, nn, optim
from engine.creation import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from engine.device import device
from engine.dtypes import (
    bool,
    dtype,
    float16,
    float32,
    float64,
    get_default_dtype,
    int8,
    int16,
    int32,
    int64,
    set_default_dtype,
    uint8,
)
from engine.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from engine.memory import memory_stats, memory_summary, reset_peak_memory_stats
from engine.ops import (
    abs,
    add,
    all,
    allclose,
    amax,
    amin,
    any,
    argmax,
    argmin,
    argsort,
    cat,
    chunk,
    clamp,
    clone,
    conv1d,
    conv2d,
    div,
    eq,
    equal,
    exp,
    flatten,
    floor_divide,
    gather,
    ge,
    gt,
    isclose,
    isfinite,
    isnan,
    le,
    log,
    log_softmax,
    logical_and,
    logical_or,
    lt,
    masked_fill,
    matmul,
    max,
    max_pool2d,
    maximum,
    mean,
    min,
    minimum,
    mul,
    ne,
    neg,
    norm,
    permute,
    pow,
    prod,
    relu,
    remainder,
    reshape,
    sigmoid,
    softmax,
    sort,
    split,
    sqrt,
    squeeze,
    stack,
    std,
    sub,
    sum,
    t,
    tanh,
    topk,
    transpose,
    unsqueeze,
    var,
    where,
)
from engine.serialization import load, save
from engine.tensor import Size, Tensor

# PyTorch's aliases, for ported code.
float = float32  # noqa: A001
double = float64
half = float16
long = int64
int = int32  # noqa: A001
clip = clamp
mm = matmul
concat = concatenate = cat

__version__ = "0.1.0"
