"""Multi-head attention: PyTorch's functional form (multi_head_attention_forward) and its module.

Masks follow nn.MultiheadAttention, the opposite of scaled_dot_product_attention's bool masks: a True in
`key_padding_mask` or a bool `attn_mask` means "may not attend"; float masks are added to the scores.
The projections run on the input in its own layout (batch first or not) and heads are strided views of
the projection, so no per-head copies are made; with need_weights=False the heads go through the fused
scaled_dot_product_attention, as in PyTorch.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from engine import ops
from engine.creation import empty, zeros
from engine.grad_mode import is_grad_enabled
from engine.nn import init
from engine.nn.dropout import dropout
from engine.nn.layers import Linear
from engine.nn.module import Module
from engine.nn.parameter import Parameter
from engine.ops.attention import attend
from engine.tensor import Tensor


def canonical_mask(mask: Tensor | None, dtype, name: str = "mask", other: Tensor | None = None,
                   other_name: str = "") -> Tensor | None:
    """A bool "may not attend" mask as an additive float mask of `dtype` (True -> -inf); float masks as given."""
    if mask is None:
        return None
    if mask.dtype.name != "bool" and not mask.is_floating_point():
        raise AssertionError(f"only bool and floating types of {name} are supported")
    if other is not None and other.dtype is not mask.dtype:
        warnings.warn(f"Support for mismatched {name} and {other_name} is deprecated. Use same type for both "
                      "instead.", stacklevel=3)
    if mask.is_floating_point():
        return mask
    zero = np.zeros((), dtype.np)
    return Tensor._make(np.where(mask._data, zero.dtype.type(-np.inf), zero))


def _check_shapes(query: Tensor, key: Tensor, value: Tensor, key_padding_mask, attn_mask, num_heads: int) -> bool:
    """PyTorch's shape rules; True for batched (3-D) input, False for unbatched (2-D)."""
    if query.dim() not in (2, 3):
        raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received {query.dim()}-D "
                             "query tensor")
    batched = query.dim() == 3
    if key.dim() != query.dim() or value.dim() != query.dim():
        raise AssertionError(f"For {'batched (3-D)' if batched else 'unbatched (2-D)'} `query`, expected `key` "
                             f"and `value` to be {query.dim()}-D but found {key.dim()}-D and {value.dim()}-D "
                             "tensors respectively")
    if key_padding_mask is not None and key_padding_mask.dim() != query.dim() - 1:
        raise AssertionError(f"expected `key_padding_mask` to be `None` or {query.dim() - 1}-D but found "
                             f"{key_padding_mask.dim()}-D tensor instead")
    if attn_mask is not None and attn_mask.dim() not in (2, 3):
        raise AssertionError(f"expected `attn_mask` to be `None`, 2-D or 3-D but found {attn_mask.dim()}-D tensor "
                             "instead")
    if not batched and attn_mask is not None and attn_mask.dim() == 3:
        expected = (num_heads, query.shape[0], key.shape[0])
        if tuple(attn_mask.shape) != expected:
            raise AssertionError(f"Expected `attn_mask` shape to be {expected} but got {tuple(attn_mask.shape)}")
    return batched


def _project(query, key, value, in_proj_weight, in_proj_bias, separate) -> tuple:
    """The q, k, v projections, as PyTorch computes them (one GEMM for self-attention, two when key is value)."""
    embed = query.shape[-1]
    if separate is not None:
        biases = ops.chunk(in_proj_bias, 3) if in_proj_bias is not None else (None, None, None)
        return tuple(ops.linear(x, w, b) for x, w, b in zip((query, key, value), separate, biases))
    if key is value and query is key:
        proj = ops.linear(query, in_proj_weight, in_proj_bias)
        return ops.split(proj, embed, dim=-1)
    if key is value:
        w_q, w_kv = ops.split(in_proj_weight, [embed, 2 * embed])
        b_q, b_kv = ops.split(in_proj_bias, [embed, 2 * embed]) if in_proj_bias is not None else (None, None)
        return (ops.linear(query, w_q, b_q), *ops.split(ops.linear(key, w_kv, b_kv), embed, dim=-1))
    weights = ops.chunk(in_proj_weight, 3)
    biases = ops.chunk(in_proj_bias, 3) if in_proj_bias is not None else (None, None, None)
    return tuple(ops.linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases))


def _heads(x: Tensor, num_heads: int, batch_first: bool) -> Tensor:
    """(L, N, E) or (N, L, E) as an (N, heads, L, head_dim) view."""
    if batch_first:
        n, length, embed = x.shape
        return x.reshape(n, length, num_heads, embed // num_heads).permute(0, 2, 1, 3)
    length, n, embed = x.shape
    return x.reshape(length, n, num_heads, embed // num_heads).permute(1, 2, 0, 3)


def _merge_heads(x: Tensor, batch_first: bool) -> Tensor:
    """(N, heads, L, head_dim) back to (N, L, E) or (L, N, E), one copy."""
    n, heads, length, dim = x.shape
    if batch_first:
        return x.permute(0, 2, 1, 3).reshape(n, length, heads * dim)
    return x.permute(2, 0, 1, 3).reshape(length, n, heads * dim)


def _pad_column(mask: Tensor | None) -> Tensor | None:
    """A float mask with one more key column of 0 (PyTorch's pad(mask, (0, 1)))."""
    if mask is None:
        return None
    return ops.cat([mask, zeros(*mask.shape[:-1], 1, dtype=mask.dtype)], dim=-1)


def _append_key(x: Tensor, row: Tensor, batch_first: bool) -> Tensor:
    """x (L, N, E) or (N, L, E) with `row` (broadcast to (N, E)) appended along the sequence."""
    n, embed = (x.shape[0], x.shape[2]) if batch_first else (x.shape[1], x.shape[2])
    row = row.reshape(1, 1, embed).expand(n, 1, embed) if batch_first else row.reshape(1, 1, embed).expand(1, n, embed)
    return ops.cat([x, row], dim=1 if batch_first else 0)


def _attn_mask_4d(attn_mask: Tensor, n: int, heads: int, tgt: int, src: int) -> Tensor:
    """A 2-D (L, S) or 3-D (N * heads, L, S) mask as (1, 1, L, S) or (N, heads, L, S), shape-checked."""
    if attn_mask.dim() == 2:
        if tuple(attn_mask.shape) != (tgt, src):
            raise RuntimeError(f"The shape of the 2D attn_mask is {tuple(attn_mask.shape)}, but should be "
                               f"{(tgt, src)}.")
        return attn_mask.reshape(1, 1, tgt, src)
    if tuple(attn_mask.shape) != (n * heads, tgt, src):
        raise RuntimeError(f"The shape of the 3D attn_mask is {tuple(attn_mask.shape)}, but should be "
                           f"{(n * heads, tgt, src)}.")
    return attn_mask.reshape(n, heads, tgt, src)


def _merged_mask(attn_mask, key_padding_mask, n: int, heads: int, src: int):
    """attn_mask plus the key padding mask repeated per head, (N, heads, L or 1, S), as PyTorch merges them."""
    if key_padding_mask is None:
        return attn_mask
    if tuple(key_padding_mask.shape) != (n, src):
        raise AssertionError(f"Expected key_padded_mask.shape to be {(n, src)}, but got "
                             f"{tuple(key_padding_mask.shape)}")
    # PyTorch materialises the per-head copy (expand + reshape); so do we, so that what backward keeps matches.
    padding = key_padding_mask.reshape(n, 1, 1, src).expand(n, heads, 1, src).contiguous()
    return padding if attn_mask is None else attn_mask + padding


@dataclass(frozen=True)
class Weights:
    """One multi-head attention's parameters and switches: the module's, or the functional form's arguments."""

    num_heads: int
    in_proj_weight: Tensor | None
    in_proj_bias: Tensor | None
    out_proj_weight: Tensor
    out_proj_bias: Tensor | None
    separate: tuple | None = None  # (q_proj_weight, k_proj_weight, v_proj_weight) when kdim or vdim differ
    bias_k: Tensor | None = None
    bias_v: Tensor | None = None
    add_zero_attn: bool = False
    dropout_p: float = 0.0  # applied in training only


def attention(query: Tensor, key: Tensor, value: Tensor, w: Weights, key_padding_mask, attn_mask, *,
              training: bool, need_weights: bool, average_attn_weights: bool, is_causal: bool, batch_first: bool,
              static_k=None, static_v=None, fast_path: bool = False) -> tuple:
    """Multi-head attention on batched 3-D input in either layout; masks already in canonical (float) form.

    Returns (output in the input's layout, weights or None). The shared body of the functional form
    and the module. With fast_path, rows with every key masked come out nan, as from PyTorch's fused kernel.
    """
    n, tgt = (query.shape[0], query.shape[1]) if batch_first else (query.shape[1], query.shape[0])
    q4, k4, v4, key_padding_mask, attn_mask = _heads_and_masks(query, key, value, w, key_padding_mask, attn_mask,
                                                               batch_first, static_k, static_v)
    src = k4.shape[2]
    if attn_mask is not None:
        attn_mask = _attn_mask_4d(attn_mask, n, w.num_heads, tgt, src)
    mask = _merged_mask(attn_mask, key_padding_mask, n, w.num_heads, src)
    dropout_p = w.dropout_p if training else 0.0
    if need_weights:
        out, weights = _attention_with_weights(q4, k4, v4, mask, dropout_p)
        weights = weights.mean(dim=1) if average_attn_weights else weights
    else:
        out = attend(q4, k4, v4, mask, dropout_p, is_causal and mask is None, 1 / math.sqrt(q4.shape[-1]), fast_path)
        weights = None
    return ops.linear(_merge_heads(out, batch_first), w.out_proj_weight, w.out_proj_bias), weights


def _heads_and_masks(query, key, value, w: Weights, key_padding_mask, attn_mask, batch_first, static_k,
                     static_v) -> tuple:
    """(q, k, v as (N, heads, L or S, head_dim), key_padding_mask, attn_mask), with bias_k/bias_v and the zero
    attention key appended (and the masks padded for them) as PyTorch does."""
    q, k, v = _project(query, key, value, w.in_proj_weight, w.in_proj_bias, w.separate)
    n = query.shape[0] if batch_first else query.shape[1]
    if w.bias_k is not None and w.bias_v is not None:
        k, v = _append_key(k, w.bias_k, batch_first), _append_key(v, w.bias_v, batch_first)
        attn_mask, key_padding_mask = _pad_column(attn_mask), _pad_column(key_padding_mask)
    elif w.bias_k is not None or w.bias_v is not None:
        raise AssertionError("bias_k and bias_v must both be set or both be None")
    heads = w.num_heads
    q4 = _heads(q, heads, batch_first)
    k4 = static_k.reshape(n, heads, -1, static_k.shape[-1]) if static_k is not None else _heads(k, heads, batch_first)
    v4 = static_v.reshape(n, heads, -1, static_v.shape[-1]) if static_v is not None else _heads(v, heads, batch_first)
    if w.add_zero_attn:
        k4 = ops.cat([k4, zeros(n, heads, 1, k4.shape[-1], dtype=k4.dtype)], dim=2)
        v4 = ops.cat([v4, zeros(n, heads, 1, v4.shape[-1], dtype=v4.dtype)], dim=2)
        attn_mask, key_padding_mask = _pad_column(attn_mask), _pad_column(key_padding_mask)
    return q4, k4, v4, key_padding_mask, attn_mask


def _attention_with_weights(q4, k4, v4, mask, dropout_p) -> tuple:
    """PyTorch's explicit path (baddbmm, softmax, dropout, bmm): the weights are an output, so they exist."""
    scores = (q4 * math.sqrt(1.0 / q4.shape[-1])) @ k4.transpose(-2, -1)
    if mask is not None:
        scores = scores + mask
    weights = scores.softmax(-1)
    if dropout_p > 0:
        weights = dropout(weights, dropout_p)
    return weights @ v4, weights


def _masks(query: Tensor, key_padding_mask, attn_mask, is_causal: bool, need_weights: bool) -> tuple:
    """(key_padding_mask, attn_mask, is_causal) as the attention uses them, by PyTorch's rules.

    Bool masks become float; a causal hint with no padding mask and no weights asked for replaces
    attn_mask (the fused attention applies it); with a padding mask the merged mask is no longer causal.
    """
    key_padding_mask = canonical_mask(key_padding_mask, query.dtype, "key_padding_mask", attn_mask, "attn_mask")
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the Transformer module "
                           "method `generate_square_subsequent_mask` to create this mask.")
    if is_causal and key_padding_mask is None and not need_weights:
        return None, None, True
    return key_padding_mask, canonical_mask(attn_mask, query.dtype, "attn_mask"), (
        is_causal and key_padding_mask is None)


def multi_head_attention_forward(query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
                                 in_proj_weight: Tensor | None, in_proj_bias: Tensor | None, bias_k: Tensor | None,
                                 bias_v: Tensor | None, add_zero_attn: bool, dropout_p: float,
                                 out_proj_weight: Tensor, out_proj_bias: Tensor | None, training: bool = True,
                                 key_padding_mask: Tensor | None = None, need_weights: bool = True,
                                 attn_mask: Tensor | None = None, use_separate_proj_weight: bool = False,
                                 q_proj_weight: Tensor | None = None, k_proj_weight: Tensor | None = None,
                                 v_proj_weight: Tensor | None = None, static_k: Tensor | None = None,
                                 static_v: Tensor | None = None, average_attn_weights: bool = True,
                                 is_causal: bool = False) -> tuple:
    """PyTorch's F.multi_head_attention_forward: sequence-first (L, N, E) or unbatched (L, E) inputs."""
    batched = _check_shapes(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        key_padding_mask = key_padding_mask.unsqueeze(0) if key_padding_mask is not None else None
    key_padding_mask, attn_mask, is_causal = _masks(query, key_padding_mask, attn_mask, is_causal, need_weights)
    embed = query.shape[2]
    if embed != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {embed}")
    if embed % num_heads:
        raise AssertionError(f"embed_dim {embed} not divisible by num_heads {num_heads}")
    separate = (q_proj_weight, k_proj_weight, v_proj_weight) if use_separate_proj_weight else None
    if separate is None and in_proj_weight is None:
        raise AssertionError("use_separate_proj_weight is False but in_proj_weight is None")
    if separate is not None and any(w is None for w in separate):
        raise AssertionError("use_separate_proj_weight is True but q_proj_weight, k_proj_weight or v_proj_weight "
                             "is None")
    if (key.shape[:2] != value.shape[:2]) if separate is not None else (key.shape != value.shape):
        raise AssertionError(f"key shape {tuple(key.shape)} does not match value shape {tuple(value.shape)}")
    w = Weights(num_heads, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, separate, bias_k, bias_v,
                add_zero_attn, dropout_p)
    out, weights = attention(query, key, value, w, key_padding_mask, attn_mask, training=training,
                             need_weights=need_weights, average_attn_weights=average_attn_weights,
                             is_causal=is_causal, batch_first=False, static_k=static_k, static_v=static_v)
    if not batched:
        out = out.squeeze(1)
        weights = weights.squeeze(0) if weights is not None else None
    return out, weights


class MultiheadAttention(Module):
    """Attention over num_heads heads of embed_dim // num_heads; PyTorch's parameters, key names and masks."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None, dtype=None):
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} and "
                             f"num_heads={num_heads} instead")
        super().__init__()
        self.embed_dim, self.num_heads, self.dropout, self.batch_first = embed_dim, num_heads, dropout, batch_first
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise AssertionError("embed_dim must be divisible by num_heads")
        factory = {"dtype": dtype, "device": device}
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, **factory))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = Parameter(empty(embed_dim, embed_dim, **factory))
            self.k_proj_weight = Parameter(empty(embed_dim, self.kdim, **factory))
            self.v_proj_weight = Parameter(empty(embed_dim, self.vdim, **factory))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, **factory))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **factory)
        if add_bias_kv:
            self.bias_k = Parameter(empty(1, 1, embed_dim, **factory))
            self.bias_v = Parameter(empty(1, 1, embed_dim, **factory))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """PyTorch's: xavier-uniform projections, zero biases, xavier-normal bias_k/bias_v."""
        for weight in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            if weight is not None:
                init.xavier_uniform_(weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        for extra in (self.bias_k, self.bias_v):
            if extra is not None:
                init.xavier_normal_(extra)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None = None,
                need_weights: bool = True, attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple:
        """(attn_output, attn_weights or None); inputs (N, L, E) if batch_first else (L, N, E), or unbatched."""
        fast = self._fast_path(query, key, value, key_padding_mask, attn_mask)
        return self._attend(query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights,
                            is_causal, fast)

    def _attend(self, query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights, is_causal,
                fast_path: bool) -> tuple:
        """forward's computation; fast_path says PyTorch would use its fused kernel (nan on rows with no keys)."""
        if not self.batch_first or query.dim() != 3:
            return multi_head_attention_forward(
                query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight, self.in_proj_bias,
                self.bias_k, self.bias_v, self.add_zero_attn, self.dropout, self.out_proj.weight, self.out_proj.bias,
                self.training, key_padding_mask, need_weights, attn_mask, not self._qkv_same_embed_dim,
                self.q_proj_weight, self.k_proj_weight, self.v_proj_weight, average_attn_weights=average_attn_weights,
                is_causal=is_causal)
        # Batch first: the same computation, with the projections run on the (N, L, E) input as it lies.
        _check_shapes(query, key, value, key_padding_mask, attn_mask, self.num_heads)
        key_padding_mask, attn_mask, is_causal = _masks(query, key_padding_mask, attn_mask, is_causal, need_weights)
        return attention(query, key, value, self._weights(), key_padding_mask, attn_mask, training=self.training,
                         need_weights=need_weights, average_attn_weights=average_attn_weights, is_causal=is_causal,
                         batch_first=True, fast_path=fast_path)

    def _weights(self) -> Weights:
        separate = None if self._qkv_same_embed_dim else (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        return Weights(self.num_heads, self.in_proj_weight, self.in_proj_bias, self.out_proj.weight,
                       self.out_proj.bias, separate, self.bias_k, self.bias_v, self.add_zero_attn, self.dropout)

    def _fast_path(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask, attn_mask) -> bool:
        """Whether PyTorch's forward would run its fused kernel: batched self-attention in evaluation, batch
        first, bool masks only, plain projections with biases, an even head count, nothing needing gradients."""
        if any(m is not None and m.is_floating_point() for m in (key_padding_mask, attn_mask)):
            return False
        if query.dim() != 3 or query is not key or key is not value or self.training or not self.batch_first:
            return False
        if (self.in_proj_bias is None or self.in_proj_weight is None or self.num_heads % 2 or self.bias_k is not None
                or self.add_zero_attn or query.dtype is not self.in_proj_weight.dtype):
            return False
        tensors = (query, self.in_proj_weight, self.in_proj_bias, self.out_proj.weight, self.out_proj.bias)
        return not (is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors))
