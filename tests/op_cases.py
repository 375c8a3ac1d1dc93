"""The differentiable ops, one case each: shared by the gradient checks and the PyTorch parity tests.

A case's `fn(m, *tensors)` is written against a module `m` (engine or torch), so the same
expression runs in both. Inputs are float64 arrays chosen away from non-differentiable points
(no ties for max/sort, nothing at 0 for abs/relu, nothing at a clamp bound).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

_rng = np.random.default_rng(1234)


class Case(NamedTuple):
    fn: Callable
    inputs: tuple
    tol: dict  # gradcheck overrides (a cast to float32 needs a coarser step)


def randn(*shape) -> np.ndarray:
    return _rng.standard_normal(shape)


def positive(*shape) -> np.ndarray:
    return _rng.uniform(0.5, 2.0, shape)


def away(*shape) -> np.ndarray:
    """Nonzero values, at least 0.2 from zero (abs, relu, division)."""
    return _rng.uniform(0.2, 2.0, shape) * _rng.choice([-1.0, 1.0], shape)


def distinct(*shape) -> np.ndarray:
    """Values 0.25 apart, shuffled, none on a multiple of 0.25 (no ties, none at a clamp bound)."""
    n = int(np.prod(shape))
    return ((_rng.permutation(n) - n // 2) * 0.25 + 0.1).reshape(shape)


MASK = np.array([[True, False, True, False], [False, False, True, True], [True, True, False, False]])
CASES: dict[str, Case] = {}


def case(name: str, fn: Callable, *inputs: np.ndarray, **tol) -> None:
    assert name not in CASES, name
    CASES[name] = Case(fn, inputs, tol)


# -- binary arithmetic, with broadcasting -------------------------------------------------------
BINARY = {
    "add": (lambda m, a, b: a + b, randn, randn),
    "sub": (lambda m, a, b: a - b, randn, randn),
    "mul": (lambda m, a, b: a * b, randn, randn),
    "div": (lambda m, a, b: a / b, randn, away),
    "pow": (lambda m, a, b: a ** b, positive, randn),
    "maximum": (lambda m, a, b: m.maximum(a, b), randn, randn),
    "minimum": (lambda m, a, b: m.minimum(a, b), randn, randn),
}
SHAPES = {
    "same": ((3, 4), (3, 4)),
    "col_row": ((3, 1), (1, 4)),
    "row_rank3": ((4,), (2, 3, 4)),
    "rank3_row": ((2, 3, 4), (4,)),
    "scalar_vector": ((), (3,)),
}
for _op, (_fn, _left, _right) in BINARY.items():
    for _label, (_sa, _sb) in SHAPES.items():
        case(f"{_op}-{_label}", _fn, _left(*_sa), _right(*_sb))

case("add-alpha", lambda m, a, b: m.add(a, b, alpha=2.5), randn(3, 4), randn(4))
case("sub-alpha", lambda m, a, b: m.sub(a, b, alpha=0.5), randn(3, 4), randn(4))
case("add-number", lambda m, a: a + 2.5, randn(3, 4))
case("radd-number", lambda m, a: 2.5 + a, randn(3, 4))
case("rsub-number", lambda m, a: 2.5 - a, randn(3, 4))
case("mul-number", lambda m, a: a * -1.5, randn(3, 4))
case("div-number", lambda m, a: a / 4, randn(3, 4))
case("rdiv-number", lambda m, a: 3.0 / a, away(3, 4))
case("pow-tensor_int", lambda m, a: a ** 3, randn(3, 4))
case("pow-tensor_float", lambda m, a: a ** 0.5, positive(3, 4))
case("pow-tensor_negative", lambda m, a: a ** -1.5, positive(3, 4))
case("pow-number_tensor", lambda m, a: 2 ** a, randn(3, 4))
case("pow-function", lambda m, a, b: m.pow(a, b), positive(3, 4), randn(4))
case("neg", lambda m, a: -a, randn(3, 4))
case("where-broadcast", lambda m, a, b: m.where(m.tensor(MASK), a, b), randn(3, 1), randn(4))
case("where-number", lambda m, a: m.where(m.tensor(MASK), a, 0.5), randn(3, 4))

# -- matrix products ----------------------------------------------------------------------------
MATMUL = {
    "1d_1d": ((4,), (4,)),
    "2d_1d": ((3, 4), (4,)),
    "1d_2d": ((4,), (4, 5)),
    "2d_2d": ((3, 4), (4, 5)),
    "3d_3d": ((2, 3, 4), (2, 4, 5)),
    "batch_broadcast": ((2, 1, 3, 4), (5, 4, 2)),
    "2d_3d": ((3, 4), (2, 4, 5)),
    "3d_1d": ((2, 3, 4), (4,)),
    "1d_3d": ((4,), (2, 4, 3)),
}
for _label, (_sa, _sb) in MATMUL.items():
    case(f"matmul-{_label}", lambda m, a, b: a @ b, randn(*_sa), randn(*_sb))
case("matmul-function", lambda m, a, b: m.matmul(a, b), randn(3, 4), randn(4, 2))

_linear = lambda m, *xs: m.nn.functional.linear(*xs)  # noqa: E731
case("linear-2d_bias", _linear, randn(3, 4), randn(5, 4), randn(5))
case("linear-2d_no_bias", _linear, randn(3, 4), randn(5, 4))
case("linear-3d_bias", _linear, randn(2, 3, 4), randn(5, 4), randn(5))
case("linear-3d_no_bias", _linear, randn(2, 3, 4), randn(5, 4))
case("linear-1d_bias", _linear, randn(4), randn(5, 4), randn(5))

# -- elementwise --------------------------------------------------------------------------------
case("exp", lambda m, x: m.exp(x), randn(3, 4))
case("log", lambda m, x: m.log(x), positive(3, 4))
case("sqrt", lambda m, x: m.sqrt(x), positive(3, 4))
case("abs", lambda m, x: m.abs(x), away(3, 4))
case("tanh", lambda m, x: m.tanh(x), randn(3, 4))
case("sigmoid", lambda m, x: m.sigmoid(x), randn(3, 4) * 3)
case("relu", lambda m, x: m.relu(x), away(3, 4))
case("leaky_relu", lambda m, x: m.nn.functional.leaky_relu(x), away(3, 4))
case("leaky_relu-slope", lambda m, x: m.nn.functional.leaky_relu(x, 0.2), away(3, 4))
case("gelu", lambda m, x: m.nn.functional.gelu(x), randn(3, 4) * 2)
case("gelu-tanh", lambda m, x: m.nn.functional.gelu(x, approximate="tanh"), randn(3, 4) * 2)
case("silu", lambda m, x: m.nn.functional.silu(x), randn(3, 4) * 2)
case("softmax-functional", lambda m, x: m.nn.functional.softmax(x, dim=-1), randn(3, 4))
case("clamp-min", lambda m, x: m.clamp(x, min=-0.5), distinct(3, 4))
case("clamp-max", lambda m, x: x.clamp(max=0.5), distinct(3, 4))
case("clamp-both", lambda m, x: x.clamp(-0.5, 0.5), distinct(3, 4))
case("clip", lambda m, x: x.clip(-0.5, 0.5), distinct(3, 4))

# -- reductions ---------------------------------------------------------------------------------
DIMS = {"dim1": 1, "dim_neg": -1, "dims_0_2": (0, 2)}
REDUCTIONS = {
    "sum": randn, "mean": randn, "var": randn, "std": randn, "norm": randn, "amax": distinct, "amin": distinct,
}
for _op, _make in REDUCTIONS.items():
    case(f"{_op}-all", lambda m, x, op=_op: getattr(x, op)(), _make(2, 3, 4))
    case(f"{_op}-all_keepdim", lambda m, x, op=_op: getattr(x, op)(dim=None, keepdim=True), _make(2, 3, 4))
    for _label, _dim in DIMS.items():
        for _keep in (False, True):
            case(f"{_op}-{_label}{'_keepdim' if _keep else ''}",
                 lambda m, x, op=_op, d=_dim, k=_keep: getattr(x, op)(dim=d, keepdim=k), _make(2, 3, 4))


def _nonzero_unit(*shape) -> np.ndarray:
    return _rng.uniform(0.5, 1.5, shape) * _rng.choice([-1.0, 1.0], shape)


case("prod-all", lambda m, x: x.prod(), _nonzero_unit(2, 3, 4))
for _dim in (1, -1):
    for _keep in (False, True):
        case(f"prod-dim{_dim}{'_keepdim' if _keep else ''}", lambda m, x, d=_dim, k=_keep: x.prod(d, keepdim=k),
             _nonzero_unit(2, 3, 4))
case("prod-with_zero", lambda m, x: x.prod(1), np.array([[0.0, 2.0, 3.0], [0.5, -1.0, 2.0]]))
for _op in ("max", "min"):
    case(f"{_op}-all", lambda m, x, op=_op: getattr(x, op)(), distinct(2, 3, 4))
    for _dim in (1, -1):
        for _keep in (False, True):
            case(f"{_op}-dim{_dim}{'_keepdim' if _keep else ''}",
                 lambda m, x, op=_op, d=_dim, k=_keep: getattr(x, op)(d, keepdim=k).values, distinct(2, 3, 4))
    case(f"{_op}-function_dim", lambda m, x, op=_op: getattr(m, op)(x, 0)[0], distinct(3, 4))
case("var-unbiased_false", lambda m, x: x.var(1, unbiased=False), randn(3, 4))
case("std-correction0", lambda m, x: x.std(dim=0, correction=0), randn(3, 4))
case("norm-p1_dim1", lambda m, x: x.norm(p=1, dim=1), away(3, 4))
case("norm-p3", lambda m, x: x.norm(p=3), away(3, 4))
case("norm-pinf_dims", lambda m, x: x.norm(p=float("inf"), dim=(0, 2)), distinct(2, 3, 4))
case("norm-pneg_inf", lambda m, x: x.norm(p=-float("inf"), dim=1), distinct(3, 4))
case("norm-fro", lambda m, x: x.norm(p="fro"), randn(3, 4))
for _op in ("softmax", "log_softmax"):
    for _dim in (0, 1, -1):
        case(f"{_op}-dim{_dim}", lambda m, x, op=_op, d=_dim: getattr(x, op)(d), randn(2, 3, 4))

# -- shapes, views and indexing -----------------------------------------------------------------
case("view", lambda m, x: x.view(6, 4), randn(2, 3, 4))
case("view-infer", lambda m, x: x.view(-1), randn(2, 3, 4))
case("reshape", lambda m, x: x.reshape(4, -1), randn(2, 3, 4))
case("reshape-non_contiguous", lambda m, x: x.transpose(0, 2).reshape(-1, 2), randn(2, 3, 4))
case("flatten", lambda m, x: x.flatten(), randn(2, 3, 4))
case("flatten-from1", lambda m, x: x.flatten(1), randn(2, 3, 4))
case("flatten-function", lambda m, x: m.flatten(x, 0, 1), randn(2, 3, 4))
case("unflatten", lambda m, x: x.unflatten(1, (2, 2)), randn(3, 4))
case("permute", lambda m, x: x.permute(2, 0, 1), randn(2, 3, 4))
case("permute-negative", lambda m, x: x.permute(-1, 0, -2), randn(2, 3, 4))
case("transpose", lambda m, x: x.transpose(0, 2), randn(2, 3, 4))
case("transpose-negative", lambda m, x: m.transpose(x, -1, -2), randn(2, 3, 4))
case("t", lambda m, x: x.t(), randn(3, 4))
case("T", lambda m, x: x.T, randn(3, 4))
case("mT", lambda m, x: x.mT, randn(2, 3, 4))
case("unsqueeze", lambda m, x: x.unsqueeze(1), randn(3, 4))
case("unsqueeze-negative", lambda m, x: x.unsqueeze(-1), randn(3, 4))
case("squeeze", lambda m, x: x.squeeze(), randn(2, 1, 3, 1))
case("squeeze-dim", lambda m, x: x.squeeze(1), randn(2, 1, 3, 1))
case("squeeze-dims", lambda m, x: x.squeeze((1, 3)), randn(2, 1, 3, 1))
case("expand", lambda m, x: x.expand(2, 3, 4), randn(3, 1))
case("expand-keep", lambda m, x: x.expand(-1, 4), randn(3, 1))
case("expand_as", lambda m, x, y: x.expand_as(y) * y, randn(1, 4), randn(3, 4))
case("getitem-int", lambda m, x: x[1], randn(3, 4))
case("getitem-negative_int", lambda m, x: x[-1, 2], randn(3, 4))
case("getitem-slice_step", lambda m, x: x[:, 1::2], randn(3, 5))
case("getitem-none", lambda m, x: x[None, :, None], randn(3, 4))
case("getitem-ellipsis", lambda m, x: x[..., 1], randn(2, 3, 4))
case("getitem-repeated_indices", lambda m, x: x[m.tensor([0, 2, 0, 0])], randn(3, 4))
case("getitem-index_tensor_2d", lambda m, x: x[m.tensor([[0, 1], [1, 1]])], randn(3, 4))
case("getitem-list", lambda m, x: x[[2, 2, 1]], randn(3, 4))
case("getitem-bool_mask", lambda m, x: x[m.tensor(MASK)], randn(3, 4))
case("getitem-bool_rows", lambda m, x: x[m.tensor([True, False, True])], randn(3, 4))
case("getitem-mixed", lambda m, x: x[1:, m.tensor([0, 2, 0])], randn(2, 3, 4))
case("getitem-mixed_int_array", lambda m, x: x[1, :, m.tensor([2, 2])], randn(2, 3, 4))
case("getitem-int_slice_list", lambda m, x: x[0, 1:, [3, 1, 3]], randn(2, 3, 4))
case("getitem-0d_index_tensor", lambda m, x: x[m.tensor(1), :, m.tensor([2, 2])], randn(2, 3, 4))
case("getitem-two_arrays", lambda m, x: x[m.tensor([0, 1, 1]), :, m.tensor([3, 0, 3])], randn(2, 3, 4))
case("split", lambda m, x: x.split(2, dim=1), randn(2, 5))
case("split-sizes", lambda m, x: m.split(x, [1, 3, 1], dim=-1), randn(2, 5))
case("chunk", lambda m, x: x.chunk(3), randn(5, 2))
case("chunk-dim", lambda m, x: m.chunk(x, 2, dim=1), randn(2, 4))
case("cat", lambda m, a, b: m.cat([a, b]), randn(2, 3), randn(4, 3))
case("cat-dim", lambda m, a, b, c: m.cat([a, b, c], dim=-1), randn(2, 3), randn(2, 1), randn(2, 2))
case("stack", lambda m, a, b: m.stack([a, b]), randn(2, 3), randn(2, 3))
case("stack-last", lambda m, a, b: m.stack((a, b), dim=-1), randn(2, 3), randn(2, 3))
case("gather", lambda m, x: m.gather(x, 1, m.tensor([[0, 0, 2], [1, 3, 1], [2, 2, 2]])), randn(3, 4))
case("gather-dim0", lambda m, x: x.gather(0, m.tensor([[2, 0, 1, 1]])), randn(3, 4))
case("gather-smaller_index", lambda m, x: x.gather(1, m.tensor([[1], [0]])), randn(3, 4))
case("topk", lambda m, x: x.topk(2).values, distinct(3, 5))
case("topk-smallest_dim0", lambda m, x: x.topk(2, dim=0, largest=False).values, distinct(3, 5))
case("sort", lambda m, x: x.sort().values, distinct(3, 5))
case("sort-descending_dim0", lambda m, x: m.sort(x, dim=0, descending=True)[0], distinct(3, 5))
case("masked_fill", lambda m, x: x.masked_fill(m.tensor(MASK), 0.5), randn(3, 4))
case("masked_fill-broadcast", lambda m, x: m.masked_fill(x, m.tensor([True, False, False, True]), -1.0), randn(3, 4))
case("clone", lambda m, x: x.clone(), randn(3, 4))
case("contiguous", lambda m, x: x.t().contiguous(), randn(3, 4))
case("to-float32", lambda m, x: x.to(m.float32), randn(3, 4), eps=1e-3, atol=1e-4)
case("to-float64", lambda m, x: x.to(m.float64), randn(3, 4))
case("to-mixed_dtypes", lambda m, x, y: x.to(m.float32) * y, randn(3, 4), randn(4), eps=1e-3, atol=1e-4)


def _setitem(key, m, a, b):
    x = a * 1  # a non-leaf, so it may be written in place
    x[key] = b
    return x


case("setitem-slice", lambda m, a, b: _setitem(slice(1, 3), m, a, b), randn(5, 4), randn(2, 4))
case("setitem-broadcast", lambda m, a, b: _setitem((slice(None), 1), m, a, b), randn(5, 4), randn(1))
case("setitem-row_broadcast", lambda m, a, b: _setitem(slice(1, 3), m, a, b), randn(5, 4), randn(4))
case("setitem-int_and_list", lambda m, a, b: _setitem((1, slice(None), [2, 0]), m, a, b), randn(2, 3, 4),
     randn(3, 2))
case("setitem-bool_mask", lambda m, a, b: _setitem(m.tensor(MASK), m, a, b), randn(3, 4), randn(6))
case("setitem-index_tensor", lambda m, a, b: _setitem(m.tensor([2, 0]), m, a, b), randn(3, 4), randn(2, 4))
case("setitem-number", lambda m, a: _setitem((slice(None), 0), m, a, 0.5), randn(3, 4))
case("setitem-then_use", lambda m, a, b: _setitem(0, m, a, b) * a, randn(3, 4), randn(4))


def _in_place(method: str, m, a, *args, **kwargs):
    x = a * 1  # a non-leaf, so it may be written in place
    return getattr(x, method)(*args, **kwargs)


case("add_", lambda m, a, b: _in_place("add_", m, a, b), randn(3, 4), randn(4))
case("add_-alpha", lambda m, a, b: _in_place("add_", m, a, b, alpha=0.5), randn(3, 4), randn(3, 4))
case("sub_", lambda m, a, b: _in_place("sub_", m, a, b), randn(3, 4), randn(3, 1))
case("mul_", lambda m, a, b: _in_place("mul_", m, a, b), randn(3, 4), randn(4))
case("div_", lambda m, a, b: _in_place("div_", m, a, b), randn(3, 4), away(3, 4))
case("pow_", lambda m, a: _in_place("pow_", m, a, 2), randn(3, 4))
case("clamp_", lambda m, a: _in_place("clamp_", m, a, -0.5, 0.5), distinct(3, 4))
case("copy_", lambda m, a, b: _in_place("copy_", m, a, b) * a, randn(3, 4), randn(4))
case("iadd", lambda m, a, b: _in_place("__iadd__", m, a, b), randn(3, 4), randn(3, 4))
case("mm", lambda m, a, b: a.mm(b), randn(3, 4), randn(4, 2))
case("view_as", lambda m, a, b: a.view_as(b) * b, randn(3, 4), randn(4, 3))
case("reshape_as", lambda m, a, b: a.t().reshape_as(b) * b, randn(3, 4), randn(2, 6))
case("type_as", lambda m, a, b: a.type_as(b) * b, randn(3, 4), randn(4))
case("concat", lambda m, a, b: m.concat([a, b], dim=1), randn(2, 3), randn(2, 1))
case("negative", lambda m, a: a.negative(), randn(3, 4))
case("absolute", lambda m, a: a.absolute(), away(3, 4))


# -- engine-ckpt: fill_/zero_/copy_ record themselves in the graph; writes through views rebase the base -------
case("fill_-then_use", lambda m, a: _in_place("fill_", m, a, 0.5) * a, randn(3, 4))
case("fill_-tensor_value", lambda m, a, b: _in_place("fill_", m, a, b.sum()) * a, randn(3, 4), randn(2))
case("zero_-then_use", lambda m, a: _in_place("zero_", m, a) + a * a, randn(3, 4))
case("copy_-constant", lambda m, a: _in_place("copy_", m, a, m.ones(4)) * a, randn(3, 4))


def _write_through_view(m, a, b):
    x = a * 1
    x[1:, ::2].mul_(b)  # x's history is rebased: the view's region comes from the write
    return x * a


def _sibling_after_write(m, a):
    x = a * 1
    first, last = x[:2], x[1:]
    first.mul_(a[:2])
    return last * a[1:]  # `last` overlaps the write: it follows x's new history


case("view-mul_-rebases_base", _write_through_view, randn(3, 4), randn(2, 2))
case("view-sibling_follows_write", _sibling_after_write, randn(3, 4))


# -- the surface ported sequence models use (attention, recurrent nets) ---------------------------
case("einsum-matmul", lambda m, a, b: m.einsum("ij,jk->ik", a, b), randn(3, 4), randn(4, 2))
case("einsum-batched", lambda m, a, b: m.einsum("bij,bjk->bik", a, b), randn(2, 3, 4), randn(2, 4, 2))
case("einsum-attention_scores", lambda m, q, k: m.einsum("bhqd,bhkd->bhqk", q, k), randn(2, 2, 3, 4),
     randn(2, 2, 5, 4))
case("einsum-implicit_output", lambda m, a, b: m.einsum("ij,jk", a, b), randn(3, 4), randn(4, 2))
case("einsum-ellipsis_broadcast", lambda m, a, b: m.einsum("...ij,...jk->...ik", a, b), randn(1, 3, 4),
     randn(2, 4, 2))
case("einsum-operand_list", lambda m, a, b: m.einsum("i,j->ij", [a, b]), randn(3), randn(4))
case("einsum-sum_all", lambda m, a: m.einsum("ij->", a), randn(3, 4))
case("einsum-index_in_one_operand", lambda m, a, b: m.einsum("ij,jk->i", a, b), randn(3, 4), randn(4, 2))
case("einsum-three_operands", lambda m, a, b, c: m.einsum("ij,jk,kl->il", a, b, c), randn(2, 3), randn(3, 4),
     randn(4, 2))
case("bmm", lambda m, a, b: m.bmm(a, b), randn(2, 3, 4), randn(2, 4, 5))
case("bmm-method", lambda m, a, b: a.bmm(b), randn(2, 3, 4), randn(2, 4, 5))
case("baddbmm", lambda m, c, a, b: m.baddbmm(c, a, b), randn(2, 3, 5), randn(2, 3, 4), randn(2, 4, 5))
case("baddbmm-broadcast_scaled", lambda m, c, a, b: m.baddbmm(c, a, b, beta=0.5, alpha=2.0), randn(1, 3, 5),
     randn(2, 3, 4), randn(2, 4, 5))
case("addmm", lambda m, c, a, b: m.addmm(c, a, b, alpha=0.5), randn(5), randn(3, 4), randn(4, 5))
case("triu", lambda m, x: m.triu(x), randn(4, 4))
case("triu-diagonal1_batched", lambda m, x: x.triu(1), randn(2, 3, 4))
case("tril", lambda m, x: m.tril(x, -1), randn(4, 3))
case("repeat", lambda m, x: x.repeat(2, 1, 3), randn(3, 2))
case("repeat_interleave-int_dim", lambda m, x: x.repeat_interleave(2, dim=1), randn(2, 3))
case("repeat_interleave-tensor_counts", lambda m, x: m.repeat_interleave(x, m.tensor([1, 0, 3]), dim=0),
     randn(3, 2))
case("repeat_interleave-flat", lambda m, x: x.repeat_interleave(3), randn(2, 2))
case("roll", lambda m, x: m.roll(x, 1, 1), randn(3, 4))
case("roll-dims", lambda m, x: x.roll((2, -1), (0, 1)), randn(3, 4))
case("roll-flat", lambda m, x: m.roll(x, 5), randn(3, 4))
case("flip", lambda m, x: m.flip(x, [0, 2]), randn(2, 3, 4))
case("flip-method", lambda m, x: x.flip(-1), randn(2, 3))
case("unbind", lambda m, x: m.unbind(x, 1), randn(2, 3))
case("masked_fill-mask_wider_than_input", lambda m, x: x.masked_fill(m.tensor(MASK), -2.0), randn(4))
case("masked_fill-tensor_value", lambda m, x, v: x.masked_fill(m.tensor(MASK), v), randn(3, 4), randn())
case("masked_fill_-in_place", lambda m, x: (x * 1).masked_fill_(m.tensor(MASK), float("-inf")).exp(), randn(3, 4))
case("clamp-tensor_min", lambda m, x, lo: m.clamp(x, min=lo), distinct(3, 4), distinct(3, 4) + 0.125)
case("clamp-tensor_bounds_broadcast", lambda m, x, lo, hi: x.clamp(min=lo, max=hi), distinct(3, 4),
     np.array([-1.05, -0.3, 0.2, -2.05]), np.array([[0.55], [1.3], [-0.8]]))
case("clamp-tensor_max", lambda m, x, hi: x.clamp(max=hi), distinct(3, 4), distinct(4) + 0.125)
case("cumsum", lambda m, x: m.cumsum(x, 1), randn(2, 3, 4))
case("cumsum-method_negative_dim", lambda m, x: x.cumsum(-1), randn(3, 4))
case("erf", lambda m, x: m.erf(x), randn(3, 4) * 2)
case("erf-method", lambda m, x: x.erf(), randn(3, 4))
case("rsqrt", lambda m, x: m.rsqrt(x), positive(3, 4))
case("sin", lambda m, x: m.sin(x), randn(3, 4) * 3)
case("cos", lambda m, x: x.cos(), randn(3, 4) * 3)
case("normalize", lambda m, x: m.nn.functional.normalize(x), randn(3, 4))
case("normalize-p1_last_dim", lambda m, x: m.nn.functional.normalize(x, p=1.0, dim=-1), away(3, 4))
case("normalize-zero_row", lambda m, x: m.nn.functional.normalize(x * m.tensor([[1.0], [0.0], [1.0]])),
     randn(3, 4))

_sdpa = lambda m, *xs, **kw: m.nn.functional.scaled_dot_product_attention(*xs, **kw)  # noqa: E731
_ATTEND = np.array([[1, 0, 1, 1, 0], [1, 1, 1, 1, 1], [0, 0, 1, 0, 1]], bool)  # True: may attend
_NO_KEYS = np.array([[1, 1, 0, 1, 1], [0, 0, 0, 0, 0], [1, 0, 1, 1, 1]], bool)  # query 1 may attend to nothing
case("sdpa", _sdpa, randn(2, 2, 3, 4), randn(2, 2, 5, 4), randn(2, 2, 5, 3))
case("sdpa-3d", _sdpa, randn(2, 3, 4), randn(2, 5, 4), randn(2, 5, 4))
case("sdpa-bool_mask", lambda m, q, k, v: _sdpa(m, q, k, v, attn_mask=m.tensor(_ATTEND)), randn(2, 3, 4),
     randn(2, 5, 4), randn(2, 5, 4))
case("sdpa-row_with_no_keys", lambda m, q, k, v: _sdpa(m, q, k, v, attn_mask=m.tensor(_NO_KEYS)), randn(2, 3, 4),
     randn(2, 5, 4), randn(2, 5, 4))
case("sdpa-float_mask_gets_gradient", lambda m, q, k, v, mask: _sdpa(m, q, k, v, attn_mask=mask), randn(2, 3, 4),
     randn(2, 5, 4), randn(2, 5, 4), randn(3, 5))
case("sdpa-causal", lambda m, q, k, v: _sdpa(m, q, k, v, is_causal=True), randn(2, 3, 4), randn(2, 5, 4),
     randn(2, 5, 4))
case("sdpa-scale", lambda m, q, k, v: _sdpa(m, q, k, v, scale=0.3), randn(1, 4, 4), randn(1, 4, 4), randn(1, 4, 2))
case("sdpa-gqa", lambda m, q, k, v: _sdpa(m, q, k, v, enable_gqa=True), randn(1, 4, 3, 4), randn(1, 2, 5, 4),
     randn(1, 2, 5, 4))


def _mha(m, x, in_w, in_b, out_w, out_b, **kw):
    """Self-attention through the functional form, sequence first: x (L, N, E) with 2 heads."""
    return m.nn.functional.multi_head_attention_forward(x, x, x, 4, 2, in_w, in_b, None, None, False, 0.0, out_w, out_b,
                                                        **kw)


_PADDING = np.array([[False, False, True], [False, False, False]])
case("multi_head_attention_forward", lambda m, *xs: _mha(m, *xs, need_weights=False)[0], randn(3, 2, 4),
     randn(12, 4), randn(12), randn(4, 4), randn(4))
case("multi_head_attention_forward-weights", lambda m, *xs: _mha(m, *xs, average_attn_weights=False), randn(3, 2, 4),
     randn(12, 4), randn(12), randn(4, 4), randn(4))
case("multi_head_attention_forward-padding_and_causal",
     lambda m, *xs: _mha(m, *xs, key_padding_mask=m.tensor(_PADDING), need_weights=False,
                         attn_mask=m.triu(m.ones(3, 3, dtype=m.bool), 1))[0],
     randn(3, 2, 4), randn(12, 4), randn(12), randn(4, 4), randn(4))
# -- convolution-family layers: activations, normalisation, padding, convolution, pooling, resampling ------
def _f(m, name: str):
    """m.nn.functional.<name>: the same case code runs in engine and in torch."""
    return getattr(m.nn.functional, name)


def _inplace(m, name: str, x, *args, **kwargs):
    """F.<name>(x * 1, inplace=True): the in-place form on a non-leaf, recorded in the graph."""
    y = x * 1
    out = _f(m, name)(y, *args, inplace=True, **kwargs)
    assert out is y
    return out


for _name, _make in {"relu6": lambda: randn(3, 4) * 4, "hardtanh": lambda: distinct(3, 4),
                     "hardsigmoid": lambda: randn(3, 4) * 3, "hardswish": lambda: randn(3, 4) * 3,
                     "elu": lambda: away(3, 4), "mish": lambda: randn(3, 4) * 2}.items():
    case(f"{_name}", lambda m, x, n=_name: _f(m, n)(x), _make())
    case(f"{_name}-inplace", lambda m, x, n=_name: _inplace(m, n, x), _make())
case("relu-inplace", lambda m, x: _inplace(m, "relu", x), away(3, 4))
case("leaky_relu-inplace", lambda m, x: _inplace(m, "leaky_relu", x, 0.2), away(3, 4))
case("silu-inplace", lambda m, x: _inplace(m, "silu", x), randn(3, 4) * 2)
case("hardtanh-bounds", lambda m, x: _f(m, "hardtanh")(x, -0.5, 0.75), distinct(3, 4))
case("elu-alpha", lambda m, x: _f(m, "elu")(x, alpha=0.5), away(3, 4))
case("softplus", lambda m, x: _f(m, "softplus")(x), randn(3, 4) * 3)
case("softplus-beta_threshold", lambda m, x: _f(m, "softplus")(x, beta=2.0, threshold=3.0), randn(3, 4) * 3)
case("prelu-shared", lambda m, x, w: _f(m, "prelu")(x, w), away(2, 3, 4), np.array([0.25]))
case("prelu-channels", lambda m, x, w: _f(m, "prelu")(x, w), away(2, 3, 4), _rng.uniform(0.1, 0.5, 3))

case("group_norm", lambda m, x, w, b: _f(m, "group_norm")(x, 3, w, b), randn(2, 6, 3, 2), randn(6), randn(6))
case("group_norm-no_affine", lambda m, x: _f(m, "group_norm")(x, 2), randn(2, 4, 5))
case("group_norm-one_group", lambda m, x, w, b: _f(m, "group_norm")(x, 1, w, b), randn(2, 3, 4), randn(3), randn(3))
case("instance_norm", lambda m, x, w, b: _f(m, "instance_norm")(x, weight=w, bias=b), randn(2, 3, 3, 4), randn(3),
     randn(3))
case("instance_norm-1d_no_affine", lambda m, x: _f(m, "instance_norm")(x), randn(2, 3, 5))
case("layer_norm-three_dims", lambda m, x, w, b: _f(m, "layer_norm")(x, (2, 3, 2), w, b), randn(2, 2, 3, 2),
     randn(2, 3, 2), randn(2, 3, 2))

for _mode, _shape, _pad in (("constant", (2, 3, 4), (1, 2, 0, 1)), ("reflect", (2, 2, 5), (2, 3)),
                            ("reflect", (1, 2, 4, 5), (1, 2, 3, 1)), ("replicate", (1, 2, 3, 4), (2, 1, 0, 3)),
                            ("circular", (1, 2, 3, 4), (1, 3, 2, 1)), ("reflect", (1, 1, 3, 3, 4), (1, 1, 2, 1, 1, 2))):
    case(f"pad-{_mode}_{len(_pad) // 2}d", lambda m, x, p=_pad, mo=_mode: _f(m, "pad")(x, p, mo), randn(*_shape))
case("pad-constant_value_negative", lambda m, x: _f(m, "pad")(x, (-1, 2, 1, -1), value=0.5), randn(2, 3, 4))

_conv2d = lambda m, *xs, **kw: _f(m, "conv2d")(*xs, **kw)  # noqa: E731
case("conv2d-depthwise", lambda m, x, w, b: _conv2d(m, x, w, b, padding=1, groups=3), randn(2, 3, 4, 5),
     randn(3, 1, 3, 3), randn(3))
case("conv2d-depthwise_channels_last", lambda m, x, w: _conv2d(m, x, w, padding=1, groups=32), randn(1, 32, 3, 3),
     randn(32, 1, 3, 3))
case("conv2d-depthwise_stride_dilation", lambda m, x, w: _conv2d(m, x, w, stride=2, padding=2, dilation=2, groups=2),
     randn(1, 2, 6, 5), randn(2, 1, 3, 3))
case("conv2d-channels_last", lambda m, x, w, b: _conv2d(m, x, w, b, padding=1), randn(1, 16, 3, 4),
     randn(2, 16, 2, 3), randn(2))
case("conv2d-pointwise_large_map", lambda m, x, w, b: _conv2d(m, x, w, b), randn(1, 2, 16, 17), randn(3, 2, 1, 1),
     randn(3))
case("conv2d-pointwise_one_pixel", lambda m, x, w, b: _conv2d(m, x, w, b), randn(2, 3, 1, 1), randn(4, 3, 1, 1),
     randn(4))
case("conv2d-padding_only_taps", lambda m, x, w, b: _conv2d(m, x, w, b, padding=1), randn(2, 3, 1, 1),
     randn(4, 3, 3, 3), randn(4))
case("conv2d-padding_only_rows", lambda m, x, w: _conv2d(m, x, w, padding=(2, 1)), randn(1, 2, 1, 4),
     randn(3, 2, 5, 3))
_conv_t = lambda m, *xs, **kw: _f(m, "conv_transpose2d")(*xs, **kw)  # noqa: E731
case("conv_transpose2d", lambda m, x, w, b: _conv_t(m, x, w, b), randn(2, 3, 3, 4), randn(3, 2, 3, 2), randn(2))
case("conv_transpose2d-stride_padding_output_padding",
     lambda m, x, w, b: _conv_t(m, x, w, b, stride=2, padding=1, output_padding=1), randn(1, 2, 3, 3),
     randn(2, 3, 3, 3), randn(3))
case("conv_transpose2d-groups_dilation", lambda m, x, w: _conv_t(m, x, w, stride=(1, 2), groups=2, dilation=2),
     randn(1, 4, 3, 3), randn(4, 1, 2, 3))
case("conv_transpose2d-unbatched", lambda m, x, w: _conv_t(m, x, w, stride=2), randn(2, 2, 3), randn(2, 3, 2, 2))
case("conv_transpose2d-pointwise_output_padding", lambda m, x, w: _conv_t(m, x, w, dilation=2, output_padding=1),
     randn(1, 2, 3, 3), randn(2, 3, 1, 1))
case("conv_transpose1d", lambda m, x, w, b: _f(m, "conv_transpose1d")(x, w, b, stride=3, padding=1, output_padding=2),
     randn(2, 2, 4), randn(2, 3, 3), randn(3))

case("max_pool1d", lambda m, x: _f(m, "max_pool1d")(x, 3, stride=2, padding=1), distinct(2, 2, 7))
case("max_pool1d-dilation_ceil", lambda m, x: _f(m, "max_pool1d")(x, 2, 2, 0, 2, True), distinct(2, 8))
case("avg_pool1d", lambda m, x: _f(m, "avg_pool1d")(x, 3, 2, 1, count_include_pad=False), randn(2, 2, 7))
case("adaptive_avg_pool1d", lambda m, x: _f(m, "adaptive_avg_pool1d")(x, 3), randn(2, 2, 7))
case("adaptive_max_pool1d", lambda m, x: _f(m, "adaptive_max_pool1d")(x, 3), distinct(2, 2, 7))
case("adaptive_max_pool2d", lambda m, x: _f(m, "adaptive_max_pool2d")(x, (2, 3)), distinct(2, 2, 5, 7))
case("adaptive_max_pool2d-overlapping", lambda m, x: _f(m, "adaptive_max_pool2d")(x, (4, None)), distinct(1, 2, 5, 3))

_interp = lambda m, x, **kw: _f(m, "interpolate")(x, **kw)  # noqa: E731
for _label, _kw, _shape in (
        ("nearest_scale_2", {"scale_factor": 2}, (1, 2, 3, 4)),
        ("nearest_size", {"size": (5, 3)}, (1, 2, 3, 4)),
        ("nearest_exact", {"size": (5, 7), "mode": "nearest-exact"}, (1, 2, 3, 4)),
        ("nearest_1d", {"scale_factor": 1.5}, (2, 2, 5)),
        ("linear", {"size": 7, "mode": "linear"}, (2, 2, 5)),
        ("bilinear", {"scale_factor": 1.7, "mode": "bilinear"}, (1, 2, 3, 4)),
        ("bilinear_align_corners", {"size": (4, 6), "mode": "bilinear", "align_corners": True}, (1, 2, 3, 4)),
        ("bilinear_down", {"size": (2, 3), "mode": "bilinear"}, (1, 2, 5, 7)),
        ("bicubic", {"scale_factor": 2, "mode": "bicubic"}, (1, 1, 3, 4)),
        ("bicubic_align_corners", {"size": (5, 4), "mode": "bicubic", "align_corners": True}, (1, 2, 3, 3)),
        ("trilinear", {"size": (3, 2, 3), "mode": "trilinear"}, (1, 1, 2, 3, 2)),
        ("area", {"size": (2, 3), "mode": "area"}, (1, 2, 5, 7)),
        ("recompute_scale_factor", {"scale_factor": 1.3, "mode": "bilinear", "recompute_scale_factor": True},
         (1, 1, 4, 5))):
    case(f"interpolate-{_label}", lambda m, x, kw=_kw: _interp(m, x, **kw), randn(*_shape))
case("pixel_shuffle", lambda m, x: _f(m, "pixel_shuffle")(x, 2), randn(2, 8, 2, 3))
case("pixel_unshuffle", lambda m, x: _f(m, "pixel_unshuffle")(x, 2), randn(2, 2, 4, 6))
