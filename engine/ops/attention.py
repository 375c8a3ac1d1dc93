"""Scaled dot-product attention: softmax(q @ k^T * scale + mask) @ v, fused, with PyTorch's semantics.

Like PyTorch's CPU kernel (flash attention), the fused op keeps q, k, v, the output, the mask and one
log-sum-exp per query row for backward, and recomputes the attention weights there: it never keeps
an (L, S) weight matrix per head. Rows whose keys are all masked give zeros (PyTorch's result), not nan.
With dropout the weights are needed after all, and the op is composed of primitives, as PyTorch's
math path is.
"""

from __future__ import annotations

import math

import numpy as np

from engine.autograd.function import Function
from engine.broadcast import unbroadcast
from engine.tensor import Tensor


class ScaledDotProductAttention(Function):
    """softmax(q @ k^T * scale + bias) @ v; bias is an additive float mask (or None), causal adds tril."""

    def forward(self, q, k, v, bias, scale, causal, empty_rows_nan=False):
        weights, lse = _weights(q, k, bias, scale, causal, bool(self.needs_input_grad), empty_rows_nan)
        out = _like_query(q, weights.shape[:-1] + v.shape[-1:])
        np.matmul(weights, v, out=out)
        if self.needs_input_grad:
            self.save(q, k, v, bias, out, lse)
            self.scale, self.causal = scale, causal
        return out

    def backward(self, g):
        q, k, v, bias, out, lse = self.saved_arrays()
        need_q, need_k, need_v, need_bias = self.needs_input_grad[:4]
        scores = _scores(q, k, bias, self.scale, self.causal)
        weights = np.exp(np.subtract(scores, lse, out=scores), out=scores)  # lse is +inf on empty rows: 0
        gv = unbroadcast(np.matmul(np.swapaxes(weights, -1, -2), g), v.shape) if need_v else None
        # d(scores) = weights * (g @ v^T - rowsum(g * out)): the softmax's backward, row by row.
        gs = np.matmul(g, np.swapaxes(v, -1, -2))
        gs -= np.sum(g * out, axis=-1, keepdims=True)
        gs *= weights
        gq = unbroadcast(np.matmul(gs, k) * q.dtype.type(self.scale), q.shape) if need_q else None
        gk = unbroadcast(np.matmul(np.swapaxes(gs, -1, -2), q) * k.dtype.type(self.scale), k.shape) if need_k else None
        gbias = unbroadcast(gs, bias.shape) if need_bias else None
        return gq, gk, gv, gbias, None, None, None


def _like_query(q: np.ndarray, shape: tuple) -> np.ndarray:
    """An empty output laid out in memory as q is (as PyTorch's kernel does): heads split off a projection
    stay interleaved, so merging them back afterwards is a view, not a copy."""
    return np.empty_like(q) if shape == q.shape else np.empty(shape, q.dtype)


def _scores(q, k, bias, scale, causal) -> np.ndarray:
    """q @ k^T * scale + bias, with -inf above the diagonal when causal: a fresh array."""
    scores = np.matmul(q * q.dtype.type(scale), np.swapaxes(k, -1, -2))
    if bias is not None:
        scores = np.add(scores, bias, out=scores if np.broadcast_shapes(scores.shape, bias.shape) == scores.shape
                        else None)
    if causal:
        rows, cols = scores.shape[-2:]
        scores[..., ~np.tri(rows, cols, dtype=bool)] = -np.inf
    return scores


def _weights(q, k, bias, scale, causal, keep_lse: bool, empty_rows_nan: bool = False):
    """The attention weights (softmax of the scores, zero on rows with every key masked, or nan there
    with empty_rows_nan), and the per-row log-sum-exp (+inf on those rows) when keep_lse."""
    weights = _scores(q, k, bias, scale, causal)
    top = weights.max(axis=-1, keepdims=True)
    masked = bool(bias is not None or causal) and not empty_rows_nan
    if masked:
        empty = np.isneginf(top)
        top[empty] = 0  # an all -inf row: exp gives zeros, not nan
    with np.errstate(invalid="ignore"):  # -inf - -inf on empty rows: the nan asked for with empty_rows_nan
        weights -= top
        np.exp(weights, out=weights)
        total = weights @ np.ones((weights.shape[-1], 1), weights.dtype)  # row sums by BLAS: 3x numpy's sum
        if masked:
            total[empty] = np.inf  # its weights divide to 0
        lse = top + np.log(total) if keep_lse else None  # +inf on empty rows
        weights *= np.reciprocal(total, out=total)
    return weights, lse


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(query @ key^T * scale + mask) @ value over the last two dims.

    attn_mask: bool (True = take part) or float (added to the scores), broadcast to (..., L, S).
    is_causal: query i attends to keys 0..i (a top-left lower triangle); not together with attn_mask.
    dropout_p: applied to the weights whenever it is above 0 (modules pass 0 outside training).
    scale: defaults to 1 / sqrt(E). enable_gqa: key/value heads (dim -3) are shared by groups of query heads.
    """
    _check(query, key, value, attn_mask, is_causal)
    scale = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    if enable_gqa and key.shape[-3] != query.shape[-3]:
        groups = query.shape[-3] // key.shape[-3]
        key, value = key.repeat_interleave(groups, -3), value.repeat_interleave(groups, -3)
    return attend(query, key, value, _additive(attn_mask, query), dropout_p, is_causal, scale)


def attend(query: Tensor, key: Tensor, value: Tensor, bias: Tensor | None, dropout_p: float, is_causal: bool,
           scale: float, empty_rows_nan: bool = False) -> Tensor:
    """The attention itself, with an additive float mask (or None); checked arguments.

    empty_rows_nan gives nan, not 0, on rows with every key masked: what PyTorch's fused MultiheadAttention
    kernel (its inference fast path) returns there.
    """
    if dropout_p > 0:
        return _with_dropout(query, key, value, bias, dropout_p, is_causal, scale)
    return ScaledDotProductAttention.apply(query, key, value, bias, scale, is_causal, empty_rows_nan)


def _check(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None, is_causal: bool) -> None:
    if is_causal and attn_mask is not None:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True")
    if not query._data.dtype == key._data.dtype == value._data.dtype or query._data.dtype.kind != "f":
        raise RuntimeError(f"Expected query, key, and value to have the same floating dtype, but got "
                           f"query.dtype: {query.dtype.name}, key.dtype: {key.dtype.name} and value.dtype: "
                           f"{value.dtype.name} instead.")
    if query.dim() < 2 or key.shape[-1] != query.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise RuntimeError(f"scaled_dot_product_attention: shapes do not fit: query {list(query.shape)}, key "
                           f"{list(key.shape)}, value {list(value.shape)} (expected (..., L, E), (..., S, E), "
                           "(..., S, Ev))")


def _additive(attn_mask: Tensor | None, query: Tensor) -> Tensor | None:
    """A mask as a float tensor added to the scores: bool True -> 0, False -> -inf; float as it is."""
    if attn_mask is None:
        return None
    if attn_mask._data.dtype == np.bool_:
        zero = np.zeros((), query._data.dtype)
        return Tensor._make(np.where(attn_mask._data, zero, zero.dtype.type(-np.inf)))
    if attn_mask._data.dtype.kind != "f":
        raise RuntimeError(f"Expected attn_mask dtype to be bool or float or to match query dtype, but got "
                           f"attn_mask.dtype: {attn_mask.dtype.name} and query.dtype: {query.dtype.name} instead.")
    return attn_mask if attn_mask._data.dtype == query._data.dtype else attn_mask.to(query.dtype)


def _with_dropout(query, key, value, bias, p, is_causal, scale) -> Tensor:
    """PyTorch's math path, from primitives: the dropped-out weights are kept for backward."""
    from engine.nn.dropout import dropout
    scores = (query * scale) @ key.transpose(-2, -1)
    if is_causal:
        rows, cols = scores.shape[-2:]
        bias = Tensor._make(np.where(np.tri(rows, cols, dtype=bool), 0, -np.inf).astype(query._data.dtype))
    if bias is not None:
        scores = scores + bias
    return dropout(scores.softmax(-1), p, training=True) @ value

