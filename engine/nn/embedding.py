"""Embedding: rows of a weight matrix looked up by integer index, with PyTorch's padding_idx rules."""

from __future__ import annotations

import numpy as np

from engine.autograd.function import Function
from engine.creation import empty
from engine.grad_mode import no_grad
from engine.nn import init
from engine.nn.module import Module
from engine.nn.parameter import Parameter
from engine.tensor import Tensor


class EmbeddingLookup(Function):
    """weight[indices]; backward adds each output row's gradient into its weight row (none into padding_idx)."""

    def forward(self, weight, indices, padding_idx, scale_grad_by_freq):
        self.rows, self.indices = weight.shape[0], indices
        self.padding_idx, self.scale_grad_by_freq = padding_idx, scale_grad_by_freq
        return weight[indices]

    def backward(self, g):
        flat = self.indices.reshape(-1)
        rows = g.reshape(flat.size, g.shape[-1])
        if self.scale_grad_by_freq:  # each row's gradient divided by how often its index occurs in the batch
            rows = rows / np.bincount(flat, minlength=self.rows)[flat, None].astype(g.dtype)
        grad = np.zeros((self.rows, rows.shape[1]), g.dtype)
        np.add.at(grad, flat, rows)  # a repeated index adds each of its rows
        if self.padding_idx is not None:
            grad[self.padding_idx] = 0
        return grad, None, None, None


def _padding_index(padding_idx: int | None, rows: int) -> int | None:
    """padding_idx made non-negative, checked to name a row."""
    if padding_idx is None:
        return None
    if not -rows <= padding_idx < rows:
        raise AssertionError(f"Padding_idx must be within num_embeddings (got {padding_idx} for {rows} embeddings)")
    return padding_idx % rows


def _renorm_(weight: Tensor, indices: np.ndarray, max_norm: float, norm_type: float) -> None:
    """Scale the looked-up rows whose norm exceeds max_norm down to it, in place (PyTorch's embedding_renorm_)."""
    rows = np.unique(indices)
    norms = np.linalg.norm(weight._data[rows].astype(np.float64), ord=norm_type, axis=1)
    over = norms > max_norm
    if over.any():
        with no_grad():
            scale = (max_norm / (norms[over] + 1e-7))[:, None]
            weight._data[rows[over]] *= scale.astype(weight._data.dtype)
            weight._mark_written()


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of weight at the integer indices in input: output shape input.shape + (embedding_dim,)."""
    indices = input._data
    if indices.dtype.kind not in "iu":
        raise RuntimeError("Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                           f"Long, Int; but got {input.type()} instead (while checking arguments for embedding)")
    if sparse:
        raise NotImplementedError("sparse embedding gradients are not supported by the engine; use sparse=False")
    rows = weight.shape[0]
    if indices.size and (indices.min() < 0 or indices.max() >= rows):
        bad = indices.min() if indices.min() < 0 else indices.max()
        raise IndexError(f"index out of range in self (index {bad} for an embedding of {rows} rows)")
    padding_idx = _padding_index(padding_idx, rows)
    if max_norm is not None:
        _renorm_(weight, indices, max_norm, norm_type)
    return EmbeddingLookup.apply(weight, indices, padding_idx, scale_grad_by_freq)


class Embedding(Module):
    """A lookup table of num_embeddings vectors of size embedding_dim, initialised N(0, 1), padding row zero."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight: Tensor | None = None, _freeze: bool = False, device=None, dtype=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = _padding_index(padding_idx, num_embeddings)
        self.max_norm, self.norm_type, self.scale_grad_by_freq = max_norm, norm_type, scale_grad_by_freq
        if _weight is None:
            self.weight = Parameter(empty(num_embeddings, embedding_dim, dtype=dtype, device=device),
                                    requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if list(_weight.shape) != [num_embeddings, embedding_dim]:
                raise AssertionError(f"Shape of weight does not match num_embeddings and embedding_dim: got "
                                     f"{list(_weight.shape)}, expected {[num_embeddings, embedding_dim]}")
            self.weight = Parameter(_weight, requires_grad=not _freeze)
        self.sparse = sparse

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True, padding_idx: int | None = None,
                        max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> Embedding:
        """An Embedding whose weight is `embeddings` (2-D), frozen unless freeze=False."""
        if embeddings.dim() != 2:
            raise AssertionError(f"Embeddings parameter is expected to be 2-dimensional, got {embeddings.dim()}D")
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx].fill_(0)

    def forward(self, input: Tensor) -> Tensor:
        return embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                         self.scale_grad_by_freq, self.sparse)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse is not False:
            s += ", sparse=True"
        return s
