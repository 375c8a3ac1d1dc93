"""Matrix products: matmul with PyTorch's 1-D/batched rules, and the fused linear layer."""

from __future__ import annotations

import numpy as np

from engine.autograd.function import Function
from engine.broadcast import broadcast_mismatch, unbroadcast
from engine.ops.arith import coerce
from engine.tensor import Tensor


class Matmul(Function):
    def forward(self, a, b):
        self.save(a, b)
        return np.matmul(a, b)

    def backward(self, g):
        a, b = self.saved_arrays()
        if a.ndim == 1 and b.ndim == 1:
            return g * b, g * a
        # Lift 1-D operands to matrices, as matmul itself does, then drop the added axis again.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = np.expand_dims(g, -2) if a.ndim == 1 else g
        g2 = np.expand_dims(g2, -1) if b.ndim == 1 else g2
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = np.matmul(g2, np.swapaxes(b2, -1, -2))
            ga = unbroadcast(ga.squeeze(-2) if a.ndim == 1 else ga, a.shape)
        if self.needs_input_grad[1]:
            gb = np.matmul(np.swapaxes(a2, -1, -2), g2)
            gb = unbroadcast(gb.squeeze(-1) if b.ndim == 1 else gb, b.shape)
        return ga, gb


class Linear(Function):
    """x @ weight.T + bias in one pass: the GEMM writes a fresh output and the bias adds in place."""

    def forward(self, x, weight, bias):
        if x.ndim > 2 and x.flags.c_contiguous:  # one big GEMM, not one per leading index
            out = (x.reshape(-1, x.shape[-1]) @ weight.T).reshape(x.shape[:-1] + weight.shape[:1])
        else:
            out = x @ weight.T
        if bias is not None:
            out += bias
        # The weight's gradient needs x, x's gradient needs the weight: keep only what will be used.
        self.save(x if self.needs(1) else None, weight if self.needs(0) else None)
        return out

    def backward(self, g):
        x, weight = self.saved_arrays()
        need_x, need_w, need_b = self.needs_input_grad
        g2 = g.reshape(-1, g.shape[-1])
        gx = g @ weight if need_x else None
        gw = g2.T @ x.reshape(-1, x.shape[-1]) if need_w else None
        gb = g2.sum(axis=0) if need_b else None
        return gx, gw, gb


def _check_matmul(a: Tensor, b: Tensor) -> None:
    if a._data.ndim == 0 or b._data.ndim == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are "
                           f"{a._data.ndim}D and {b._data.ndim}D")
    inner_a = a.shape[-1]
    inner_b = b.shape[0] if b._data.ndim == 1 else b.shape[-2]
    if inner_a != inner_b:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({_fmt(a.shape)} and {_fmt(b.shape)})")
    batch_mismatch = broadcast_mismatch(a.shape[:-2], b.shape[:-2])
    if batch_mismatch:
        raise RuntimeError(batch_mismatch)


def _fmt(shape) -> str:
    return "x".join(map(str, shape))


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with broadcasting batch dimensions; 1-D operands as in PyTorch."""
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a._data.dtype is not b._data.dtype:
        # PyTorch does not promote here, and a silent float32 -> float64 would cost twice the memory.
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {a.dtype!r} != {b.dtype!r}")
    a, b = coerce(a, b)
    _check_matmul(a, b)
    return Matmul.apply(a, b)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, fused."""
    if x.shape[-1] != weight.shape[-1]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied "
                           f"({_fmt((int(np.prod(x.shape[:-1])), x.shape[-1]))} and {_fmt(weight.shape[::-1])})")
    if x._data.dtype is not weight._data.dtype:
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got {x.dtype!r} and {weight.dtype!r}")
    if bias is not None and (bias.shape != weight.shape[:1] or bias._data.dtype is not weight._data.dtype):
        raise RuntimeError(f"linear: bias of shape {list(bias.shape)} and dtype {bias.dtype!r} does not match "
                           f"the {weight.shape[0]} outputs of dtype {weight.dtype!r}")
    return Linear.apply(x, weight, bias)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    """Batched matrix product of (B, n, m) and (B, m, p) tensors, no broadcasting."""
    if a._data.ndim != 3 or b._data.ndim != 3:
        raise RuntimeError(f"batch1 must be a 3D tensor (got {a._data.ndim}D) and batch2 must be a 3D tensor "
                           f"(got {b._data.ndim}D)")
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{a.shape[0]}, {a.shape[2]}] but got: [{b.shape[0]}, {b.shape[1]}].")
    return matmul(a, b)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * bmm(batch1, batch2); with beta = 0, input is ignored (nan and inf too)."""
    return _scaled_sum(input, bmm(batch1, batch2), beta, alpha)


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * (mat1 @ mat2), for 2-D mat1 and mat2."""
    if mat1._data.ndim != 2 or mat2._data.ndim != 2:
        raise RuntimeError(f"addmm: mat1 and mat2 must be matrices, got {mat1._data.ndim}D and {mat2._data.ndim}D")
    return _scaled_sum(input, matmul(mat1, mat2), beta, alpha)


def _scaled_sum(input: Tensor, product: Tensor, beta, alpha) -> Tensor:
    from engine.ops.arith import add, mul
    if alpha != 1:
        product = mul(product, alpha)
    if beta == 0:
        return product
    return add(input if beta == 1 else mul(input, beta), product)
